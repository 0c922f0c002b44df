"""Experiments: a meter tries two to four quota sets against each other, to see which converts best.

A meter's `experiment` (the top-level `experiment` is the default meter's):

    "experiment": {
      "name": "q1",
      "start": "2027-01-01T00:00:00+07:00", "end": "2027-02-01T00:00:00+07:00",
      "variants": {
        "a": {"share": 50},                              (the meter's own quotas: the control)
        "b": {"share": 50, "quota": {"verified": 4}}     (a quota not given is the meter's own)
      }
    }

The shares are the split, in whole percent, summing to 100. Between `start` and `end` each reader
or anonymous id is put in one variant by a keyed hash of its seed (`assign`): HMAC-SHA256 with a key
derived from SECRET_KEY for this site, meter and experiment, so nobody can choose a variant and two
experiments split independently. The seed of an anonymous id is a digest of it (`anonymous_seed`);
a reader's is the seed of the anonymous id they registered, activated or first signed in with
(stored on the reader, `readers.variant_seed`, and carried in their tokens so the check reads no
SQL), else the digest of their subject (`reader_seed`): so a visitor stays in their variant when they
register. The variant's quotas are the ones the check enforces; the answers name the variant.

Ending an experiment (`flask sites experiments end`) sets its end to now, and may adopt a variant:
its quotas become the meter's own, and the experiment stays in the policy (with `adopted`), so its
figures are still shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

EXPERIMENT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
VARIANT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,15}$")
MIN_VARIANTS, MAX_VARIANTS = 2, 4
QUOTA_STATES = ("anonymous", "registered", "verified")
MAX_QUOTA = 10_000
SCALE = 10_000  # the hash falls in [0, SCALE): a share of 1% is 100 of them
_TAKES = "an experiment takes name, start, end, variants and adopted"


class ExperimentError(ValueError):
    """An experiment that cannot be; `key` names the setting at fault (experiment.variants.b.share)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Variant:
    name: str
    share: int  # percent of the readers
    quota: tuple[tuple[str, int], ...]  # (state, quota) the variant sets; the meter's own for the rest


