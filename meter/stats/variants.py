"""The figures of the meters' experiments, per variant: walls, registrations, activations,
subscriptions started, and the conversion from a wall to a registration and to a subscription with its
95% interval (Wilson's score interval).

Walls are counted by the access check's script in the day's stats bucket, in a field of the variant's
(`x:<figures id>:<variant>`, meter.access.rules.metering.check.wall_field), and moved into
`daily_stats` by the worker's roll-up with the views. The events are counted in SQL as they happen,
in the variant of the reader (their seed: meter.sites.rules.experiments), for each experiment
running then. A row's metric is `x:<figures id>:<figure>` and its key the variant, so no row names a
reader. A wall is a refused check of the meter: one reader walled twice counts twice, so a rate is
per wall shown, not per reader.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from meter.accounts.models import Reader
from meter.platform.db import db
from meter.sites import Policy, experiments
from meter.stats.models import DailyStat

PREFIX = "x:"
FIGURES = ("walls", "registrations", "activations", "subscriptions_started")
Z95 = 1.959964  # the normal quantile of a two-sided 95% interval


def wilson(successes: int, trials: int, z: float = Z95) -> dict | None:
    """The rate successes/trials with its Wilson score interval; None without a trial. A count above the
    trials (registrations of readers who never met a wall) is taken as every trial converting."""
    if trials <= 0:
        return None
    k = min(successes, trials)
    p = k / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return {"rate": round(p, 6), "low": round(max(centre - half, 0.0), 6), "high": round(min(centre + half, 1.0), 6)}


def metric(figures_id: str, figure: str) -> str:
    return f"{PREFIX}{figures_id}:{figure}"


def wall_counts(fields: dict[str, int]) -> tuple[dict[str, int], list[tuple[str, str, int]]]:
    """A stats bucket's counts split: (the views by reason, [(metric, variant, walls)])."""
    views: dict[str, int] = {}
    walls = []
    for field, n in fields.items():
        if field.startswith(PREFIX):
            figures_id, _, variant = field[len(PREFIX) :].partition(":")
            walls.append((metric(figures_id, "walls"), variant, n))
        else:
            views[field] = n
    return views, walls


def variants_of(policy: Policy, reader: Reader, now: datetime) -> list[tuple[str, str]]:
    """(figures id, variant) of the reader in each experiment running now."""
    out = []
    seed = experiments.reader_seed(reader.id, reader.variant_seed)
    for meter in policy.all_meters:
        experiment = meter.experiment
        if experiment is None or not experiment.running(now):
            continue
        key = experiments.hash_key(current_app.config["SECRET_KEY"], reader.site_id, meter.name, experiment.name)
        out.append((experiment.figures_id(meter.name), experiment.variant_of(key, seed).name))
    return out


def figures(site_id: int, policy: Policy, live_walls: list[tuple[str, str, int]]) -> list[dict]:
    """Every experiment of the policy's meters, its figures per variant since it started (`live_walls`:
    today's walls not rolled up yet)."""
    out = []
    for meter in policy.all_meters:
        experiment = meter.experiment
        if experiment is None:
            continue
        figures_id = experiment.figures_id(meter.name)
        counts: dict[str, Counter] = {v.name: Counter() for v in experiment.variants}
        rows = select(DailyStat.metric, DailyStat.key, DailyStat.value).where(
            DailyStat.site_id == site_id, DailyStat.metric.like(f"{PREFIX}{figures_id}:%")
        )
        for name, variant, value in db.session.execute(rows):
            if variant in counts:
                counts[variant][name.rpartition(":")[2]] += value
        for name, variant, value in live_walls:
            if name == metric(figures_id, "walls") and variant in counts:
                counts[variant]["walls"] += value
        variants = []
        for variant in experiment.variants:
            c = counts[variant.name]
            quota = dict(variant.quota)
            variants.append(
                {
                    "name": variant.name,
                    "share": variant.share,
                    "quota": {
                        "anonymous": quota.get("anonymous", meter.quota_anonymous),
                        "registered": quota.get("registered", meter.quota_registered),
                        "verified": quota.get("verified", meter.quota_verified),
                    },
                    **{figure: c[figure] for figure in FIGURES},
                    "wall_to_registration": wilson(c["registrations"], c["walls"]),
                    "wall_to_subscription": wilson(c["subscriptions_started"], c["walls"]),
                }
            )
        out.append(
            {
                "meter": meter.name,
                "name": experiment.name,
                "start": experiment.start.isoformat(),
                "end": experiment.end.isoformat(),
                "adopted": experiment.adopted,
                "variants": variants,
            }
        )
    return out
