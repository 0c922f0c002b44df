"""A site's webhook endpoints: made with a secret shown once, listed, removed, their secret rotated
with an overlap, enabled again, pinged; and their deliveries listed and sent again.

The command line (`flask sites webhooks …`) and the console (owners) both come here. A change made
by a staff member writes its audit row in the same transaction (the command line's come from
`meter.sites.operator.audited`). A secret is never logged, never in an audit row, and shown only
once, when made: stored sealed (meter.social.rules.sealing), as the sign-in providers' secrets.
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from flask import current_app
from sqlalchemy import select, update

from meter.console import audit
from meter.console.models import Staff
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites.models import Site
from meter.social import sealing
from meter.webhooks.models import WebhookDelivery, WebhookEndpoint
from meter.webhooks.rules import outbox as webhook_outbox
from meter.webhooks.rules import transport

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
EVENTS = webhook_outbox.EVENTS
MAX_ENDPOINTS = 10  # per site: each event is a row per endpoint


class EndpointError(ValueError):
    """A URL or an event list that cannot be used; the message says why, in one line."""


def new_secret() -> str:
    """`whsec_` and the base64 of 32 random bytes (the Standard Webhooks form)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def allow_private() -> bool:
    return bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE"))


def check_url(url: str) -> str:
    """The URL when its form is allowed (https, a public host name or address); raise EndpointError."""
    url = (url or "").strip()
    try:
        transport.parse(url, allow_private())
    except transport.Refused as exc:
        raise EndpointError(f"the URL {exc}") from None
    return url


def check_events(events: list[str] | tuple[str, ...] | None) -> list[str]:
    """The event types asked for, in the documented order ([]: all of them); raise EndpointError."""
    asked = [event.strip() for item in (events or ()) for event in item.split(",") if event.strip()]
    unknown = sorted(set(asked) - set(EVENTS))
    if unknown:
        raise EndpointError(f"unknown event {unknown[0]}: choose from {', '.join(EVENTS)}")
    return [event for event in EVENTS if event in asked]


def shown_url(url: str) -> str:
    """The URL as audit rows and logs write it: without its query, which may hold the receiver's token."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def listing(site_id: int) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.site_id == site_id).order_by(WebhookEndpoint.id)
    return list(db.session.scalars(query))


def find(site_id: int, endpoint_id: int) -> WebhookEndpoint | None:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id) if isinstance(endpoint_id, int) else None
    return endpoint if endpoint is not None and endpoint.site_id == site_id else None


def add(site: Site, url: str, events: list[str] | None, staff: Staff | None = None) -> tuple[WebhookEndpoint, str]:
    """Make an endpoint; returns it and its secret (to be shown once). Raise EndpointError."""
    url = check_url(url)
    chosen = check_events(events)
    if len(listing(site.id)) >= MAX_ENDPOINTS:
        raise EndpointError(f"a site has at most {MAX_ENDPOINTS} endpoints: remove one first")
    secret = new_secret()
    endpoint = WebhookEndpoint(site_id=site.id, url=url, events=chosen, secret=sealing.seal(secret))
    db.session.add(endpoint)
    db.session.flush()
    _audit("webhook.add", site, staff, endpoint, events=chosen or "all")
    db.session.commit()
    return endpoint, secret


def remove(site: Site, endpoint: WebhookEndpoint, staff: Staff | None = None) -> None:
    """Delete the endpoint and its deliveries (sent or not)."""
    _audit("webhook.remove", site, staff, endpoint)
    db.session.delete(endpoint)
    db.session.commit()


def rotate(site: Site, endpoint: WebhookEndpoint, staff: Staff | None = None) -> str:
    """A new secret (returned, to be shown once); the old one also signs for WEBHOOK_SECRET_OVERLAP seconds."""
    secret = new_secret()
    overlap = timedelta(seconds=current_app.config["WEBHOOK_SECRET_OVERLAP"])
    endpoint.previous_secret, endpoint.previous_until = endpoint.secret, utcnow() + overlap
    endpoint.secret = sealing.seal(secret)
    _audit("webhook.rotate", site, staff, endpoint, old_secret_until=webhook_outbox.iso(endpoint.previous_until))
    db.session.commit()
    return secret


def enable(site: Site, endpoint: WebhookEndpoint, staff: Staff | None = None) -> None:
    """Deliver to a disabled endpoint again (its dead deliveries stay dead: "send again" takes them back)."""
    endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
    _audit("webhook.enable", site, staff, endpoint)
    db.session.commit()


def ping(site: Site, endpoint: WebhookEndpoint, staff: Staff | None = None) -> WebhookDelivery:
    """Queue a `ping` event for this endpoint (the worker sends it at once, as any event)."""
    row = webhook_outbox.emit_to(endpoint, webhook_outbox.PING, {"endpoint": endpoint.id, "site": site.slug})
    _audit("webhook.test", site, staff, endpoint)
    db.session.commit()
    return row


def signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one during its overlap."""
    found = [sealing.unseal(endpoint.secret)]
    if endpoint.previous_secret and endpoint.previous_until and endpoint.previous_until > utcnow():
        found.append(sealing.unseal(endpoint.previous_secret))
    return found


def deliveries(site_id: int, endpoint_id: int | None = None, limit: int = 100) -> list[WebhookDelivery]:
    """The site's latest deliveries (of one endpoint when given), newest first."""
    query = select(WebhookDelivery).where(WebhookDelivery.site_id == site_id)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    return list(db.session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))


def send_again(site: Site, delivery_id: int, staff: Staff | None = None) -> bool:
    """Send a delivery again now, under its own webhook-id (delivered, failing or dead); False when not the site's."""
    row = db.session.get(WebhookDelivery, delivery_id) if isinstance(delivery_id, int) else None
    if row is None or row.site_id != site.id:
        return False
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == row.id)
        .values(delivered_at=None, dead_at=None, next_attempt_at=utcnow(), locked_until=None)
    )
    if staff is not None:
        detail = {"delivery": row.id, "event": row.event_type, "endpoint": row.endpoint_id}
        audit.record("webhook.send_again", staff=staff, site=site, detail=detail, commit=False)
    db.session.commit()
    return True


def _audit(action: str, site: Site, staff: Staff | None, endpoint: WebhookEndpoint, **extra) -> None:
    """The console's audit row (the command line's is written by its `audited` decorator)."""
    if staff is not None:
        detail = {"endpoint": endpoint.id, "url": shown_url(endpoint.url), **extra}
        audit.record(action, staff=staff, site=site, detail=detail, commit=False)
