"""The tables of this feature: WebhookEndpoint, WebhookDelivery."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from meter.platform.clock import utcnow
from meter.platform.db import db


class WebhookEndpoint(db.Model):
    """A URL of the publisher's that is sent the site's events (Standard Webhooks, meter.webhooks.rules).

    `secret` is the signing secret (`whsec_…`), sealed at rest as the sign-in providers' secrets are
    (meter.social.rules.sealing), shown once when made. After a rotation the old one stays, sealed, in
    `previous_secret` until `previous_until`: deliveries are signed with both meanwhile. `events` lists
    the event types sent ([] = all of them). `failing_since` is when the endpoint's current run of
    failures began (None after a success); `disabled_at` stops deliveries (a 410, or 3 days failing).
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(Text)  # sealed
    previous_secret: Mapped[str | None] = mapped_column(Text)  # sealed
    previous_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(200))


class WebhookDelivery(db.Model):
    """One event for one endpoint: the webhook outbox (meter.webhooks.rules.outbox writes it in the
    transaction of the change; the worker delivers it). `msg_id` is the `webhook-id`, the same on
    every attempt; `body` the exact bytes signed and sent. `reader_id` names the reader the event is
    about (no foreign key: a reader.deleted row outlives its reader), so that a deletion removes the
    reader's past deliveries. `last_response` keeps at most 1 kB of the receiver's answer."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "delivered_at", "dead_at", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_reader", "reader_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    reader_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(1200))
    last_response: Mapped[str | None] = mapped_column(String(1100))
