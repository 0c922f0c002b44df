"""A site's metering policy and the periods it counts in.

Calendar periods are computed in the site's time zone; `rolling:Nd` is a sliding window. Beside the
quotas: `crawlers` (`off`, or `verified`: search engines' verified crawlers read everything,
meter.domain.clients) and `gifts` (`per_period` gifts a subscriber may make per period, 0 = off;
`days` a gift link works; `devices` different readers or visitors that may open one gift).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CALENDAR_PERIODS = ("day", "week", "month", "year")
_ROLLING = re.compile(r"^rolling:([1-9][0-9]{0,2})d$")

DEFAULT_POLICY: dict[str, Any] = {
    "quota": {"anonymous": 0, "registered": 0, "verified": 2},
    "period": "month",
    "timezone": "Asia/Jakarta",
    "degraded_mode": "allow",
    "crawlers": "off",
    "gifts": {"per_period": 0, "days": 14, "devices": 10},
}
GIFT_LIMITS = {"per_period": (0, 1000), "days": (1, 365), "devices": (1, 1000)}


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    label: str  # names the period in keys and in the ledger
    start: datetime  # aware, site time zone
    end: datetime
    rolling_seconds: int = 0  # > 0 for rolling windows


@dataclass(frozen=True)
class Policy:
    quota_anonymous: int
    quota_registered: int
    quota_verified: int
    period: str
    timezone: str
    degraded_mode: str
    crawlers: str = "off"
    gifts_per_period: int = 0
    gifts_days: int = 14
    gifts_devices: int = 10

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Policy:
        merged = normalise(data or {})
        q = merged["quota"]
        return cls(
            q["anonymous"],
            q["registered"],
            q["verified"],
            merged["period"],
            merged["timezone"],
            merged["degraded_mode"],
            merged["crawlers"],
            merged["gifts"]["per_period"],
            merged["gifts"]["days"],
            merged["gifts"]["devices"],
        )

    def quota_for(self, state: str) -> int:
        return {"anonymous": self.quota_anonymous, "registered": self.quota_registered}.get(state, self.quota_verified)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def period_at(self, now: datetime) -> Period:
        local = now.astimezone(self.tz)
        m = _ROLLING.match(self.period)
        if m:
            days = int(m.group(1))
            return Period("rolling", local - timedelta(days=days), local, rolling_seconds=days * 86400)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.period == "day":
            start, end = midnight, _add_days(midnight, 1)
            label = start.strftime("%Y-%m-%d")
        elif self.period == "week":
            start = _add_days(midnight, -midnight.weekday())
            end = _add_days(start, 7)
            iso = start.isocalendar()
            label = f"{iso.year}-W{iso.week:02d}"
        elif self.period == "month":
            start = midnight.replace(day=1)
            end = (
                start.replace(year=start.year + 1, month=1)
                if start.month == 12
                else start.replace(month=start.month + 1)
            )
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


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Merge over the default policy and validate; raise PolicyError with a reader-friendly reason."""
    if not isinstance(data, dict):
        raise PolicyError("policy must be an object")
    unknown = set(data) - set(DEFAULT_POLICY)
    if unknown:
        raise PolicyError(f"unknown policy key(s): {', '.join(sorted(unknown))}")
    quota = dict(DEFAULT_POLICY["quota"])
    given_quota = data.get("quota", {})
    if not isinstance(given_quota, dict) or set(given_quota) - set(quota):
        raise PolicyError("quota takes anonymous, registered and verified")
    for name, value in given_quota.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000:
            raise PolicyError(f"quota.{name} must be a whole number from 0 to 10000")
        quota[name] = value
    period = data.get("period", DEFAULT_POLICY["period"])
    if period not in CALENDAR_PERIODS and not (isinstance(period, str) and _ROLLING.match(period)):
        raise PolicyError("period must be day, week, month, year or rolling:Nd (N from 1 to 999)")
    timezone = data.get("timezone", DEFAULT_POLICY["timezone"])
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise PolicyError(f"unknown time zone: {timezone!r}") from None
    degraded = data.get("degraded_mode", DEFAULT_POLICY["degraded_mode"])
    if degraded not in ("allow", "deny"):
        raise PolicyError("degraded_mode must be allow or deny")
    crawlers = data.get("crawlers", DEFAULT_POLICY["crawlers"])
    if crawlers not in ("off", "verified"):
        raise PolicyError("crawlers must be off or verified")
    gifts = dict(DEFAULT_POLICY["gifts"])
    given_gifts = data.get("gifts", {})
    if not isinstance(given_gifts, dict) or set(given_gifts) - set(gifts):
        raise PolicyError("gifts takes per_period, days and devices")
    for name, value in given_gifts.items():
        low, high = GIFT_LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise PolicyError(f"gifts.{name} must be a whole number from {low} to {high}")
        gifts[name] = value
    return {
        "quota": quota,
        "period": period,
        "timezone": timezone,
        "degraded_mode": degraded,
        "crawlers": crawlers,
        "gifts": gifts,
    }


def set_dotted(policy: dict[str, Any], dotted: str, raw: str) -> dict[str, Any]:
    """Apply one `KEY=VALUE` from `flask sites policy --set`; returns the validated new policy."""
    new = normalise(policy)
    value: Any = raw
    if dotted.startswith(("quota.", "gifts.")):
        try:
            value = int(raw)
        except ValueError:
            raise PolicyError(f"{dotted} must be a whole number") from None
        group, name = dotted.split(".", 1)
        new[group] = {**new[group], name: value}
    elif dotted in ("period", "timezone", "degraded_mode", "crawlers"):
        new[dotted] = value
    else:
        raise PolicyError(f"unknown policy key: {dotted}")
    return normalise(new)
