"""Unlocks in doubt: a recording check whose Redis reply was lost may or may not have unlocked the article.

The check notes such a check in `unlock_doubts`; the worker (and `flask meter settle`) settles each
one a few seconds later: held in Redis → into the ledger, else forgotten. Without this such an
unlock lived in Redis only and was lost with Redis's data.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from meter.access.models import UnlockDoubt
from meter.access.rules.metering import ledger
from meter.access.rules.metering.layout import hash64, unlock_place, unpack_hashes
from meter.platform import clock
from meter.platform.db import db
from meter.platform.redis_conn import RedisUnavailable, conn
from meter.sites import Period
from meter.sites import info as site_info
from meter.sites.models import Site

log = logging.getLogger(__name__)

SETTLE_AFTER = 5.0  # seconds: by then the script has run, if it ever will
MAX_AGE = timedelta(days=40)  # past any calendar period and its grace: nothing left to settle


def note(site_id: int, subject: str, article_id: str, now: datetime, meter: str = "default") -> None:
    """The script may have unlocked the article (in this meter) before the reply was lost; the ledger must hear of it."""
    try:
        db.session.add(
            UnlockDoubt(
                site_id=site_id, subject=subject, meter=meter, article_id=article_id, checked_at=ledger.naive_utc(now)
            )
        )
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("unlock of %s by %s in doubt and not noted: the database failed too", article_id, subject)


def held_in_redis(site_id: int, subject: str, period: Period, meter: str = "default") -> set[bytes]:
    """The article hashes Redis holds for the subject's period of a meter (empty when Redis holds nothing)."""
    key, field = unlock_place(site_id, subject, period, meter)
    redis = conn()
    if period.rolling_seconds:
        packed = redis.call(redis.client.execute_command, "GET", key, NEVER_DECODE=True)
    else:
        packed = redis.call(redis.client.execute_command, "HGET", key, field, NEVER_DECODE=True)
    return unpack_hashes(packed or b"", bool(period.rolling_seconds))


def settle(limit: int = 500) -> tuple[int, int]:
    """Unlocks in doubt: those Redis holds go into the ledger, the rest are forgotten.

    Returns (into the ledger, forgotten). Stops, keeping the rest, while Redis cannot answer.
    """
    now = clock.now()
    settle_before = ledger.naive_utc(now) - timedelta(seconds=SETTLE_AFTER)
    rows = db.session.scalars(
        select(UnlockDoubt).where(UnlockDoubt.checked_at <= settle_before).order_by(UnlockDoubt.id).limit(limit)
    ).all()
    kept = forgotten = 0
    for row in rows:
        checked_at = row.checked_at.replace(tzinfo=UTC)
        site_row = db.session.get(Site, row.site_id)
        if site_row is not None and ledger.naive_utc(now) - row.checked_at < MAX_AGE:
            site = site_info(site_row)
            meter = site.policy.meter_named(row.meter)  # a meter removed since: the default's period
            period = meter.period_at(checked_at)
            try:
                held = hash64(row.article_id) in held_in_redis(site.id, row.subject, period, row.meter)
            except RedisUnavailable:
                break
            if held:
                ledger.record(site.id, row.subject, period, row.article_id, checked_at, row.meter)
                log.info("unlock of %s by %s, in doubt, found in Redis: now in the ledger", row.article_id, row.subject)
                kept += 1
            else:
                forgotten += 1
        else:
            forgotten += 1
        db.session.delete(row)
        db.session.commit()
    return kept, forgotten
