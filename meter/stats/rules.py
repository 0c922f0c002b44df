"""The figures a publisher watches, per site and day in the site's time zone (the console, `GET /v1/stats`).

Views — the access check's answers with `record` true, by reason — are counted without slowing the
check: its script adds one to the day's count in the bucket it already touches (`redis_keys.
stats_bucket`, the same cluster slot), and answers given without the script (nobody to count
against, or Redis away) wait in this process and ride along with the site's next script call. The
worker moves those counts into `daily_stats` every minute (`roll_up`), so a loss of Redis's data
loses at most the last minute. Everything else is counted in SQL as it happens, from the account
flows' signals: registrations, activations (with the time each took), sign-ins by method,
subscriptions started, gifts made. No figure names a reader.
"""

from __future__ import annotations

import logging
import statistics
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from meter.accounts.models import Reader
from meter.platform import clock, redis_keys, signals
from meter.platform.db import db
from meter.platform.reasons import VIEW_REASONS
from meter.platform.redis_conn import RedisUnavailable, conn
from meter.sites import Policy, SiteInfo
from meter.sites.models import Site
from meter.stats import variants
from meter.stats.models import ActivationTime, DailyStat

log = logging.getLogger(__name__)

REASONS = VIEW_REASONS
EVENTS = ("registrations", "activations", "subscriptions_started", "gifts_made")
KEEP_DAYS = 2  # a day's counts stay in Redis this long after it ends: the worker drains them well before
DRAIN_BATCH = 512  # bucket keys drained per pipelined round trip


def day_of(policy: Policy, when: datetime) -> date:
    return when.astimezone(policy.tz).date()


_expiries: dict[tuple[str, date], int] = {}


def stats_expiry(policy: Policy, day: date) -> int:
    """When a day's Redis counts expire (epoch s): KEEP_DAYS after the day ends in the site's zone."""
    key = (policy.timezone, day)
    expiry = _expiries.get(key)
    if expiry is None:
        if len(_expiries) > 1000:
            _expiries.clear()
        end = datetime(day.year, day.month, day.day, tzinfo=policy.tz) + timedelta(days=1 + KEEP_DAYS)
        expiry = _expiries[key] = int(end.timestamp())
    return expiry


# --- answers given without the script: kept here until the site's next script call ---------------

_lock = threading.Lock()
_pending: dict[tuple[int, date], Counter] = {}


def note(site_id: int, day: date, reason: str) -> None:
    with _lock:
        _pending.setdefault((site_id, day), Counter())[reason] += 1


def take(site_id: int, day: date) -> str:
    """The counts waiting for this site and day, as the script takes them ("reason=n;…"); forgotten here.

    Counts of an earlier day of the site are dropped (they would land on the wrong day): a site
    quiet across midnight loses those few answers to its figures.

    Nothing waits in most processes most of the time (every check asks): then the answer is "" at
    once, without the lock. A count noted by another thread meanwhile waits for the next call, as it
    would had it come a moment later.
    """
    if not _pending:
        return ""
    with _lock:
        stale = [k for k in _pending if k[0] == site_id and k[1] != day]
        for k in stale:
            log.info("%s answers of site %s on %s not counted (no script call that day)", sum(_pending[k].values()), *k)
            del _pending[k]
        counts = _pending.pop((site_id, day), None)
    return ";".join(f"{reason}={n}" for reason, n in counts.items()) if counts else ""


def forget_pending() -> None:
    """Drop every waiting count (a test's app starts afresh: its database numbers sites from 1 again)."""
    with _lock:
        _pending.clear()


def give_back(site_id: int, day: date, taken: str) -> None:
    """The script did not run (Redis refused the call): keep the counts for the next one."""
    for part in filter(None, taken.split(";")):
        reason, _, n = part.partition("=")
        with _lock:
            _pending.setdefault((site_id, day), Counter())[reason] += int(n)


# --- events, counted in SQL as they happen ---------------------------------------------------------


