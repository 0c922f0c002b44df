"""One site's mail as the console shows it: the backlog, the dead letters with their errors, retry.

The same outbox the worker delivers (meter.platform.mail), seen through the site: a staff member sees
and retries only the mail of the sites they work on.
"""

from __future__ import annotations

from sqlalchemy import select, update

from meter.console.models import Staff
from meter.console.rules import audit
from meter.platform import mail
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.sites import SiteInfo


def status(site: SiteInfo) -> dict:
    """The site's outbox: queued (never tried), retrying (tried, waiting for its next attempt), dead,
    sent, and the oldest waiting mail's age in whole seconds (None when nothing waits)."""
    counts = mail.outbox_counts(site.id)
    oldest = counts["oldest_waiting_seconds"]
    return {
        "queued": counts["queued"],
        "retrying": counts["failing"],
        "dead": counts["dead"],
        "sent": counts["sent"],
        "oldest_waiting_seconds": int(oldest) if oldest is not None else None,
    }


def waiting(site: SiteInfo, limit: int = 50) -> list[OutboxMail]:
    query = (
        select(OutboxMail)
        .where(OutboxMail.site_id == site.id, OutboxMail.sent_at.is_(None), OutboxMail.dead_at.is_(None))
        .order_by(OutboxMail.id)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def dead_letters(site: SiteInfo, limit: int = 100) -> list[OutboxMail]:
    query = (
        select(OutboxMail)
        .where(OutboxMail.site_id == site.id, OutboxMail.dead_at.is_not(None))
        .order_by(OutboxMail.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def retry(site: SiteInfo, ids: list[int] | None, staff: Staff) -> int:
    """Dead letters of this site back to the queue (all of them when `ids` is None), due now, with a
    fresh count of attempts; ids of other sites' mail are ignored. Committed with its audit row."""
    query = update(OutboxMail).where(
        OutboxMail.site_id == site.id, OutboxMail.dead_at.is_not(None), OutboxMail.sent_at.is_(None)
    )
    if ids is not None:
        query = query.where(OutboxMail.id.in_(ids))
    count = db.session.execute(
        query.values(dead_at=None, attempts=0, next_attempt_at=utcnow(), locked_until=None)
    ).rowcount
    detail = {"count": count, "ids": "all" if ids is None else ",".join(map(str, ids[:50]))}
    audit.record("mail.retry", staff=staff, site=site, detail=detail, commit=False)
    db.session.commit()
    return count
