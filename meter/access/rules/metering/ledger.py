"""The ledger: the `unlocks` table is the truth the Redis meter is rebuilt from, and reader state from SQL.

Every new unlock is written here (idempotently: a retried or raced request adds nothing); when
Redis lacks a subject's data the check loads it from here before deciding.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from meter.access.models import Unlock
from meter.access.rules.metering.layout import pack_state
from meter.accounts.models import Reader, ReaderSession
from meter.platform.db import db
from meter.sites import Period


def epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def naive_utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None)


def ledger_period(period: Period, when: datetime) -> str:
    """Ledger rows of rolling windows are labelled by day, so an article can unlock again later."""
    return "d" + when.astimezone(UTC).strftime("%Y-%m-%d") if period.rolling_seconds else period.label


def entries(site_id: int, subject: str, period: Period, now: datetime, meter: str = "default") -> dict[str, int]:
    """article id → unlock time (epoch) for the subject's current period of a meter, from the ledger."""
    query = select(Unlock.article_id, Unlock.unlocked_at).where(
        Unlock.site_id == site_id, Unlock.subject == subject, Unlock.meter == meter
    )
    if period.rolling_seconds:
        since = naive_utc(now - timedelta(seconds=period.rolling_seconds))
        query = query.where(Unlock.period.like("d%"), Unlock.unlocked_at > since)
    else:
        query = query.where(Unlock.period == period.label)
    found: dict[str, int] = {}
    for article_id, unlocked_at in db.session.execute(query):
        t = epoch(unlocked_at.replace(tzinfo=UTC))
        found[article_id] = max(t, found.get(article_id, 0))
    return found


def record(site_id: int, subject: str, period: Period, article_id: str, when: datetime, meter: str = "default") -> None:
    """Write one unlock (in a meter) to the ledger; a duplicate (a retried or raced request) is ignored."""
    values = {
        "site_id": site_id,
        "subject": subject,
        "meter": meter,
        "period": ledger_period(period, when),
        "article_id": article_id,
        "unlocked_at": naive_utc(when),
    }
    db.session.execute(_insert().values(**values).on_conflict_do_nothing())
    db.session.commit()


def record_many(rows: list[dict]) -> None:
    """Add unlocks (the `unlocks` columns, as `record` builds them) without committing; duplicates of
    rows already there, or among them, are ignored (the unique constraint on site, subject, meter, period,
    article)."""
    for start in range(0, len(rows), 500):  # SQLite takes at most 32766 parameters a statement
        db.session.execute(_insert().values(rows[start : start + 500]).on_conflict_do_nothing())


def _insert():
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(Unlock)


def reader_state(site_id: int, reader_id: int, now: datetime) -> bytes:
    """The reader state the script caches: verified, subscription end, live session hashes."""
    reader = db.session.get(Reader, reader_id)
    if reader is None or reader.site_id != site_id:
        return pack_state(False, 0, [])
    since = naive_utc(now - timedelta(seconds=current_app.config["READER_TOKEN_MAX_AGE"]))
    sids = db.session.scalars(
        select(ReaderSession.id).where(
            ReaderSession.reader_id == reader_id, ReaderSession.revoked_at.is_(None), ReaderSession.created_at > since
        )
    ).all()
    sub = epoch(reader.subscription_until.replace(tzinfo=UTC)) if reader.subscription_until else 0
    return pack_state(reader.verified_at is not None, sub, list(sids))