def _add(site_id: int, day: date, metric: str, key: str = "", n: int = 1) -> None:
    row = db.session.get(DailyStat, (site_id, day, metric, key))
    if row is None:
        row = DailyStat(site_id=site_id, day=day, metric=metric, key=key, value=0)
        db.session.add(row)
    row.value += n


def count_event(site_id: int, metric: str, key: str = "", reader: Reader | None = None) -> None:
    """Count one event of today (the site's day) in its own transaction; a failure only loses the figure.
    With the reader: in their variant of each experiment running too."""
    try:
        site = db.session.get(Site, site_id)
        if site is None:
            return
        policy, now = Policy.from_dict(site.policy), clock.now()
        day = day_of(policy, now)
        _add(site_id, day, metric, key)
        if reader is not None:
            for figures_id, variant in variants.variants_of(policy, reader, now):
                _add(site_id, day, variants.metric(figures_id, metric), variant)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("figure %s of site %s not counted: the database failed", metric, site_id, exc_info=True)


def _on_registered(_app: Flask, reader: Reader, **_: object) -> None:
    count_event(reader.site_id, "registrations", reader=reader)


def _on_activated(_app: Flask, reader: Reader, **_: object) -> None:
    try:
        site = db.session.get(Site, reader.site_id)
        now = clock.now()
        if site is not None and reader.verified_at is not None:
            seconds = max(int((reader.verified_at - reader.created_at).total_seconds()), 0)
            day = day_of(Policy.from_dict(site.policy), now)
            db.session.add(ActivationTime(site_id=site.id, day=day, seconds=seconds))
            _add(site.id, day, "activations")
            for figures_id, variant in variants.variants_of(Policy.from_dict(site.policy), reader, now):
                _add(site.id, day, variants.metric(figures_id, "activations"), variant)
            db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("activation of reader %s not counted in the figures", reader.id, exc_info=True)


def _on_signed_in(_app: Flask, reader: Reader, method: str = "password", **_: object) -> None:
    count_event(reader.site_id, "signins", method[:40])


def _on_subscription_started(_app: Flask, reader: Reader, **_: object) -> None:
    count_event(reader.site_id, "subscriptions_started", reader=reader)


def _on_gift_made(_app: Flask, site_id: int, **_: object) -> None:
    count_event(site_id, "gifts_made")


def init_app(app: Flask) -> None:
    signals.reader_registered.connect(_on_registered, weak=False)
    signals.reader_activated.connect(_on_activated, weak=False)
    signals.reader_signed_in.connect(_on_signed_in, weak=False)
    signals.subscription_started.connect(_on_subscription_started, weak=False)
    signals.gift_made.connect(_on_gift_made, weak=False)


# --- the worker's roll-up of views ------------------------------------------------------------------


def _stats_keys(site_id: int, day: date) -> list[str]:
    count = current_app.config["METER_BUCKETS"]
    return [redis_keys.stats_bucket(site_id, bucket, count, day.isoformat()) for bucket in range(count)]


def _drain(keys: list[str]) -> Counter:
    """The counts of these bucket keys, taken out of Redis: read, then decremented by what was read (a count
    added meanwhile stays for the next roll-up). Pipelined plain commands, so Redis Cluster takes them too."""
    redis = conn()
    pipe = redis.client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    read = redis.call(pipe.execute)
    totals: Counter = Counter()
    pipe = redis.client.pipeline(transaction=False)
    for key, counts in zip(keys, read, strict=True):
        for reason, n in (counts or {}).items():
            if int(n):
                totals[reason] += int(n)
                pipe.hincrby(key, reason, -int(n))
    if totals:
        redis.call(pipe.execute)
    return totals


def roll_up() -> int:
    """Move the views counted in Redis into `daily_stats` (today's and yesterday's, every site); returns
    how many answers moved. Redis is decremented before the totals are committed: a crash between the two
    loses at most those counts (under a minute's worth), and never counts one twice."""
    moved = 0
    now = clock.now()
    for site in db.session.scalars(select(Site)).all():
        policy = Policy.from_dict(site.policy)
        today = day_of(policy, now)
        for day in (today - timedelta(days=1), today):
            keys = _stats_keys(site.id, day)
            totals: Counter = Counter()
            for start in range(0, len(keys), DRAIN_BATCH):
                totals.update(_drain(keys[start : start + DRAIN_BATCH]))
            views, walls = variants.wall_counts(totals)
            for reason, n in views.items():
                _add(site.id, day, "views", reason, n)
            for metric, variant, n in walls:
                _add(site.id, day, metric, variant, n)
            db.session.commit()
            moved += sum(totals.values())
    return moved


