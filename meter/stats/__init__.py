"""The figures a publisher watches, per site and day in the site's time zone: counted from the
access check's answers and the account flows' events (`rules`), rolled up by the worker, served by
`GET /v1/stats` (`views`) and drawn by the console; `flask demo traffic` (`commands`).

This module is the feature's public face: other features import from it only (import-linter keeps
the rest private); each name comes from its home on first use (`meter.platform.public`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meter.platform.public import exports

if TYPE_CHECKING:
    from meter.stats.rules import (
        EVENTS,
        REASONS,
        day_of,
        experiments,
        figures,
        give_back,
        note,
        parse_day,
        stats_expiry,
        take,
        today,
    )

_PUBLIC = {
    "EVENTS": ("meter.stats.rules", "EVENTS"),
    "REASONS": ("meter.stats.rules", "REASONS"),
    "day_of": ("meter.stats.rules", "day_of"),
    "experiments": ("meter.stats.rules", "experiments"),
    "figures": ("meter.stats.rules", "figures"),
    "give_back": ("meter.stats.rules", "give_back"),
    "note": ("meter.stats.rules", "note"),
    "parse_day": ("meter.stats.rules", "parse_day"),
    "stats_expiry": ("meter.stats.rules", "stats_expiry"),
    "take": ("meter.stats.rules", "take"),
    "today": ("meter.stats.rules", "today"),
}
__all__ = [
    "EVENTS",
    "REASONS",
    "day_of",
    "experiments",
    "figures",
    "give_back",
    "note",
    "parse_day",
    "stats_expiry",
    "take",
    "today",
]
__getattr__ = exports(__name__, _PUBLIC)
