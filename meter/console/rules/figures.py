"""The dashboard's figures: `stats.figures` (the very numbers `GET /v1/stats` answers), summed over the
range and laid out for charts and a CSV file. Nothing is counted here.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from datetime import date

from meter import stats
from meter.platform.db import db
from meter.sites import SiteInfo
from meter.stats.models import ActivationTime

WALLS = ("registration_required", "verification_required", "quota_exhausted", "subscription_required")
READS = ("free_content", "subscriber", "unlocked_now", "already_unlocked")


def days(site: SiteInfo, first: date, last: date) -> list[dict]:
    return stats.figures(site, first, last)


def totals(site: SiteInfo, first: date, last: date, per_day: list[dict]) -> dict:
    """Sums over the range, the activation rate, and the median time to activate over all of its samples."""
    views: Counter = Counter()
    signins: Counter = Counter()
    events: Counter = Counter()
    for day in per_day:
        views.update(day["views"])
        signins.update(day["signins"])
        events.update({name: day[name] for name in stats.EVENTS})
    samples = db.session.scalars(
        db.select(ActivationTime.seconds).where(
            ActivationTime.site_id == site.id, ActivationTime.day >= first, ActivationTime.day <= last
        )
    ).all()
    registrations = events["registrations"]
    return {
        "views": dict(views),
        "walls": sum(views[reason] for reason in WALLS),
        "reads": sum(n for reason, n in views.items() if reason not in WALLS),
        "signins": dict(signins),
        **{name: events[name] for name in stats.EVENTS},
        "activation_rate": events["activations"] / registrations if registrations else None,
        "median_activation_seconds": int(statistics.median(samples)) if samples else None,
    }


def columns(per_day: list[dict]) -> list[str]:
    """The CSV's columns: every reason and sign-in method that occurs (every reason always), then the events."""
    reasons = list(stats.REASONS) + sorted({r for d in per_day for r in d["views"]} - set(stats.REASONS))
    methods = ["password", *sorted({m for d in per_day for m in d["signins"]} - {"password"})]
    return [
        "date",
        *(f"views.{reason}" for reason in reasons),
        "registrations",
        "activations",
        "median_activation_seconds",
        *(f"signins.{method}" for method in methods),
        "subscriptions_started",
        "gifts_made",
    ]


def csv_text(per_day: list[dict]) -> str:
    out = io.StringIO()
    names = columns(per_day)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names)
    for day in per_day:
        row = []
        for name in names:
            group, _, key = name.partition(".")
            value = day[group].get(key, 0) if key else day[name]
            row.append("" if value is None else value)
        writer.writerow(row)
    return out.getvalue()