@dataclass(frozen=True)
class Experiment:
    name: str
    start: datetime
    end: datetime
    variants: tuple[Variant, ...]  # by name
    adopted: str | None = None  # the variant whose quotas the meter took when the experiment ended

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        variants = tuple(
            Variant(name, v["share"], tuple(sorted(v.get("quota", {}).items())))
            for name, v in sorted(data["variants"].items())
        )
        return cls(
            data["name"],
            datetime.fromisoformat(data["start"]).astimezone(UTC),  # in UTC: compared on every check
            datetime.fromisoformat(data["end"]).astimezone(UTC),
            variants,
            data.get("adopted"),
        )

    def running(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def variant_of(self, key: bytes, seed: str) -> Variant:
        """The variant of this seed: the keyed hash's place in [0, SCALE) against the cumulative shares."""
        point = int.from_bytes(hmac.digest(key, seed.encode(), "sha256")[:8], "big") % SCALE
        edge = 0
        for variant in self.variants:
            edge += variant.share * (SCALE // 100)
            if point < edge:
                return variant
        return self.variants[-1]

    def variant_named(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def figures_id(self, meter: str) -> str:
        """A short, stable name of (meter, experiment) for the figures' rows and Redis fields."""
        return hashlib.blake2b(f"{meter}/{self.name}".encode(), digest_size=5).hexdigest()


@lru_cache(maxsize=256)
def hash_key(secret: str, site_id: int, meter: str, experiment: str) -> bytes:
    """The HMAC key of one experiment of one meter of one site, derived from SECRET_KEY."""
    info = f"meter experiment\x00{site_id}\x00{meter}\x00{experiment}".encode()
    return hmac.digest(secret.encode(), info, "sha256")


def anonymous_seed(anonymous_id: str) -> str:
    """The seed of an anonymous id: a digest, so that a reader's row keeps no visitor id."""
    return hashlib.blake2b(f"a:{anonymous_id}".encode(), digest_size=16).hexdigest()


def reader_seed(reader_id: int, stored: str | None) -> str:
    """A reader's seed: the one stored at registration (their anonymous id's), else their own."""
    return stored or hashlib.blake2b(f"r:{reader_id}".encode(), digest_size=16).hexdigest()


# --- validation ------------------------------------------------------------------------------------


def _moment(value: Any, at: str, timezone: str) -> str:
    """An ISO-8601 time; a date or a time without offset is in the site's time zone."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise ExperimentError(f"{at} must be a date or time, ISO-8601 (2027-01-01 or 2027-01-01T00:00:00+07:00)", at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.isoformat()


def validate(given: Any, where: str, timezone: str) -> dict[str, Any]:
    """An experiment, validated; `where` is its key (experiment, meters.koran.experiment), which every
    error names."""
    if not isinstance(given, dict):
        raise ExperimentError(f"{where} must be an object: {_TAKES}", where)
    if set(given) - {"name", "start", "end", "variants", "adopted"}:
        raise ExperimentError(f"{where}: {_TAKES}", where)
    name = given.get("name")
    if not isinstance(name, str) or not EXPERIMENT_NAME.match(name):
        raise ExperimentError(f"{where}.name: 1 to 32 of a-z, 0-9, _ and -, starting with a letter", f"{where}.name")
    start = _moment(given.get("start"), f"{where}.start", timezone)
    end = _moment(given.get("end"), f"{where}.end", timezone)
    if datetime.fromisoformat(end) <= datetime.fromisoformat(start):
        raise ExperimentError(f"{where}.end must be after {where}.start", f"{where}.end")
    variants = given.get("variants")
    at = f"{where}.variants"
    if not isinstance(variants, dict) or not MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
        raise ExperimentError(
            f"{at}: {MIN_VARIANTS} to {MAX_VARIANTS} variants, each its share (percent) and quota", at
        )
    out_variants = {}
    for vname, variant in sorted(variants.items(), key=lambda item: str(item[0])):
        vat = f"{at}.{vname}"
        if not isinstance(vname, str) or not VARIANT_NAME.match(vname):
            raise ExperimentError(
                f"{vat}: a variant's name is 1 to 16 of a-z, 0-9, _ and -, starting with a letter", vat
            )
        out_variants[vname] = _variant(variant, vat)
    total = sum(v["share"] for v in out_variants.values())
    if total != 100:
        raise ExperimentError(f"{at}: the shares must sum to 100 (they sum to {total})", f"{at}.share")
    out: dict[str, Any] = {"name": name, "start": start, "end": end, "variants": out_variants}
    adopted = given.get("adopted")
    if adopted is not None:
        if adopted not in out_variants:
            raise ExperimentError(f"{where}.adopted must name one of its variants", f"{where}.adopted")
        out["adopted"] = adopted
    return out


def _variant(variant: Any, vat: str) -> dict[str, Any]:
    if not isinstance(variant, dict) or set(variant) - {"share", "quota"}:
        raise ExperimentError(f"{vat}: a variant takes share (percent) and quota", vat)
    share = variant.get("share")
    if isinstance(share, bool) or not isinstance(share, int) or not 0 < share <= 100:
        raise ExperimentError(f"{vat}.share must be a whole number from 1 to 100 (percent)", f"{vat}.share")
    quota = variant.get("quota", {})
    if not isinstance(quota, dict) or set(quota) - set(QUOTA_STATES):
        raise ExperimentError(f"{vat}.quota takes anonymous, registered and verified", f"{vat}.quota")
    for state, value in quota.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUOTA:
            raise ExperimentError(
                f"{vat}.quota.{state} must be a whole number from 0 to {MAX_QUOTA}", f"{vat}.quota.{state}"
            )
    out: dict[str, Any] = {"share": share}
    if quota:
        out["quota"] = dict(sorted(quota.items()))
    return out


def change(experiment: dict[str, Any] | None, path: list[str], value: Any) -> dict[str, Any] | None:
    """The experiment with one key of `--set` changed: `path` below `experiment` (["end"],
    ["variants", "b", "quota", "verified"], ["variants", "c"] with None to remove a variant). The
    result is validated by the caller."""
    out: dict[str, Any] = {**(experiment or {})}
    if not path:
        return value
    holder = out
    for part in path[:-1]:
        holder[part] = dict(holder.get(part) or {})
        holder = holder[part]
    if value is None:
        holder.pop(path[-1], None)
    else:
        holder[path[-1]] = value
    return out


def place(dotted: str) -> tuple[str | None, list[str]] | None:
    """(meter name or None for the default, the path below `experiment`) for a key of an experiment
    (experiment, experiment.end, meters.koran.experiment.variants.b.share); else None."""
    parts = dotted.split(".")
    meter = None
    if len(parts) >= 3 and parts[0] == "meters" and parts[2] == "experiment":
        meter, parts = parts[1], parts[2:]
    if parts[0] != "experiment":
        return None
    return meter, parts[1:]


def value_of(dotted: str, path: list[str], raw: str) -> Any:
    """An experiment's value as `--set` gives it: the whole experiment, its variants or one variant as
    JSON; a share or a quota a whole number; empty: none (removes the experiment, a variant or a key)."""
    if not raw:
        return None
    if not path or path == ["variants"] or (len(path) == 2 and path[0] == "variants"):
        try:
            return json.loads(raw)
        except ValueError:
            raise ExperimentError(f"{dotted} must be JSON (docs/api.md, Experiments)", dotted) from None
    numbers = (len(path) == 3 and path[2] == "share") or (len(path) == 4 and path[2] == "quota")
    if path[0] == "variants" and numbers:
        try:
            return int(raw)
        except ValueError:
            raise ExperimentError(f"{dotted} must be a whole number", dotted) from None
    return raw
