"""The ledger journal: every unlock the check answers, kept in Redis until the worker has it in SQL.

The check's script pushes each unlock onto its bucket's journal (`redis_keys.ledger_journal`, in the
check's own cluster slot) in the same call that unlocks, so recording it costs no round trip. The
check then writes the ledger row itself; when the database is away that write fails, the reader
still gets the article, and the row is written from here once the database is back (`drain`, a duty
of the worker and of `flask meter settle`). Without the journal such an unlock lived in the meter only
and was lost with Redis's data: the meter rebuilt from the ledger then gave the reader it again.

Every entry is written, also those the check already wrote: the ledger ignores a duplicate (its
unique constraint on site, subject, period and article), and entries leave the journal only after
their rows are committed, so a failure anywhere leaves them for the next pass. An entry is as
durable as Redis: if Redis loses its data while the database is away, that window's unlocks are lost.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import select

from meter.access.rules.metering import ledger
from meter.access.rules.metering.layout import place
from meter.accounts.models import Reader
from meter.platform import redis_keys
from meter.platform.db import db
from meter.platform.redis_conn import conn
from meter.sites import Period
from meter.sites.models import Site

log = logging.getLogger(__name__)

KEYS_PER_TRIP = 512  # bucket keys read per pipelined round trip
ENTRIES_PER_KEY = 1000  # entries taken from one bucket per pass (the rest wait for the next)


def entry(period: Period, subject: str, article_id: str, now: datetime, meter: str = "default") -> str:
    """What the script journals for an unlock, less its time, which it prepends (check.lua, ARGV[19]).
    Tabs separate the fields: article ids and subjects have no control characters (platform/schemas.py).
    A named meter's unlock ends with its meter; the default meter's has none, as entries had before
    meters (so a journal written by the previous release is read as it was meant)."""
    line = f"{ledger.ledger_period(period, now)}\t{subject}\t{article_id}"
    return line if meter == "default" else f"{line}\t{meter}"


def _rows(site_id: int, entries: list[str]) -> list[dict]:
    rows = []
    for raw in entries:
        when, period, subject, article_id, *meter = raw.split("\t")
        rows.append(
            {
                "site_id": site_id,
                "subject": subject,
                "meter": meter[0] if meter else "default",
                "period": period,
                "article_id": article_id,
                "unlocked_at": ledger.naive_utc(datetime.fromtimestamp(int(when), UTC)),
            }
        )
    return rows


def _of_live_readers(rows: list[dict]) -> list[dict]:
    """A deleted reader's unlocks stay out of the ledger (erasure took the journal first; this is
    for a check that raced it)."""
    readers = {int(row["subject"][2:]) for row in rows if row["subject"].startswith("r:")}
    if not readers:
        return rows
    live = {f"r:{n}" for n in db.session.scalars(select(Reader.id).where(Reader.id.in_(readers)))}
    return [row for row in rows if not row["subject"].startswith("r:") or row["subject"] in live]


def _write(site_id: int, taken: dict[str, list[str]]) -> int:
    """Write the entries taken from these keys into the ledger, commit, then remove them from Redis."""
    rows = _of_live_readers([row for entries in taken.values() for row in _rows(site_id, entries)])
    ledger.record_many(rows)
    db.session.commit()
    redis = conn()
    pipe = redis.client.pipeline(transaction=False)
    for key, entries in taken.items():
        for raw in set(entries):
            pipe.lrem(key, 0, raw)  # exactly these: what a check pushed meanwhile stays
    redis.call(pipe.execute)
    return sum(len(entries) for entries in taken.values())


def drain_site(site_id: int) -> int:
    """Write every bucket's journal of a site into the ledger; returns how many entries were taken.
    Pipelined plain commands, so Redis Cluster takes them too."""
    count = current_app.config["METER_BUCKETS"]
    keys = [redis_keys.ledger_journal(site_id, bucket, count) for bucket in range(count)]
    done = 0
    redis = conn()
    for start in range(0, len(keys), KEYS_PER_TRIP):
        batch = keys[start : start + KEYS_PER_TRIP]
        pipe = redis.client.pipeline(transaction=False)
        for key in batch:
            pipe.lrange(key, 0, ENTRIES_PER_KEY - 1)
        taken = {key: entries for key, entries in zip(batch, redis.call(pipe.execute), strict=True) if entries}
        if taken:
            done += _write(site_id, taken)
    return done


def drain() -> int:
    """The worker's duty: every site's journal into the ledger; returns how many entries were taken.
    Raises (and keeps them all) while the database or Redis cannot answer: the next pass tries again."""
    done = 0
    for site_id in db.session.scalars(select(Site.id)).all():
        done += drain_site(site_id)
    if done:
        log.info("ledger journal: %d unlocks taken into the ledger", done)
    return done


def drain_subject(site_id: int, subject: str) -> int:
    """Write the journal of the subject's bucket into the ledger now: before the subject's ledger rows
    are changed (a reset, a deletion), so that no later pass writes back what they removed."""
    count = current_app.config["METER_BUCKETS"]
    bucket, _ = place(subject, count)
    key = redis_keys.ledger_journal(site_id, bucket, count)
    redis = conn()
    entries = redis.call(redis.client.lrange, key, 0, -1)
    return _write(site_id, {key: entries}) if entries else 0
