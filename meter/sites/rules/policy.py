"""A site's metering policy and the periods it counts in.

Calendar periods are computed in the site's time zone; `rolling:Nd` is a sliding window. Beside the
quotas: `crawlers` (`off`, or `verified`: search engines' verified crawlers read everything,
meter.access.rules.crawlers) and `gifts` (`per_period` gifts a subscriber may make per period, 0 = off;
`days` a gift link works; `devices` different readers or visitors that may open one gift).

Meters: the top-level `quota` and `period` are the site's `default` meter. `meters` adds named ones,
each with its own quotas and period (`{"koran": {"quota": {"verified": 2}, "period": "month"}}`), and
`sections` maps an article's section to one (`{"laput": "koran"}`): an article of an unknown section,
or of none, counts in the default meter. A reader's count in one meter never spends another's. Why a
meter holds its settings in a dict of its own: what a meter may hold later (experiments) is added to
it without changing the rest. A policy without meters is stored and shown as before (no `meters`, no
`sections`).

Rules by arrival (meter.sites.rules.arrival_rules): the top-level `rules` are the default meter's,
`meters.koran.rules` the koran's; each an ordered list, stored only when not empty.

Experiments (meter.sites.rules.experiments): the top-level `experiment` is the default meter's,
`meters.koran.experiment` the koran's; stored only when there is one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from meter.access import quota as quota_rule
from meter.sites.rules import arrival_rules, experiments
from meter.sites.rules.arrival_rules import Rule, RuleError
from meter.sites.rules.experiments import Experiment, ExperimentError, Variant
from meter.sites.rules.periods import CALENDAR_PERIODS, ROLLING, Period, period_at


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
DEFAULT_METER = "default"  # the name of the site's own meter (the top-level quota and period)
METER_KEYS: tuple[Key, ...] = tuple(
    KEYS[name] for name in ("quota.anonymous", "quota.registered", "quota.verified", "period")
)
METER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
SECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_METERS = 10
MAX_SECTIONS = 200


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
class Meter:
    """One meter of a policy: its quotas and the period it counts in (the site's time zone).
    `name` is `default` for the site's own (the top-level quota and period)."""

    name: str
    quota_anonymous: int
    quota_registered: int
    quota_verified: int
    period: str
    timezone: str
    rules: tuple[Rule, ...] = ()  # by arrival, in their order (meter.sites.rules.arrival_rules)
    experiment: Experiment | None = None  # meter.sites.rules.experiments

    def in_variant(self, key: bytes, seed: str, now: datetime) -> tuple[Meter, Variant | None]:
        """This meter as it counts for the reader of this seed: while its experiment runs, with the
        quotas of the reader's variant (`key`: experiments.hash_key of this site, meter and experiment);
        else itself and None. Same name, so the same keys and ledger rows: only the limits differ."""
        experiment = self.experiment
        if experiment is None or not experiment.running(now):
            return self, None
        variant = experiment.variant_of(key, seed)
        return self._variant_meters[variant.name], variant

    @cached_property
    def _variant_meters(self) -> dict[str, Meter]:
        """The meter as each variant of its experiment counts (made once per policy, not per check)."""
        out: dict[str, Meter] = {}
        for variant in self.experiment.variants if self.experiment else ():
            quota = dict(variant.quota)
            out[variant.name] = replace(
                self,
                quota_anonymous=quota.get("anonymous", self.quota_anonymous),
                quota_registered=quota.get("registered", self.quota_registered),
                quota_verified=quota.get("verified", self.quota_verified),
            )
        return out

    @cached_property
    def quotas(self) -> quota_rule.Quotas:
        return quota_rule.Quotas(self.quota_anonymous, self.quota_registered, self.quota_verified)

    def for_arrival(self, source: str, campaign: str | None) -> tuple[Meter, Rule | None]:
        """This meter as it counts for a reader of this arrival: the rule that decides (the first that
        matches), and the meter with its extra reads added to every quota; itself and None when no
        rule matches. Same name, so the same keys and ledger rows: only the limit differs."""
        rule = arrival_rules.first_match(self.rules, source, campaign) if self.rules else None
        if rule is None or not rule.extra:
            return self, rule
        extra = rule.extra
        meter = replace(
            self,
            quota_anonymous=self.quota_anonymous + extra,
            quota_registered=self.quota_registered + extra,
            quota_verified=self.quota_verified + extra,
        )
        return meter, rule

    def quota_for(self, state: str) -> int:
        """The quota of a reader in this state (meter.access.rules.quota; a subscriber's shows the verified one)."""
        return quota_rule.limit(self.quotas, state)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def period_at(self, now: datetime) -> Period:
        return period_at(self.period, self.tz, now)


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
    meters: tuple[Meter, ...] = ()  # the named meters (not the default), by name
    sections: tuple[tuple[str, str], ...] = ()  # (section, meter name), by section
    rules: tuple[Rule, ...] = ()  # the default meter's rules by arrival, in their order
    experiment: Experiment | None = None  # the default meter's experiment

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Policy:
        merged = normalise(data or {})
        q = merged["quota"]
        meters = tuple(
            Meter(
                name,
                meter["quota"]["anonymous"],
                meter["quota"]["registered"],
                meter["quota"]["verified"],
                meter["period"],
                merged["timezone"],
                tuple(Rule.from_dict(rule) for rule in meter.get("rules", ())),
                Experiment.from_dict(meter["experiment"]) if "experiment" in meter else None,
            )
            for name, meter in sorted(merged.get("meters", {}).items())
        )
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
            meters,
            tuple(sorted(merged.get("sections", {}).items())),
            tuple(Rule.from_dict(rule) for rule in merged.get("rules", ())),
            Experiment.from_dict(merged["experiment"]) if "experiment" in merged else None,
        )

    @cached_property
    def default_meter(self) -> Meter:
        return Meter(
            DEFAULT_METER,
            self.quota_anonymous,
            self.quota_registered,
            self.quota_verified,
            self.period,
            self.timezone,
            self.rules,
            self.experiment,
        )

    @cached_property
    def all_meters(self) -> tuple[Meter, ...]:
        """The default meter, then the named ones."""
        return (self.default_meter, *self.meters)

    @cached_property
    def _by_section(self) -> dict[str, Meter]:
        named = {meter.name: meter for meter in self.all_meters}
        return {section: named[name] for section, name in self.sections}

    def meter_for(self, section: str | None) -> Meter:
        """The meter an article of this section counts in: the one `sections` names, else the default.
        Sections are matched in lower case (a page's "Koran" is the policy's `koran`)."""
        if not section or not self.sections:
            return self.default_meter
        return self._by_section.get(section.lower()) or self.default_meter

    def sections_of(self, name: str) -> tuple[str, ...]:
        """The sections that count in the meter of this name."""
        return tuple(section for section, meter in self.sections if meter == name)

    def meter_named(self, name: str | None) -> Meter:
        """The meter of this name; the default one for "default", for none, or for a meter removed since
        (a ledger row or a doubt of a meter that is gone is settled in the default meter's period)."""
        for meter in self.meters:
            if meter.name == name:
                return meter
        return self.default_meter

    @cached_property
    def quotas(self) -> quota_rule.Quotas:
        return self.default_meter.quotas

    def quota_for(self, state: str) -> int:
        """The default meter's quota of a reader in this state (see `Meter.quota_for`)."""
        return self.default_meter.quota_for(state)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def period_at(self, now: datetime) -> Period:
        """The default meter's period at `now` (gifts and the daily figures count in it too)."""
        return period_at(self.period, self.tz, now)


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
    if value not in CALENDAR_PERIODS and not (isinstance(value, str) and ROLLING.match(value)):
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
    unknown = set(data) - set(DEFAULT_POLICY) - {"meters", "sections", "rules", "experiment"}
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
    out = nest(flat)
    meters = _meters(data.get("meters", {}), out["timezone"])
    sections = _sections(data.get("sections", {}), meters)
    if meters:
        out["meters"] = meters
    if sections:
        out["sections"] = sections
    rules = _rules(data.get("rules", []), "rules")
    if rules:
        out["rules"] = rules
    if data.get("experiment") is not None:
        out["experiment"] = _experiment(data["experiment"], "experiment", out["timezone"])
    return out


