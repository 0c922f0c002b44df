"""The meter: who has unlocked what, decided in Redis by one Lua script, kept durably in SQL.

Redis is the fast copy; the `unlocks` table (the ledger) is the truth it is rebuilt from. By concern:
`layout` (how the meter lies in Redis), `check` (the access check and its script, `check.lua`),
`ledger` (SQL), `journal` (unlocks answered, until the ledger has them), `doubts` (unlocks whose Redis
reply was lost), `changes` (everything else that changes a meter: carry-over at login, resets, reader
state changes).
"""

from importlib import resources

from meter.access.rules.metering.changes import (
    forget_reader_state,
    merge_anonymous,
    reset,
    summaries,
    summary,
    unlocked_articles,
)
from meter.access.rules.metering.check import Decision, Subject, check
from meter.platform.redis_conn import register_script

register_script("check", resources.files(__package__).joinpath("check.lua"))

__all__ = [
    "Decision",
    "Subject",
    "check",
    "forget_reader_state",
    "merge_anonymous",
    "reset",
    "summaries",
    "summary",
    "unlocked_articles",
]
