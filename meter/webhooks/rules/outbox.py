"""The webhook outbox: an event becomes one row per endpoint that wants it, in the transaction of the change.

As with mail (meter.platform.mail), a flow never calls the publisher's servers itself: it adds the
event here and commits it with its change, so there is no event without the change and no change
without its event (a rollback takes both). The worker delivers the rows (meter.webhooks.rules).
A site without endpoints costs one small SELECT and writes nothing.

The body is fixed now, with the event's time, and never rebuilt: each attempt sends and signs the
same bytes under the same `webhook-id`, so a receiver can drop a duplicate.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.webhooks.models import WebhookDelivery, WebhookEndpoint

EVENTS = (
    "reader.registered",
    "reader.activated",
    "reader.subscription_changed",
    "reader.email_changed",
    "reader.deleted",
    "gift.created",
)
PING = "ping"


def iso(value: datetime | None) -> str | None:
    """A stored time (naive UTC) as the events write it: ISO 8601 with Z."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def body(event_type: str, data: dict[str, Any], at: datetime | None = None) -> str:
    """The JSON body: {"type", "timestamp", "data"} (compact, keys in order: the bytes that are signed)."""
    payload = {"type": event_type, "timestamp": iso(at or utcnow()), "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def new_msg_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return not endpoint.events or event_type in endpoint.events


def emit(site_id: int, event_type: str, data: dict[str, Any], reader_id: int | None = None) -> int:
    """Add the event for each live endpoint of the site that wants it (the caller commits); returns how many."""
    endpoints = db.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.site_id == site_id, WebhookEndpoint.disabled_at.is_(None))
    ).all()
    chosen = [endpoint for endpoint in endpoints if wants(endpoint, event_type)]
    if chosen:
        text = body(event_type, data)
        for endpoint in chosen:
            db.session.add(_row(endpoint, event_type, text, reader_id))
    return len(chosen)


def emit_to(endpoint: WebhookEndpoint, event_type: str, data: dict[str, Any]) -> WebhookDelivery:
    """One event for one endpoint whatever it subscribed to (a `ping`); the caller commits."""
    row = _row(endpoint, event_type, body(event_type, data), None)
    db.session.add(row)
    return row


def _row(endpoint: WebhookEndpoint, event_type: str, text: str, reader_id: int | None) -> WebhookDelivery:
    now = utcnow()
    return WebhookDelivery(
        site_id=endpoint.site_id,
        endpoint_id=endpoint.id,
        msg_id=new_msg_id(),
        event_type=event_type,
        body=text,
        reader_id=reader_id,
        created_at=now,
        next_attempt_at=now,
    )


def reader_data(reader: Any, **extra: Any) -> dict[str, Any]:
    """What every reader.* event says of the reader: its id and address (and `extra`)."""
    return {"reader": {"id": reader.id, "email": reader.email, **extra}}
