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
from meter.sites import Meter, Period, SiteInfo

log = logging.getLogger(__name__)


def forget_reader_state(site_id: int, reader_id: int) -> None:
    """Drop the cached reader state after any change to it in SQL; the next check reloads it."""
    key, field = state_place(site_id, reader_id)
    try:
        conn().call(conn().client.hdel, key, field)
    except RedisUnavailable:
        log.warning("could not drop cached state of reader %s; it expires within READER_CACHE_TTL", reader_id)


def _drop_unlocks(site_id: int, subject: str, period: Period, meter: str = "default") -> None:
    key, field = unlock_place(site_id, subject, period, meter)
    if period.rolling_seconds:
        conn().call(conn().client.delete, key)
    else:
        conn().call(conn().client.hdel, key, field)


def _forget_unlocks(site_id: int, subject: str, period: Period, meter: str = "default") -> None:
    try:
        _drop_unlocks(site_id, subject, period, meter)
    except RedisUnavailable:
        log.warning("could not drop cached unlocks of %s", subject)


def unlocked_articles(site: SiteInfo, subject: str) -> dict[str, int]:
    """article id → unlock time of the subject's current period, in every meter of the site."""
    now = clock.now()
    found: dict[str, int] = {}
    for meter in site.policy.all_meters:
        for article_id, t in ledger.entries(site.id, subject, meter.period_at(now), now, meter.name).items():
            found[article_id] = max(t, found.get(article_id, 0))
    return found


def summary(site: SiteInfo, subject: str, state: str, meter: Meter | None = None) -> dict:
    """The subject's count in a meter (the default one unless named) for its current period, from the
    ledger (for /v1/readers/me and operators)."""
    if meter is None:
        meter = site.policy.default_meter
    now = clock.now()
    period = meter.period_at(now)
    unlocked = ledger.entries(site.id, subject, period, now, meter.name)
    limit = meter.quota_for("verified" if state == "subscriber" else state)
    return {
        "name": meter.name,
        "used": len(unlocked),
        "limit": limit,
        "remaining": max(limit - len(unlocked), 0),
        "period": period.label,
        "period_end": period_end(period, min(unlocked.values(), default=0), now).isoformat(),
        "unlocked": sorted(unlocked),
    }


def summaries(site: SiteInfo, subject: str, state: str) -> list[dict]:
    """`summary` of every meter of the site, the default one first."""
    return [summary(site, subject, state, meter) for meter in site.policy.all_meters]


def merge_anonymous(site: SiteInfo, anonymous_id: str, reader_id: int) -> int:
    """Carry an anonymous visitor's unlocks of the current period, in each meter, over to a reader (in
    the same meter); returns how many.

    The unlocks are copied, not moved: the anonymous id keeps them and so stays used up. Moving them
    gave the visitor a fresh anonymous quota at every login with the same id (read 3, log in, read 3
    more, log in again: 9 reads on a quota of 3). The copies count against the account; copying the
    same unlocks again at the next login adds nothing (the ledger ignores duplicates).
    """
    now = clock.now()
    anon = anonymous_subject(anonymous_id)
    reader = reader_subject(reader_id)
    carried = 0
    for meter in site.policy.all_meters:
        period = meter.period_at(now)
        found = ledger.entries(site.id, anon, period, now, meter.name)
        if not found:
            continue
        for article_id, t in found.items():
            ledger.record(site.id, reader, period, article_id, datetime.fromtimestamp(t, UTC), meter.name)
        _forget_unlocks(site.id, reader, period, meter.name)
        carried += len(found)
    return carried


def reset(site: SiteInfo, subject: str) -> int:
    """Clear the subject's unlocks of the current period, in every meter (operator command)."""
    journal.drain_subject(site.id, subject)  # else the worker would write the journaled ones back
    now = clock.now()
    count = 0
    periods = [(meter.name, meter.period_at(now)) for meter in site.policy.all_meters]
    for name, period in periods:
        query = delete(Unlock).where(Unlock.site_id == site.id, Unlock.subject == subject, Unlock.meter == name)
        if period.rolling_seconds:
            query = query.where(Unlock.period.like("d%"))
        else:
            query = query.where(Unlock.period == period.label)
        count += db.session.execute(query).rowcount
    db.session.commit()
    # Not _forget_unlocks: while the cached unlocks remain the reset has not taken effect; the caller must know.
    for name, period in periods:
        _drop_unlocks(site.id, subject, period, name)
    return count
