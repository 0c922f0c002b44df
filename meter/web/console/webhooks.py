"""Webhooks (owners): the site's endpoints (a new secret is shown once), their deliveries with
"send again", a ping, a rotation of the secret, an endpoint switched back on. Every change is an
audit row written with it (meter.domain.webhooks.endpoints)."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from meter.domain.webhooks import endpoints
from meter.web.console.auth import view
from meter.web.console.forms import ActionForm, WebhookForm


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
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        endpoint_id = int(request.form.get("endpoint", ""))
    except ValueError:
        abort(404)
    endpoint = endpoints.find(g.site_row.id, endpoint_id)
    if endpoint is None:
        abort(404)
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
    endpoints.remove(g.site_row, _endpoint(), g.staff)
    flash(_("The endpoint is removed: no more events go to it."), "notice")
    return _back()


@view("/webhooks/rotate", "owner", methods=("POST",))
def rotate_webhook():
    secret = endpoints.rotate(g.site_row, _endpoint(), g.staff)
    return _page(WebhookForm(formdata=None), secret=secret, status=201)


@view("/webhooks/enable", "owner", methods=("POST",))
def enable_webhook():
    endpoints.enable(g.site_row, _endpoint(), g.staff)
    flash(_("The endpoint is on again."), "notice")
    return _back()


@view("/webhooks/test", "owner", methods=("POST",))
def test_webhook():
    endpoints.ping(g.site_row, _endpoint(), g.staff)
    flash(_("A ping is on its way: its delivery is listed below."), "notice")
    return _back()


@view("/webhooks/send-again", "owner", methods=("POST",))
def send_webhook_again():
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        delivery_id = int(request.form.get("delivery", ""))
    except ValueError:
        abort(404)
    if not endpoints.send_again(g.site_row, delivery_id, g.staff):
        abort(404)
    flash(_("The delivery is sent again, with the same webhook-id."), "notice")
    return _back()
