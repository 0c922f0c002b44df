"""Every Redis key meter uses is built here, and nowhere else.

All keys one access check touches carry the same hash tag `{s<site>:<subject>}`, so they live in one
Redis Cluster slot and one Lua script may touch them all. The storage layout behind these names is
private to `metering.py`.
"""

from __future__ import annotations

PREFIX = "m"


def subject_for_reader(reader_id: int) -> str:
    return f"r:{reader_id}"


def subject_for_anonymous(anonymous_id: str) -> str:
    return f"a:{anonymous_id}"


def _tag(site_id: int, subject: str) -> str:
    return f"{{s{site_id}:{subject}}}"


def unlocks(site_id: int, subject: str, period: str) -> str:
    """The articles a subject unlocked in one period."""
    return f"{PREFIX}:{_tag(site_id, subject)}:u:{period}"


def reader_state(site_id: int, subject: str) -> str:
    """Cached reader state (verified, subscription end, live session ids); rebuilt from SQL."""
    return f"{PREFIX}:{_tag(site_id, subject)}:st"


def token_used(purpose: str, token_id: str) -> str:
    """A one-time token's redemption mark."""
    return f"{PREFIX}:used:{purpose}:{token_id}"
