"""Subscriptions, set by the publisher's billing (the API) or by an operator: one place that changes them.

A change is committed with its webhook event, the reader's cached state dropped (the next access check sees it), and a
subscription that starts — the reader was not a subscriber a moment ago — is announced for the figures.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app

from meter.access import metering
from meter.accounts.models import Reader
from meter.accounts.rules import events
from meter.platform import signals
from meter.platform.clock import utcnow
from meter.platform.db import db


def set_until(reader: Reader, until: datetime) -> None:
    """Subscribed until `until` (aware); a time already past ends the subscription."""
    was, before = reader.is_subscriber(), reader.subscription_until
    reader.subscription_until = until.astimezone(UTC).replace(tzinfo=None)
    _changed(reader, was, before)


def end(reader: Reader) -> bool:
    """End it now; False when there was none running."""
    was, before = reader.is_subscriber(), reader.subscription_until
    reader.subscription_until = None
    _changed(reader, was, before)
    return was


def _changed(reader: Reader, was_subscriber: bool, before: datetime | None) -> None:
    if reader.subscription_until != before:  # the publisher's systems hear of a change, with the change
        events.subscription_changed(reader, before)
    db.session.commit()
    metering.forget_reader_state(reader.site_id, reader.id)
    if reader.is_subscriber(utcnow()) and not was_subscriber:
        signals.subscription_started.send(current_app._get_current_object(), reader=reader)
