"""Changes to a meter made outside the access check: by account flows, the API and operators.

Each changes the ledger (the truth) first, then drops what Redis caches, so that the next check
reloads it; none of this is on the hot path.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import delete

from meter.access.models import Unlock
from meter.access.rules.metering import journal, ledger
from meter.access.rules.metering.check import period_end
from meter.access.rules.metering.layout import anonymous_subject, reader_subject, state_place, unlock_place
from meter.platform import clock
from meter.platform.db import db
from meter.platform.redis_conn import RedisUnavailable, conn
from meter.sites import Period, SiteInfo

log = logging.getLogger(__name__)


def forget_reader_state(site_id: int, reader_id: int) -> None:
    """Drop the cached reader state after any change to it in SQL; the next check reloads it."""
    key, field = state_place(site_id, reader_id)
    try:
        conn().call(conn().client.hdel, key, field)
    except RedisUnavailable:
        log.warning("could not drop cached state of reader %s; it expires within READER_CACHE_TTL", reader_id)


def _drop_unlocks(site_id: int, subject: str, period: Period) -> None:
    key, field = unlock_place(site_id, subject, period)
    if period.rolling_seconds:
        conn().call(conn().client.delete, key)
    else:
        conn().call(conn().client.hdel, key, field)


def _forget_unlocks(site_id: int, subject: str, period: Period) -> None:
    try:
        _drop_unlocks(site_id, subject, period)
    except RedisUnavailable:
        log.warning("could not drop cached unlocks of %s", subject)


def unlocked_articles(site: SiteInfo, subject: str) -> dict[str, int]:
    now = clock.now()
    return ledger.entries(site.id, subject, site.policy.period_at(now), now)


def summary(site: SiteInfo, subject: str, state: str) -> dict:
    """The subject's meter for this period, from the ledger (for /v1/readers/me and operators)."""
    now = clock.now()
    period = site.policy.period_at(now)
    unlocked = ledger.entries(site.id, subject, period, now)
    limit = site.policy.quota_for("verified" if state == "subscriber" else state)
    return {
        "used": len(unlocked),
        "limit": limit,
        "remaining": max(limit - len(unlocked), 0),
        "period": period.label,
        "period_end": period_end(period, min(unlocked.values(), default=0), now).isoformat(),
        "unlocked": sorted(unlocked),
    }


def merge_anonymous(site: SiteInfo, anonymous_id: str, reader_id: int) -> int:
    """Carry an anonymous visitor's unlocks of the current period over to a reader; returns how many.

    The unlocks are copied, not moved: the anonymous id keeps them and so stays used up. Moving them
    gave the visitor a fresh anonymous quota at every login with the same id (read 3, log in, read 3
    more, log in again: 9 reads on a quota of 3). The copies count against the account; copying the
    same unlocks again at the next login adds nothing (the ledger ignores duplicates).
    """
    now = clock.now()
    period = site.policy.period_at(now)
    anon = anonymous_subject(anonymous_id)
    reader = reader_subject(reader_id)
    found = ledger.entries(site.id, anon, period, now)
    if not found:
        return 0
    for article_id, t in found.items():
        ledger.record(site.id, reader, period, article_id, datetime.fromtimestamp(t, UTC))
    _forget_unlocks(site.id, reader, period)
    return len(found)


def reset(site: SiteInfo, subject: str) -> int:
    """Clear the subject's unlocks of the current period (operator command)."""
    journal.drain_subject(site.id, subject)  # else the worker would write the journaled ones back
    now = clock.now()
    period = site.policy.period_at(now)
    query = delete(Unlock).where(Unlock.site_id == site.id, Unlock.subject == subject)
    if period.rolling_seconds:
        query = query.where(Unlock.period.like("d%"))
    else:
        query = query.where(Unlock.period == period.label)
    count = db.session.execute(query).rowcount
    db.session.commit()
    # Not _forget_unlocks: while the cached unlocks remain the reset has not taken effect; the caller must know.
    _drop_unlocks(site.id, subject, period)
    return count
