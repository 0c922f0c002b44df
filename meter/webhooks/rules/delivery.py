"""The worker's webhook duty: send what is due, signed; retry; give up; disable an endpoint that is gone.

Each due row is claimed with a lease (two workers never send one row at once), then POSTed through
`transport` with the headers of Standard Webhooks. A 2xx answer delivers it. Anything else (another
status, a refused address, a timeout, a reset) is a failed attempt: the row is tried again after
WEBHOOK_RETRY_BASE seconds doubled per attempt (at most WEBHOOK_RETRY_MAX), each wait jittered by
±20% so a receiver that comes back is not hit by every sender at the same second, until
WEBHOOK_RETRY_SECONDS (3 days) after the event: then it is a dead letter. The same `webhook-id`
and body go on every attempt; `webhook-timestamp` and the signature are those of the attempt.

An endpoint that answers 410 Gone, or has failed without a success for WEBHOOK_RETRY_SECONDS, is
disabled: its waiting rows become dead letters and the site's owners are mailed (the mail outbox).
When a connection to an endpoint fails (refused, timed out), its other due rows wait for the
failed one's next attempt instead of each paying a timeout in this pass.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import logging
import random
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, or_, select, update

from meter.accounts import mail_context
from meter.console.models import Staff, StaffGrant
from meter.platform import clock, leases, mail, metrics
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites import sites
from meter.sites.models import Site
from meter.webhooks.models import WebhookDelivery, WebhookEndpoint
from meter.webhooks.rules import endpoints, transport

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
STORED_RESPONSE = 1024  # bytes of the receiver's answer kept (the console shows them)
USER_AGENT = "meter-webhooks/1"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,` + base64 HMAC-SHA256 over "id.timestamp.body" keyed with the secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix(endpoints.SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets),
    }


def _due() -> list[int]:
    now = utcnow()
    query = (
        select(WebhookDelivery.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.dead_at.is_(None),
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
            WebhookEndpoint.disabled_at.is_(None),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(current_app.config["WEBHOOK_BATCH"])
    )
    return list(db.session.scalars(query))


def _claim(row_id: int) -> bool:
    return leases.claim(WebhookDelivery, row_id, WebhookDelivery.delivered_at, LEASE)


def deliver_due() -> int:
    """One pass: every due row of a live endpoint; returns how many were delivered."""
    delivered = 0
    unreachable: set[int] = set()  # endpoints whose connection failed in this pass
    for row_id in _due():
        row = db.session.get(WebhookDelivery, row_id)
        if row is None or row.endpoint_id in unreachable or not _claim(row_id):
            continue
        endpoint = db.session.get(WebhookEndpoint, row.endpoint_id)
        if endpoint is None or endpoint.disabled_at is not None:
            continue
        outcome = attempt(row, endpoint)
        if outcome == "delivered":
            delivered += 1
        elif outcome == "unreachable":
            unreachable.add(endpoint.id)
    return delivered


def attempt(row: WebhookDelivery, endpoint: WebhookEndpoint) -> str:
    """Send one row once and record what happened: delivered, failed, unreachable (failed to connect), dead."""
    config = current_app.config
    body = row.body.encode("utf-8")
    try:
        answer = transport.post(
            endpoint.url,
            body,
            headers(endpoints.signing_secrets(endpoint), row.msg_id, clock.now_epoch(), body),
            allow_private=bool(config.get("WEBHOOK_ALLOW_PRIVATE")),
            connect_timeout=config["WEBHOOK_CONNECT_TIMEOUT"],
            total_timeout=config["WEBHOOK_TIMEOUT"],
        )
    except transport.Refused as exc:
        return _failed(row, endpoint, None, f"refused: {exc}", unreachable=True)
    except (OSError, http.client.HTTPException) as exc:
        return _failed(row, endpoint, None, f"{type(exc).__name__}: {exc}", unreachable=True)
    text = answer.body[:STORED_RESPONSE].decode("utf-8", "replace")
    if 200 <= answer.status < 300:
        return _delivered(row, endpoint, answer.status, text)
    if answer.status == 410:
        _failed(row, endpoint, answer.status, "410 Gone", response=text)
        if endpoint.disabled_at is None:
            disable(endpoint, "gone")
        return "dead"
    return _failed(row, endpoint, answer.status, f"answered {answer.status}", response=text)


def _delivered(row: WebhookDelivery, endpoint: WebhookEndpoint, status: int, text: str) -> str:
    now = utcnow()
    row.attempts += 1
    row.delivered_at, row.locked_until = now, None
    row.last_status, row.last_response, row.last_error = status, text, None
    endpoint.failing_since, endpoint.last_success_at = None, now
    db.session.commit()
    metrics.webhook_outcome("delivered")
    log.info(
        "webhook %s %s delivered to endpoint %s (attempt %s)", row.msg_id, row.event_type, endpoint.id, row.attempts
    )
    return "delivered"


def backoff(attempts: int) -> timedelta:
    config = current_app.config
    wait = min(config["WEBHOOK_RETRY_BASE"] * 2 ** max(attempts - 1, 0), config["WEBHOOK_RETRY_MAX"])
    return timedelta(seconds=wait * random.uniform(0.8, 1.2))


def _failed(
    row: WebhookDelivery,
    endpoint: WebhookEndpoint,
    status: int | None,
    error: str,
    response: str | None = None,
    unreachable: bool = False,
) -> str:
    now = utcnow()
    window = timedelta(seconds=current_app.config["WEBHOOK_RETRY_SECONDS"])
    row.attempts += 1
    row.locked_until = None
    row.last_status, row.last_error, row.last_response = status, error[:1200], response
    endpoint.failing_since = endpoint.failing_since or now
    retry_at = now + backoff(row.attempts)
    if retry_at > row.created_at + window:
        row.dead_at = now
        outcome = "dead"
    else:
        row.next_attempt_at = retry_at
        outcome = "failed"
        if unreachable:  # its other rows wait for this one's retry instead of each timing out now
            db.session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.endpoint_id == endpoint.id,
                    WebhookDelivery.id != row.id,
                    WebhookDelivery.delivered_at.is_(None),
                    WebhookDelivery.dead_at.is_(None),
                    WebhookDelivery.next_attempt_at < retry_at,
                )
                .values(next_attempt_at=retry_at)
            )
    db.session.commit()
    metrics.webhook_outcome(outcome)
    log.warning(
        "webhook %s %s to endpoint %s failed (attempt %s, %s): %s",
        row.msg_id,
        row.event_type,
        endpoint.id,
        row.attempts,
        "dead letter" if outcome == "dead" else f"retry at {row.next_attempt_at}",
        error,
    )
    if endpoint.disabled_at is None and now - endpoint.failing_since >= window:
        disable(endpoint, "failing")
    return "unreachable" if unreachable and outcome == "failed" else outcome


def disable(endpoint: WebhookEndpoint, reason: str) -> None:
    """Stop delivering to the endpoint (`reason`: gone or failing): its waiting rows become dead letters,
    the site's owners are mailed."""
    now = utcnow()
    endpoint.disabled_at, endpoint.disabled_reason = now, reason
    dead = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.dead_at.is_(None),
        )
        .values(dead_at=now, locked_until=None, last_error="the endpoint was disabled")
    ).rowcount
    site = db.session.get(Site, endpoint.site_id)
    _mail_owners(site, endpoint, reason)
    db.session.commit()
    metrics.webhook_outcome("disabled")
    log.error("webhook endpoint %s of site %s disabled (%s); %s deliveries dead", endpoint.id, site.slug, reason, dead)


