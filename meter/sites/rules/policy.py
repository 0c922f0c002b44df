"""A site's metering policy and the periods it counts in.

Calendar periods are computed in the site's time zone; `rolling:Nd` is a sliding window. Beside the
quotas: `crawlers` (`off`, or `verified`: search engines' verified crawlers read everything,
meter.access.rules.crawlers) and `gifts` (`per_period` gifts a subscriber may make per period, 0 = off;
`days` a gift link works; `devices` different readers or visitors that may open one gift).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from meter.access import quota as quota_rule

CALENDAR_PERIODS = ("day", "week", "month", "year")
_ROLLING = re.compile(r"^rolling:([1-9][0-9]{0,2})d$")


@dataclass(frozen=True)
class Key:
    """One setting of the policy, named as `flask sites policy --set` and the console name it.

    `example` is a valid value other than the default: the tests set every key to it, so that a key
    added here is covered by them (and must be shown by the console's form) without a new test."""

    name: str  # dotted: quota.verified, period, gifts.days, …
    default: Any
    example: Any
    limits: tuple[int, int] | None = None  # a whole number in this range
    choices: tuple[str, ...] | None = None  # one of these


SCHEMA: tuple[Key, ...] = (
    Key("quota.anonymous", 0, 3, limits=(0, 10_000)),
    Key("quota.registered", 0, 5, limits=(0, 10_000)),
    Key("quota.verified", 2, 7, limits=(0, 10_000)),
    Key("period", "month", "rolling:30d"),
    Key("timezone", "Asia/Jakarta", "Asia/Makassar"),
    Key("degraded_mode", "allow", "deny", choices=("allow", "deny")),
    Key("crawlers", "off", "verified", choices=("off", "verified")),
    Key("gifts.per_period", 0, 10, limits=(0, 1000)),
    Key("gifts.days", 14, 30, limits=(1, 365)),
    Key("gifts.devices", 10, 3, limits=(1, 1000)),
)
KEYS: dict[str, Key] = {key.name: key for key in SCHEMA}


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"quota.verified": 3, "period": "week"} → {"quota": {"verified": 3}, "period": "week"}."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        group, _, name = dotted.partition(".")
        if name:
            out.setdefault(group, {})[name] = value
        else:
            out[group] = value
    return out


DEFAULT_POLICY: dict[str, Any] = nest({key.name: key.default for key in SCHEMA})


class PolicyError(ValueError):
    """A policy that cannot be; `key` names the setting at fault (dotted), when one is."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


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

    @cached_property
    def quotas(self) -> quota_rule.Quotas:
        return quota_rule.Quotas(self.quota_anonymous, self.quota_registered, self.quota_verified)

    def quota_for(self, state: str) -> int:
        """The quota of a reader in this state (meter.access.rules.quota; a subscriber's shows the verified one)."""
        return quota_rule.limit(self.quotas, state)

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


MAX_TIMEZONE = 64  # the longest IANA name is about 30 characters


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    """The IANA zone names this machine knows (the system's and the tzdata package's), read once.

    Why a list and not `ZoneInfo(name)` alone: ZoneInfo reads the file the name points at, so a
    directory ("Asia"), a name too long for the file system, a data file that is no zone
    ("zone.tab") or the server's own "localtime" each raise something else or mean something else."""
    return frozenset(available_timezones()) - {"localtime", "posixrules"}


def check_timezone(name: Any) -> str:
    """`name` when it is an IANA time zone (Asia/Jakarta); else PolicyError (never another exception)."""
    known = isinstance(name, str) and len(name) <= MAX_TIMEZONE and name in _zones()
    if known:
        try:
            ZoneInfo(name)
        except Exception:  # noqa: BLE001 - whatever reading it raises, it is no zone to count in
            known = False
    if not known:
        shown = repr(name[:MAX_TIMEZONE] + "…" if len(name) > MAX_TIMEZONE else name) if isinstance(name, str) else "?"
        raise PolicyError(f"unknown time zone: {shown} (an IANA name such as Asia/Jakarta)", "timezone")
    return name


def _check_period(value: Any) -> str:
    if value not in CALENDAR_PERIODS and not (isinstance(value, str) and _ROLLING.match(value)):
        raise PolicyError("period must be day, week, month, year or rolling:Nd (N from 1 to 999)", "period")
    return value


_CHECKS = {"period": _check_period, "timezone": check_timezone}


def _check(key: Key, value: Any) -> Any:
    if key.limits is not None:
        low, high = key.limits
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise PolicyError(f"{key.name} must be a whole number from {low} to {high}", key.name)
        return value
    if key.choices is not None:
        if value not in key.choices:
            raise PolicyError(f"{key.name} must be {' or '.join(key.choices)}", key.name)
        return value
    return _CHECKS[key.name](value)


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Merge over the default policy and validate each key by SCHEMA; raise PolicyError with a reader-friendly reason."""
    if not isinstance(data, dict):
        raise PolicyError("policy must be an object")
    unknown = set(data) - set(DEFAULT_POLICY)
    if unknown:
        raise PolicyError(f"unknown policy key(s): {', '.join(sorted(unknown))}")
    for group, defaults in DEFAULT_POLICY.items():
        given = data.get(group, {})
        if isinstance(defaults, dict) and (not isinstance(given, dict) or set(given) - set(defaults)):
            *names, last = defaults
            raise PolicyError(f"{group} takes {', '.join(names)} and {last}")
    flat = {}
    for key in SCHEMA:
        group, _, name = key.name.partition(".")
        value = data.get(group, {}).get(name, key.default) if name else data.get(group, key.default)
        flat[key.name] = _check(key, value)
    return nest(flat)


def merge(policy: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` (dotted keys: quota.verified, period, …) over the current `policy`, validated.

    The one way a policy is changed (the command line, the console): a key not named keeps its
    value, so that a form which does not show a key can never reset it to its default."""
    new = normalise(policy)
    for dotted, value in changes.items():
        if dotted not in KEYS:
            raise PolicyError(f"unknown policy key: {dotted}")
        group, _, name = dotted.partition(".")
        new[group] = {**new[group], name: value} if name else value
    return normalise(new)


def set_dotted(policy: dict[str, Any], dotted: str, raw: str) -> dict[str, Any]:
    """Apply one `KEY=VALUE` from `flask sites policy --set`; returns the validated new policy."""
    key = KEYS.get(dotted)
    if key is None:
        raise PolicyError(f"unknown policy key: {dotted}")
    value: Any = raw
    if key.limits is not None:
        try:
            value = int(raw)
        except ValueError:
            raise PolicyError(f"{dotted} must be a whole number", dotted) from None
    return merge(policy, {dotted: value})
