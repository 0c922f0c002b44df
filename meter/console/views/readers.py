"""Readers (support and up): find one by address, see everything about them, help them; and the
bulk resend of activation mail with its progress.

Every search is an audit row (who, the query, how many were found) and spends the member's search
budget (RATELIMIT_CONSOLE_SEARCH): a page of its own says so when it is spent.

Every reader is looked up within the site of the URL: another site's reader id is not found (404).
Each action answers with a redirect back to the reader's page and a one-line notice (POST, then
GET: a reload does not act twice).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from meter.accounts import Limit, RateLimited, enforce, mail_budget
from meter.console.forms import ActionForm, BulkForm, SubscriptionForm
from meter.console.rules import audit, bulk
from meter.console.rules import readers as support
from meter.console.views import error_page
from meter.console.views.auth import view
from meter.platform.redis_conn import RedisUnavailable


def _searching_member() -> str:
    """Key of the search limit: the signed-in member, when the request searches ("" for the empty form).
    Per member, whichever site: what is throttled is one person gathering addresses."""
    return f"staff{g.staff.id}" if request.args.get("q") else ""


# Reader searches per member (each also an audit row): a search by two letters at a time gathers addresses.
SEARCH = Limit("RATELIMIT_CONSOLE_SEARCH", "console-search", _searching_member)


@view("/readers", "support")
def readers():
    query = request.args.get("q", "")[:320]
    if query:
        try:
            enforce(SEARCH)
        except RateLimited as exc:
            return error_page(429, exc, kind="search")
    found = support.search(g.site, query, g.staff) if query else []
    return render_template("console/readers.html", query=query, found=found, searched=bool(query))


def _reader(reader_id: int):
    reader = support.get(g.site, reader_id)
    if reader is None:
        abort(404)
    return reader


@view("/readers/<int:reader_id>", "support")
def reader(reader_id: int):
    found = _reader(reader_id)
    audit.record("reader.view", staff=g.staff, site=g.site, detail={"reader": found.id})
    return render_template(
        "console/reader.html",
        reader=found,
        info=support.overview(g.site, found),
        action=ActionForm(),
        subscription=SubscriptionForm(formdata=None),
    )


def _back(reader_id: int, message: str, category: str = "notice"):
    flash(message, category)
    return redirect(url_for("console.reader", site_slug=g.site.slug, reader_id=reader_id), 303)


def _checked(form) -> None:
    if not form.validate_on_submit():
        abort(400)


@view("/readers/<int:reader_id>/resend", "support", methods=("POST",))
def resend(reader_id: int):
    _checked(ActionForm())
    found = _reader(reader_id)
    try:
        sent = support.resend_activation(g.site, found, g.staff)
    except mail_budget.Spent as exc:
        minutes = max(1, -(-exc.retry_after // 60))
        return _back(
            found.id, _("This address was mailed recently: another mail may go in %(n)d min.", n=minutes), "error"
        )
    if not sent:
        return _back(found.id, _("This reader is already verified: no activation mail is needed."), "error")
    return _back(found.id, _("The activation mail is on its way."))


@view("/readers/<int:reader_id>/end-sessions", "support", methods=("POST",))
def end_sessions(reader_id: int):
    _checked(ActionForm())
    found = _reader(reader_id)
    support.end_sessions(g.site, found, g.staff)
    return _back(found.id, _("Every session of this reader has ended."))


@view("/readers/<int:reader_id>/subscription", "support", methods=("POST",))
def subscribe(reader_id: int):
    found = _reader(reader_id)
    form = SubscriptionForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _back(found.id, _("Choose the last day of the subscription."), "error")
    local_end = datetime.combine(form.until.data + timedelta(days=1), time(0), tzinfo=g.site.policy.tz)
    support.set_subscription(g.site, found, local_end.astimezone(UTC), g.staff)
    return _back(found.id, _("Subscribed until %(day)s.", day=form.until.data.isoformat()))


@view("/readers/<int:reader_id>/unsubscribe", "support", methods=("POST",))
def unsubscribe(reader_id: int):
    _checked(ActionForm())
    found = _reader(reader_id)
    had = support.end_subscription(g.site, found, g.staff)
    return _back(found.id, _("The subscription has ended.") if had else _("This reader had no running subscription."))


@view("/readers/<int:reader_id>/reset-meter", "support", methods=("POST",))
def reset_meter(reader_id: int):
    _checked(ActionForm())
    found = _reader(reader_id)
    try:
        count = support.reset_meter(g.site, found, g.staff)
    except RedisUnavailable:
        return _back(found.id, _("Redis could not be reached: the meter is not reset yet. Try again."), "error")
    return _back(found.id, _("This period's meter is reset (%(n)d articles cleared).", n=count))


@view("/bulk-resend", "support", methods=("GET", "POST"))
def bulk_resend():
    form = BulkForm()
    if request.method == "GET" and form.since.data is None:
        form.since.data = (datetime.now(UTC).astimezone(g.site.policy.tz) - timedelta(days=7)).date()
    if form.validate_on_submit():
        since = datetime.combine(form.since.data, time(0), tzinfo=g.site.policy.tz).astimezone(UTC)
        job = bulk.start(g.site, since.replace(tzinfo=None), g.staff)
        return redirect(url_for("console.bulk_progress", site_slug=g.site.slug, job_id=job.id), 303)
    status = 422 if form.errors else 200
    return render_template("console/bulk.html", form=form, jobs=bulk.recent(g.site)), status


@view("/bulk-resend/<int:job_id>", "support")
def bulk_progress(job_id: int):
    job = bulk.get(g.site, job_id)
    if job is None:
        abort(404)
    return render_template("console/bulk_progress.html", job=job)