def _experiment(given: Any, where: str, timezone: str) -> dict[str, Any]:
    try:
        return experiments.validate(given, where, timezone)
    except ExperimentError as exc:
        raise PolicyError(str(exc), exc.key) from None


def _rules(given: Any, where: str) -> list[dict[str, Any]]:
    try:
        return arrival_rules.validate(given, where)
    except RuleError as exc:
        raise PolicyError(str(exc), exc.key) from None


_METER_TAKES = "a meter takes quota.anonymous, quota.registered, quota.verified, period, rules and experiment"


def _meters(given: Any, timezone: str) -> dict[str, dict[str, Any]]:
    """The named meters, each validated as the site's own quota and period are (errors name the key:
    meters.koran.quota.verified); a key a meter does not give has the site's default."""
    if not isinstance(given, dict):
        raise PolicyError("meters must be an object: meter name → its quota and period", "meters")
    if len(given) > MAX_METERS:
        raise PolicyError(f"at most {MAX_METERS} meters", "meters")
    out = {}
    for name, meter in sorted(given.items()):
        where = f"meters.{name}"
        if not isinstance(name, str) or not METER_NAME.match(name) or name == DEFAULT_METER:
            raise PolicyError(
                f"{where}: a meter's name is 1 to 32 of a-z, 0-9, _ and -, starting with a letter, and not "
                f"{DEFAULT_METER!r}",
                where,
            )
        if not isinstance(meter, dict) or set(meter) - {"quota", "period", "rules", "experiment"}:
            raise PolicyError(f"{where}: {_METER_TAKES}", where)
        quota = meter.get("quota", {})
        if not isinstance(quota, dict) or set(quota) - {"anonymous", "registered", "verified"}:
            raise PolicyError(f"{where}.quota takes anonymous, registered and verified", f"{where}.quota")
        flat = {}
        for key in METER_KEYS:
            group, _, sub = key.name.partition(".")
            value = quota.get(sub, key.default) if sub else meter.get(group, key.default)
            flat[key.name] = _check_as(key, value, f"{where}.{key.name}")
        out[name] = nest(flat)
        rules = _rules(meter.get("rules", []), f"{where}.rules")
        if rules:
            out[name]["rules"] = rules
        if meter.get("experiment") is not None:
            out[name]["experiment"] = _experiment(meter["experiment"], f"{where}.experiment", timezone)
    return out


