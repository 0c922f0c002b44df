"""Webhooks (owners): the site's endpoints (a new secret is shown once), their deliveries with
"send again", a ping, a rotation of the secret, an endpoint switched back on. Every change is an
audit row written with it (meter.webhooks.rules.endpoints)."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from meter.console.forms import ActionForm, WebhookForm
from meter.console.views.auth import view
from meter.webhooks import endpoints


def _page(form: WebhookForm, secret: str | None = None, status: int = 200):
    site = g.site_row
    page = render_template(
        "console/webhooks.html",
        form=form,
        action=ActionForm(),
        rows=endpoints.listing(site.id),
        deliveries=endpoints.deliveries(site.id, limit=50),
        secret=secret,
    )
    return page, status


def _endpoint():
    """The site's endpoint the form names; None (the caller says so) for one that is not, or no longer, there."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        endpoint_id = int(request.form.get("endpoint", ""))
    except ValueError:
        endpoint_id = 0
    endpoint = endpoints.find(g.site_row.id, endpoint_id)
    if endpoint is None:
        flash(_("That endpoint is not there any more."), "error")
    return endpoint


def _back():
    return redirect(url_for("console.webhooks", site_slug=g.site.slug), 303)


@view("/webhooks", "owner", methods=("GET", "POST"))
def webhooks():
    form = WebhookForm()
    if request.method == "GET":
        return _page(form)
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _page(form, status=422)
    try:
        _endpoint_row, secret = endpoints.add(g.site_row, form.url.data, form.events.data, g.staff)
    except endpoints.EndpointError as exc:
        form.url.errors = [_("This URL cannot be used: %(why)s.", why=str(exc))]
        return _page(form, status=422)
    return _page(WebhookForm(formdata=None), secret=secret, status=201)


@view("/webhooks/remove", "owner", methods=("POST",))
def remove_webhook():
    endpoint = _endpoint()
    if endpoint is None:
        return _back()
    endpoints.remove(g.site_row, endpoint, g.staff)
    flash(_("The endpoint is removed: no more events go to it."), "notice")
    return _back()


@view("/webhooks/rotate", "owner", methods=("POST",))
def rotate_webhook():
    endpoint = _endpoint()
    if endpoint is None:
        return _back()
    secret = endpoints.rotate(g.site_row, endpoint, g.staff)
    return _page(WebhookForm(formdata=None), secret=secret, status=201)


@view("/webhooks/enable", "owner", methods=("POST",))
def enable_webhook():
    endpoint = _endpoint()
    if endpoint is None:
        return _back()
    endpoints.enable(g.site_row, endpoint, g.staff)
    flash(_("The endpoint is on again."), "notice")
    return _back()


@view("/webhooks/test", "owner", methods=("POST",))
def test_webhook():
    endpoint = _endpoint()
    if endpoint is None:
        return _back()
    endpoints.ping(g.site_row, endpoint, g.staff)
    flash(_("A ping is on its way: its delivery is listed below."), "notice")
    return _back()


@view("/webhooks/send-again", "owner", methods=("POST",))
def send_webhook_again():
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        delivery_id = int(request.form.get("delivery", ""))
    except ValueError:
        delivery_id = 0
    if endpoints.send_again(g.site_row, delivery_id, g.staff):
        flash(_("The delivery is sent again, with the same webhook-id."), "notice")
    else:
        flash(_("That delivery is not there any more."), "error")
    return _back()
