"""Resend the activation mail to every unverified reader registered since a date, with progress.

The console only records the request (a `bulk_resends` row, with its audit row); the worker works
through it in batches of BATCH readers a pass (`work`), so that 500 000 readers never tie up a
request, and the console's page shows how far it got. The rules are those of `flask readers
resend-activation --all-unverified`: a reader mailed within RESEND_GAP is skipped, each reader is
claimed by a conditional UPDATE in the same transaction as its outbox row (two workers, or a retried
batch, never queue two), and each mail spends the address's mail budget (a spent budget skips it).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, update

from meter.accounts import confirm, mail_budget
from meter.accounts.models import Reader
from meter.console.models import BulkResend, Staff
from meter.console.rules import audit
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites import SiteInfo, sites
from meter.sites.models import Site

log = logging.getLogger(__name__)

RESEND_GAP = timedelta(hours=1)
BATCH = 200


def _unverified_since(site_id: int, since: datetime):
    return (Reader.site_id == site_id) & Reader.verified_at.is_(None) & (Reader.created_at >= since)


def start(site: SiteInfo, since: datetime, staff: Staff) -> BulkResend:
    """Record the request (`since`: naive UTC); the worker does the rest. Committed with its audit row."""
    total = db.session.scalar(db.select(func.count()).select_from(Reader).where(_unverified_since(site.id, since)))
    job = BulkResend(site_id=site.id, staff_id=staff.id, since=since, total=total or 0)
    db.session.add(job)
    db.session.flush()
    audit.record(
        "readers.bulk_resend",
        staff=staff,
        site=site,
        detail={"job": job.id, "since": since.isoformat() + "Z"},
        commit=False,
    )
    db.session.commit()
    return job


def get(site: SiteInfo, job_id: int) -> BulkResend | None:
    job = db.session.get(BulkResend, job_id)
    return job if job is not None and job.site_id == site.id else None


def recent(site: SiteInfo, limit: int = 10) -> list[BulkResend]:
    return list(
        db.session.scalars(db.select(BulkResend).filter_by(site_id=site.id).order_by(BulkResend.id.desc()).limit(limit))
    )


def _one(site: SiteInfo, reader_id: int) -> str:
    fresh = (Reader.id == reader_id) & Reader.verified_at.is_(None)
    fresh &= Reader.last_activation_sent_at.is_(None) | (Reader.last_activation_sent_at <= utcnow() - RESEND_GAP)
    claimed = db.session.execute(update(Reader).where(fresh).values(last_activation_sent_at=utcnow()))
    reader = db.session.get(Reader, reader_id) if claimed.rowcount == 1 else None
    if reader is None:
        db.session.rollback()
        return "skipped"
    try:
        mail_budget.spend(site.id, reader.email_key)
    except mail_budget.Spent:
        db.session.rollback()
        return "skipped"
    confirm.queue_activation(site, reader)
    db.session.commit()
    return "queued"


def work(batch: int = BATCH) -> int:
    """One batch of the oldest unfinished request; how many readers it handled (0: nothing to do)."""
    job = db.session.scalar(db.select(BulkResend).where(BulkResend.finished_at.is_(None)).order_by(BulkResend.id))
    if job is None:
        return 0
    job_id, since, cursor = job.id, job.since, job.cursor
    site_row = db.session.get(Site, job.site_id)
    site = sites.info(site_row)
    ids = db.session.scalars(
        db.select(Reader.id)
        .where(_unverified_since(site.id, since), Reader.id > cursor)
        .order_by(Reader.id)
        .limit(batch)
    ).all()
    counts = {"queued": 0, "skipped": 0, "failed": 0}
    for reader_id in ids:
        try:
            counts[_one(site, reader_id)] += 1
        except Exception as exc:  # one bad row is counted and logged; the batch goes on
            db.session.rollback()
            counts["failed"] += 1
            log.warning("bulk resend %s: reader %s failed: %s", job_id, reader_id, exc, exc_info=True)
    job = db.session.get(BulkResend, job_id)
    job.cursor = ids[-1] if ids else cursor
    job.done += len(ids)
    job.queued += counts["queued"]
    job.skipped += counts["skipped"]
    job.failed += counts["failed"]
    job.total = max(job.total, job.done)
    if len(ids) < batch:
        job.finished_at = utcnow()
    db.session.commit()
    return max(len(ids), 1)