def live_views(site_id: int, day: date) -> Counter:
    """Today's views not rolled up yet (read, not drained); empty when Redis cannot answer."""
    redis = conn()
    totals: Counter = Counter()
    try:
        keys = _stats_keys(site_id, day)
        for start in range(0, len(keys), DRAIN_BATCH):
            pipe = redis.client.pipeline(transaction=False)
            for key in keys[start : start + DRAIN_BATCH]:
                pipe.hgetall(key)
            for counts in redis.call(pipe.execute):
                totals.update({k: int(v) for k, v in (counts or {}).items()})
    except RedisUnavailable:
        log.warning("today's live views of site %s left out: Redis unreachable", site_id)
    return totals


# --- the figures, per day ---------------------------------------------------------------------------


def figures(site: SiteInfo, first: date, last: date, live: bool = True) -> list[dict]:
    """Per day from `first` to `last` (inclusive): every figure, 0 where nothing happened."""
    rows = db.session.execute(
        select(DailyStat.day, DailyStat.metric, DailyStat.key, DailyStat.value).where(
            DailyStat.site_id == site.id, DailyStat.day >= first, DailyStat.day <= last
        )
    ).all()
    times: dict[date, list[int]] = {}
    for day, seconds in db.session.execute(
        select(ActivationTime.day, ActivationTime.seconds).where(
            ActivationTime.site_id == site.id, ActivationTime.day >= first, ActivationTime.day <= last
        )
    ):
        times.setdefault(day, []).append(seconds)
    days: dict[date, dict] = {}
    for offset in range((last - first).days + 1):  # (not day += 1: 9999-12-31 has no next day)
        day = first + timedelta(days=offset)
        days[day] = {
            "date": day.isoformat(),
            "views": dict.fromkeys(REASONS, 0),
            **dict.fromkeys(EVENTS, 0),
            "median_activation_seconds": None,
            "signins": {"password": 0},
        }
    for day, metric, key, value in rows:
        entry = days[day]
        if metric == "views":
            entry["views"][key] = entry["views"].get(key, 0) + value
        elif metric == "signins":
            entry["signins"][key] = entry["signins"].get(key, 0) + value
        elif metric in EVENTS:
            entry[metric] += value
    for day, samples in times.items():
        days[day]["median_activation_seconds"] = int(statistics.median(samples))
    today = day_of(site.policy, clock.now())
    if live and first <= today <= last:
        for reason, n in variants.wall_counts(live_views(site.id, today))[0].items():
            days[today]["views"][reason] = days[today]["views"].get(reason, 0) + n
    return list(days.values())


def experiments(site: SiteInfo, live: bool = True) -> list[dict]:
    """The figures of the site's experiments per variant since each started (meter.stats.variants);
    with today's walls not rolled up yet."""
    if not any(meter.experiment for meter in site.policy.all_meters):
        return []
    walls = variants.wall_counts(live_views(site.id, today(site)))[1] if live else []
    return variants.figures(site.id, site.policy, walls)


def today(site: SiteInfo) -> date:
    return day_of(site.policy, clock.now())


def parse_day(value: str) -> date:
    return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC).date()


def add_views(site_id: int, day: date, counts: dict[str, int]) -> None:
    """Views of a day older than yesterday, added straight to `daily_stats` (committed).

    Only for `flask demo traffic`, whose access checks run with meter's clock moved back: Redis expires
    a day's counts on its own clock (KEEP_DAYS after the day), so those of a month ago vanish at once,
    and `roll_up` only looks at today and yesterday. The counts come from the answers the real check gave.
    """
    for reason, n in counts.items():
        if n:
            _add(site_id, day, "views", reason, n)
    db.session.commit()
