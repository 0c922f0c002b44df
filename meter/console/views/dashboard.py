"""The dashboard (editors and owners): the site's figures per day, as charts, a table and a CSV file.

The figures are `stats.figures`, the very function behind `GET /v1/stats`: the console and the API
cannot disagree; so are the experiments' figures per variant (`stats.experiments`, since each
started, whatever the range). The range is the last 30 days unless `from` and `to` say otherwise (at most 366
days; a date that is not a date is said so on the page, never a 500).
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import g, make_response, render_template, request
from flask_babel import gettext as _
from markupsafe import Markup

from meter import stats
from meter.console.rules import figures
from meter.console.views.auth import view
from meter.console.views.charts import NARROW, Series, legend, lines, stacked_bars

MAX_DAYS = 366


def _range() -> tuple[date, date, str | None]:
    """(first, last, error): the asked range, or the last 30 days with the reason it was not taken."""
    today = stats.today(g.site)
    default = (today - timedelta(days=29), today)
    try:
        last = stats.parse_day(request.args["to"]) if request.args.get("to") else today
        first = stats.parse_day(request.args["from"]) if request.args.get("from") else last - timedelta(days=29)
    except (ValueError, OverflowError):
        return (*default, _("A date is written YYYY-MM-DD: the last 30 days are shown."))
    if not (first.year >= 2000 and last.year <= 2999):
        return (*default, _("Choose days from 2000 to 2999: the last 30 days are shown."))
    if first > last or (last - first).days >= MAX_DAYS:
        return (
            *default,
            _("The first day must come before the last, at most 366 days apart: the last 30 days are shown."),
        )
    return first, last, None


def _reason_labels() -> dict[str, str]:
    return {
        "registration_required": _("Registration wall"),
        "verification_required": _("Verification wall"),
        "quota_exhausted": _("Quota wall"),
        "subscription_required": _("Subscription wall"),
        "free_content": _("Free article"),
        "subscriber": _("Subscriber"),
        "unlocked_now": _("Unlocked now"),
        "already_unlocked": _("Read again"),
        "degraded_allow": _("Allowed, Redis away"),
        "degraded_deny": _("Refused, Redis away"),
    }


def _both(draw, labels: list[str], series: list[Series], title: str) -> Markup:
    """The chart wide and narrow: the stylesheet shows the one that fits the screen."""
    return draw(labels, series, title) + draw(labels, series, title, width=NARROW)


@view("/", "editor")
def dashboard():
    first, last, error = _range()
    per_day = figures.days(g.site, first, last)
    labels = [d["date"] for d in per_day]
    names = _reason_labels()

    def views(reasons) -> list[Series]:
        return [Series(r, names.get(r, r), [d["views"].get(r, 0) for d in per_day]) for r in reasons]

    walls = views(figures.WALLS)
    reads = views(figures.READS)
    accounts = [
        Series("registrations", _("Registrations"), [d["registrations"] for d in per_day]),
        Series("activations", _("Activations"), [d["activations"] for d in per_day]),
        Series("subscriptions_started", _("Subscriptions started"), [d["subscriptions_started"] for d in per_day]),
        Series("signins", _("Sign-ins"), [sum(d["signins"].values()) for d in per_day]),
    ]
    charts = [
        (
            "walls",
            _("Walls shown, by kind"),
            _both(stacked_bars, labels, walls, _("Walls shown, by kind")),
            legend(walls),
        ),
        (
            "reads",
            _("Articles opened, by reason"),
            _both(stacked_bars, labels, reads, _("Articles opened")),
            legend(reads),
        ),
        ("accounts", _("Readers"), _both(lines, labels, accounts, _("Readers")), legend(accounts)),
    ]
    return render_template(
        "console/dashboard.html",
        first=first,
        last=last,
        error=error,
        days=per_day,
        charts=charts,
        totals=figures.totals(g.site, first, last, per_day),
        names=names,
        walls=figures.WALLS,
        reads=figures.READS,
        experiments=stats.experiments(g.site),
    )


@view("/figures.csv", "editor")
def figures_csv():
    first, last, _error = _range()
    body = figures.csv_text(figures.days(g.site, first, last))
    response = make_response(body)
    response.mimetype = "text/csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{g.site.slug}-{first}-{last}.csv"'
    return response
