"""How long meter keeps what it keeps: the worker's retention duty (docs/security.md, "What meter stores").

- An account never activated is deleted `UNVERIFIED_RETENTION_DAYS` (30) after it was made, as a
  deletion by the reader would (`erasure.erase`): an address typed by someone who never proved it
  is not worth keeping, and may not even be the typist's. An unverified reader with a running
  subscription (set by the publisher's billing) is kept: it is a customer.
- Mail the outbox sent, or gave up on (a dead letter), is deleted `SENT_MAIL_RETENTION_DAYS` (30)
  after that: long enough to answer "did my mail go out?", short enough that the outbox is not an
  archive of every address meter ever wrote to.

Each pass does a bounded batch, so a first run over a large backlog never holds the worker long.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, or_, select

from meter.accounts.models import Reader
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.platform.redis_conn import RedisUnavailable
from meter.reader_data.rules.erasure import erase
from meter.sites import info
from meter.sites.models import Site

log = logging.getLogger(__name__)

BATCH = 200  # accounts deleted per pass at most


def delete_unverified(limit: int = BATCH) -> int:
    """Delete accounts never activated and older than UNVERIFIED_RETENTION_DAYS; returns how many."""
    now = utcnow()
    cutoff = now - timedelta(days=current_app.config["UNVERIFIED_RETENTION_DAYS"])
    ids = db.session.scalars(
        select(Reader.id)
        .where(
            Reader.verified_at.is_(None),
            Reader.created_at < cutoff,
            or_(Reader.subscription_until.is_(None), Reader.subscription_until <= now),
        )
        .order_by(Reader.created_at)
        .limit(limit)
    ).all()
    deleted = 0
    sites: dict[int, object] = {}
    for reader_id in ids:
        reader = db.session.get(Reader, reader_id)
        if reader is None or reader.verified_at is not None:
            continue  # activated (or deleted) since the list was read
        site = sites.get(reader.site_id)
        if site is None:
            site = sites[reader.site_id] = info(db.session.get(Site, reader.site_id))
        try:
            erase(site, reader, "retention")
        except RedisUnavailable:
            db.session.rollback()
            log.warning("retention: Redis unreachable; the remaining unverified accounts wait for the next pass")
            break
        deleted += 1
    return deleted


def prune_sent_mail() -> int:
    """Delete outbox rows sent, or dead, more than SENT_MAIL_RETENTION_DAYS ago; returns how many."""
    cutoff = utcnow() - timedelta(days=current_app.config["SENT_MAIL_RETENTION_DAYS"])
    count = db.session.execute(
        delete(OutboxMail).where(or_(OutboxMail.sent_at < cutoff, OutboxMail.dead_at < cutoff))
    ).rowcount
    db.session.commit()
    return count


def apply() -> int:
    """One pass of both; returns how many rows went."""
    return delete_unverified() + prune_sent_mail()
