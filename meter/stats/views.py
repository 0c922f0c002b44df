"""`GET /v1/stats`: the site's figures per day, as the console shows them (meter.stats.rules)."""

from __future__ import annotations

from datetime import date, timedelta

from flask import g, request

from meter.platform import responses as out
from meter.platform.openapi import Answer, describe, query
from meter.platform.problems import Problem
from meter.sites import api_blueprint
from meter.stats import rules as stats

bp = api_blueprint("stats_api", __name__)

MAX_DAYS = 366
DATE = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}


def _day(name: str, default):
    value = request.args.get(name)
    if value is None:
        return default
    try:
        return stats.parse_day(value)
    except ValueError:
        raise Problem(
            422, "validation-failed", "Validation failed", f"{name}: a date, YYYY-MM-DD.", {name: "YYYY-MM-DD"}
        ) from None


@describe(
    "The site's figures per day, in its time zone: views by reason, registrations, activations and their "
    "median time, sign-ins by method, subscriptions started, gifts made. Today includes the views not yet "
    "rolled up. Then each experiment of the site's meters, per variant: walls, registrations, activations, "
    "subscriptions started, and the conversion from a wall to a registration and to a subscription with its 95% "
    "interval. Without from/to: the last 30 days.",
    {200: Answer("One entry per day, every figure present (0 when nothing happened).", out.Stats)},
    errors={422: "A date that is not YYYY-MM-DD, `from` after `to`, or more than 366 days (`validation-failed`)."},
    params={
        "from": query("from", "The first day (YYYY-MM-DD); default 29 days before `to`.", schema=DATE),
        "to": query("to", "The last day (YYYY-MM-DD); default today in the site's time zone.", schema=DATE),
    },
)
@bp.get("/stats")
def figures():
    site = g.site
    last = _day("to", stats.today(site))
    first = _day("from", last - timedelta(days=29) if last > date.min + timedelta(days=29) else date.min)
    if first > last or (last - first).days >= MAX_DAYS:
        message = f"from must not be after to, and at most {MAX_DAYS} days"
        raise Problem(422, "validation-failed", "Validation failed", message, {"from": message})
    return out.Stats(
        site=site.slug,
        timezone=site.policy.timezone,
        days=stats.figures(site, first, last),
        experiments=stats.experiments(site),
    )
