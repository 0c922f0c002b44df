"""The webhook events of readers' accounts, one function each, so every flow that makes the same
change says it the same way. Each adds the event to the webhook outbox (meter.webhooks.rules.outbox):
the caller commits it with the change."""

from __future__ import annotations

from meter.accounts.models import Reader
from meter.platform.clock import utcnow
from meter.webhooks import outbox as webhook_outbox

iso = webhook_outbox.iso


def registered(reader: Reader, method: str) -> None:
    """A new account (flushed: it has its id): by "password" or a sign-in provider's name."""
    data = webhook_outbox.reader_data(
        reader,
        locale=reader.locale,
        method=method,
        verified=reader.verified_at is not None,
        created_at=iso(reader.created_at or utcnow()),
    )
    webhook_outbox.emit(reader.site_id, "reader.registered", data, reader.id)


def activated(reader: Reader) -> None:
    """The account's address is proven (activation link, password reset, address change, a provider)."""
    data = webhook_outbox.reader_data(reader, verified_at=iso(reader.verified_at or utcnow()))
    webhook_outbox.emit(reader.site_id, "reader.activated", data, reader.id)


def email_changed(reader: Reader, previous: str, new: str) -> None:
    data = {"reader": {"id": reader.id, "email": new}, "previous_email": previous}
    webhook_outbox.emit(reader.site_id, "reader.email_changed", data, reader.id)


def subscription_changed(reader: Reader, previous_until) -> None:
    """`previous_until`: the subscription's end before the change (naive UTC, or None)."""
    data = {
        "reader": {"id": reader.id, "email": reader.email},
        "subscription": {
            "until": iso(reader.subscription_until),
            "active": reader.is_subscriber(),
            "previous_until": iso(previous_until),
        },
    }
    webhook_outbox.emit(reader.site_id, "reader.subscription_changed", data, reader.id)


def deleted(site_id: int, reader_id: int, address: str, why: str) -> None:
    """The reader is being deleted: its id and address, so the receiver can erase them too."""
    data = {"reader": {"id": reader_id, "email": address}, "reason": why}
    webhook_outbox.emit(site_id, "reader.deleted", data)