def _sections(given: Any, meters: dict[str, Any]) -> dict[str, str]:
    if not isinstance(given, dict):
        raise PolicyError("sections must be an object: section → meter name", "sections")
    if len(given) > MAX_SECTIONS:
        raise PolicyError(f"at most {MAX_SECTIONS} sections", "sections")
    out = {}
    for section, meter in sorted(given.items()):
        where = f"sections.{section}"
        if not isinstance(section, str) or not SECTION_NAME.match(section):
            raise PolicyError(f"{where}: a section is 1 to 64 of a-z, 0-9, _ and -", where)
        if meter != DEFAULT_METER and meter not in meters:
            shown = repr(meter) if isinstance(meter, str) else "?"
            raise PolicyError(f"{where} names meter {shown}, which the policy has not: add it under meters", where)
        out[section] = meter
    return out


def _check_as(key: Key, value: Any, dotted: str) -> Any:
    """`_check` of a meter's key, its error naming the key where it is (meters.koran.period)."""
    try:
        return _check(key, value)
    except PolicyError as exc:
        raise PolicyError(str(exc).replace(key.name, dotted, 1), dotted) from None


def _place(dotted: str) -> tuple[str, str, Key | None]:
    """Where a dotted key lives: ("site", name, Key), ("meter", meter name, Key or None for the whole
    meter) or ("section", section, None); PolicyError for a key the policy has not."""
    if dotted in KEYS:
        return "site", dotted, KEYS[dotted]
    group, _, rest = dotted.partition(".")
    if group == "sections" and rest:
        return "section", rest, None
    if group == "meters" and rest:
        name, _, sub = rest.partition(".")
        if not sub:
            return "meter", name, None
        key = next((key for key in METER_KEYS if key.name == sub), None)
        if key is not None:
            return "meter", name, key
        raise PolicyError(f"unknown policy key: {dotted} ({_METER_TAKES})", dotted)
    raise PolicyError(f"unknown policy key: {dotted}", dotted if group in ("meters", "sections") else None)


