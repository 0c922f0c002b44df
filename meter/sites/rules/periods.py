"""The periods a meter counts in: a calendar day, week, month or year in the site's time zone, or a
rolling window of N days (`rolling:Nd`). Pure time arithmetic: the policy (meter.sites.rules.policy)
says which period a meter uses, this says which one holds a moment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

CALENDAR_PERIODS = ("day", "week", "month", "year")
ROLLING = re.compile(r"^rolling:([1-9][0-9]{0,2})d$")


@dataclass(frozen=True)
class Period:
    label: str  # names the period in keys and in the ledger
    start: datetime  # aware, site time zone
    end: datetime
    rolling_seconds: int = 0  # > 0 for rolling windows


def period_at(period: str, tz: ZoneInfo, now: datetime) -> Period:
    """The period (`day`, `week`, `month`, `year` or `rolling:Nd`) that holds `now`, in zone `tz`."""
    local = now.astimezone(tz)
    m = ROLLING.match(period)
    if m:
        days = int(m.group(1))
        return Period("rolling", local - timedelta(days=days), local, rolling_seconds=days * 86400)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = midnight, _add_days(midnight, 1)
        label = start.strftime("%Y-%m-%d")
    elif period == "week":
        start = _add_days(midnight, -midnight.weekday())
        end = _add_days(start, 7)
        iso = start.isocalendar()
        label = f"{iso.year}-W{iso.week:02d}"
    elif period == "month":
        start = midnight.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        label = start.strftime("%Y-%m")
    else:
        start = midnight.replace(month=1, day=1)
        end = start.replace(year=start.year + 1)
        label = start.strftime("%Y")
    return Period(label, start, end)


def _add_days(day: datetime, n: int) -> datetime:
    """Calendar arithmetic in local time (DST-safe: rebuild the wall-clock time in the zone)."""
    naive = day.replace(tzinfo=None) + timedelta(days=n)
    return naive.replace(tzinfo=day.tzinfo)