def _mail_owners(site: Site, endpoint: WebhookEndpoint, reason: str) -> None:
    owners = db.session.scalars(
        select(Staff)
        .join(StaffGrant, StaffGrant.staff_id == Staff.id)
        .where(StaffGrant.site_id == site.id, StaffGrant.role == "owner", Staff.disabled_at.is_(None))
    ).all()
    info = sites.info(site)
    link = f"{current_app.config['PUBLIC_BASE_URL']}/console/{site.slug}/webhooks"
    for owner in owners:
        days = round(current_app.config["WEBHOOK_RETRY_SECONDS"] / 86400)
        host = urlsplit(endpoint.url).hostname or "?"  # not the URL: a mail shows no address outside a link
        context = mail_context(info, host=host, reason=reason, days=days, link=link)
        mail.queue("webhook_disabled", owner.email, info.locale, site.id, **context)


def backlog() -> dict:
    """Deliveries waiting (not delivered, not dead) and the oldest one's age in seconds (0 when none)."""
    waiting = WebhookDelivery.delivered_at.is_(None) & WebhookDelivery.dead_at.is_(None)
    count, oldest = db.session.execute(select(func.count(), func.min(WebhookDelivery.created_at)).where(waiting)).one()
    dead = db.session.scalar(select(func.count()).where(WebhookDelivery.dead_at.is_not(None)))
    age = max((utcnow() - oldest).total_seconds(), 0.0) if oldest else 0.0
    return {"waiting": count, "dead": dead, "oldest_waiting_seconds": age}


def prune() -> int:
    """Delete deliveries delivered or dead for SENT_MAIL_RETENTION_DAYS (they may hold readers' addresses)."""
    before = utcnow() - timedelta(days=current_app.config["SENT_MAIL_RETENTION_DAYS"])
    old = or_(WebhookDelivery.delivered_at < before, WebhookDelivery.dead_at < before)
    count = db.session.execute(WebhookDelivery.__table__.delete().where(old)).rowcount
    db.session.commit()
    return count