def merge(policy: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` (dotted keys: quota.verified, period, meters.koran.quota.verified, sections.laput, …)
    over the current `policy`, validated.

    The one way a policy is changed (the command line, the console): a key not named keeps its
    value, so that a form which does not show a key can never reset it to its default. A meter
    (`meters.koran`) or a section (`sections.laput`) given None is removed; a meter key of a meter
    the policy has not yet adds that meter, its other keys at their defaults. Rules: `rules` (or
    `meters.koran.rules`) is the whole ordered list; `rules.search.extra` one key of one rule (a
    rule not there yet is added last), `rules.search` None removes it."""
    new = normalise(policy)
    for dotted, value in changes.items():
        tried = experiments.place(dotted)
        if tried is not None:
            new = _change_experiment(new, dotted, *tried, value)
            continue
        ruled = _rule_place(dotted)
        if ruled is not None:
            new = _change_rules(new, dotted, *ruled, value)
            continue
        kind, name, key = _place(dotted)
        if kind == "site":
            group, _, sub = dotted.partition(".")
            new[group] = {**new[group], sub: value} if sub else value
            continue
        group = "meters" if kind == "meter" else "sections"
        entries = dict(new.get(group, {}))
        if value is None and key is None:
            entries.pop(name, None)
        elif kind == "section":
            entries[name] = value
        elif key is None:
            raise PolicyError(f"{dotted}: name one of its keys ({_METER_TAKES}), or remove it", dotted)
        else:
            meter = entries.get(name, {})
            outer, _, sub = key.name.partition(".")
            entries[name] = {**meter, outer: {**meter.get(outer, {}), sub: value}} if sub else {**meter, outer: value}
        new[group] = entries
    return normalise(new)


def _rule_place(dotted: str) -> tuple[str | None, str | None, str | None] | None:
    """(meter name or None for the default, rule name or None for the whole list, a rule's key or
    None) for a key of the rules (rules, rules.search.extra, meters.koran.rules.search); else None."""
    parts = dotted.split(".")
    meter = None
    if len(parts) >= 3 and parts[0] == "meters" and parts[2] == "rules":
        meter, parts = parts[1], parts[2:]
    if parts[0] != "rules" or len(parts) > 3:
        return None
    return meter, (parts[1] if len(parts) > 1 else None), (parts[2] if len(parts) > 2 else None)


def _change_rules(
    policy: dict[str, Any], dotted: str, meter: str | None, name: str | None, key: str | None, value: Any
) -> dict[str, Any]:
    if meter is None:
        holder = policy
    elif meter in policy.get("meters", {}):
        holder = policy["meters"][meter] = dict(policy["meters"][meter])
    else:
        raise PolicyError(f"{dotted}: the policy has no meter {meter!r} (add it under meters first)", dotted)
    if name is None:
        rules = value if value is not None else []
    else:
        try:
            rules = arrival_rules.change(holder.get("rules", []), name, key, value)
        except RuleError as exc:
            raise PolicyError(f"{dotted}: {exc}", dotted) from None
    holder["rules"] = rules
    if not rules:
        holder.pop("rules")
    return policy


def _change_experiment(
    policy: dict[str, Any], dotted: str, meter: str | None, path: list[str], value: Any
) -> dict[str, Any]:
    if meter is None:
        holder = policy
    elif meter in policy.get("meters", {}):
        holder = policy["meters"][meter] = dict(policy["meters"][meter])
    else:
        raise PolicyError(f"{dotted}: the policy has no meter {meter!r} (add it under meters first)", dotted)
    changed = experiments.change(holder.get("experiment"), path, value)
    if changed is None:
        holder.pop("experiment", None)
    else:
        holder["experiment"] = changed
    return policy


def _rule_value(dotted: str, key: str | None, raw: str) -> Any:
    """A rule's value as `--set` gives it: the whole list as JSON; `extra` a whole number; empty: none."""
    if not raw:
        return None
    if key == "extra":
        try:
            return int(raw)
        except ValueError:
            raise PolicyError(f"{dotted} must be a whole number", dotted) from None
    if dotted.endswith("rules"):
        try:
            return json.loads(raw)
        except ValueError:
            raise PolicyError(
                f"{dotted} must be JSON: a list of rules, the first that matches decides", dotted
            ) from None
    return raw


def value_of(dotted: str, raw: str) -> Any:
    """The value of one `KEY=VALUE` of `flask sites policy --set`, as `merge` takes it (a whole number
    for a number's key; None for an empty value, which removes a meter, a section, a rule or a meter's
    rules; the whole list of rules as JSON). PolicyError for a key the policy has not."""
    tried = experiments.place(dotted)
    if tried is not None:
        try:
            return experiments.value_of(dotted, tried[1], raw)
        except ExperimentError as exc:
            raise PolicyError(str(exc), exc.key) from None
    ruled = _rule_place(dotted)
    if ruled is not None:
        return _rule_value(dotted, ruled[2], raw)
    _kind, _name, key = _place(dotted)
    if key is None:
        return raw or None
    if key.limits is not None:
        try:
            return int(raw)
        except ValueError:
            raise PolicyError(f"{dotted} must be a whole number", dotted) from None
    return raw


def set_dotted(policy: dict[str, Any], dotted: str, raw: str) -> dict[str, Any]:
    """Apply one `KEY=VALUE` from `flask sites policy --set`; returns the validated new policy."""
    return merge(policy, {dotted: value_of(dotted, raw)})
