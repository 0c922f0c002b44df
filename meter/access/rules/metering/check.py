"""The check: may this subject read this article now? Decided and recorded by `check.lua` in one Redis call.

It counts in one meter of the site's policy (the article's section chose it, from the cached policy,
before the call): the script is given that meter's quotas and the keys of that meter's period, so a
reader's count in one meter never spends another's, and a check still costs one call.

Steady state: one EVALSHA, no SQL. A new unlock writes its ledger row; the script has also put it in
the bucket's journal (`journal`), from which the worker writes it when that write fails. When the
script finds the subject's data missing (flush, restart, eviction) it says so, and the data is loaded
from the ledger and sent with a second call that stores it before deciding, so nobody gains or loses
an unlock. Without Redis the answer is
degraded: subscribers and free content from SQL, metered articles as the site's policy says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from meter import stats
from meter.access.rules import quota as quota_rule
from meter.access.rules.metering import doubts, journal, ledger
from meter.access.rules.metering.layout import (
    CALENDAR_GRACE,
    anonymous_subject,
    hash64,
    pack_unlocks,
    place,
    reader_subject,
    unlocks_key,
)
from meter.accounts.models import Reader, ReaderSession
from meter.platform import clock, redis_keys
from meter.platform.db import db
from meter.platform.reasons import ALLOWED_REASONS
from meter.platform.redis_conn import RedisUnavailable, conn
from meter.sites import Meter, Period, Policy, SiteInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subject:
    """Whom a check counts against: a reader (with the session of their token) or an anonymous id."""

    kind: str  # "r" | "a"
    key: str  # layout.reader_subject / anonymous_subject
    reader_id: int | None = None
    session_id: str = ""
    amp_link_key: str = ""  # an AMP reader id's link to a reader (meter.access.rules.amp_readers), read by the script

    @classmethod
    def reader(cls, reader_id: int, session_id: str = "") -> Subject:
        return cls("r", reader_subject(reader_id), reader_id, session_id)

    @classmethod
    def anonymous(cls, anonymous_id: str, amp_link_key: str = "") -> Subject:
        return cls("a", anonymous_subject(anonymous_id), amp_link_key=amp_link_key)


@dataclass
class Decision:
    allowed: bool
    reason: str
    state: str
    used: int
    limit: int
    period_end: datetime
    degraded: bool = False
    revoked: bool = False  # the reader token's session is gone: judge again as anonymous
    article_class: str = "metered"
    linked_to: str = ""  # the AMP reader id is linked to this "reader_id:session_id": judge that reader
    meter_name: str = "default"  # the meter that counted (or would have): "default" or one of the policy's meters
    rule: str | None = None  # the meter's rule by arrival that decided this check's limit (its extra reads)
    experiment: str | None = None  # the meter's experiment that chose this check's quotas …
    variant: str | None = None  # … by the subject's variant of it

    def meter(self) -> dict:
        return {
            "name": self.meter_name,
            "rule": self.rule,
            "experiment": self.experiment,
            "variant": self.variant,
            "used": self.used,
            "limit": self.limit,
            "remaining": max(self.limit - self.used, 0),
            "period_end": self.period_end.isoformat(),
        }


@dataclass
class ScriptArgs:
    """ARGV of `check.lua`, in the order its header documents (the one description of both)."""

    kind: str  # 1: "r" reader | "a" anonymous
    session: bytes  # 2: the reader token's session id hash (8 bytes), b"" for anonymous
    now: int  # 3: epoch seconds
    article: bytes  # 4: the article id's hash (8 bytes)
    article_class: str  # 5: free | metered | premium
    record: bool  # 6: count an unlock (else only say whether it would)
    quota_anonymous: int  # 7
    quota_registered: int  # 8
    quota_verified: int  # 9
    unlocks_expiry: int  # 10: calendar: when the unlock bucket expires (epoch); rolling: its ttl (s)
    window: int  # 11: a rolling window's length (s); 0 for calendar periods
    state_ttl: int  # 12: the state bucket's ttl (s)
    field: bytes  # 15: the subject's field in the bucket hashes
    stats_expiry: int  # 17: when the day's stats key expires (epoch s)
    fresh_state: bytes = b""  # 13: reader state fresh from SQL, replacing the cache (b"": none)
    unlocks: bytes | None = None  # 14 + 16: the packed unlocks to store when missing (None: none sent)
    pending: str = ""  # 18: answers given without the script, to count first ("reason=n;…"), sent once
    journal: str = ""  # 19: the ledger row of an unlock, less its time (journal.entry); "" when none can be
    walls: str = ""  # 20: the stats field that counts this check's wall for its variant ("" = no experiment)

    def argv(self) -> list:
        return [
            self.kind,
            self.session,
            self.now,
            self.article,
            self.article_class,
            "1" if self.record else "0",
            self.quota_anonymous,
            self.quota_registered,
            self.quota_verified,
            self.unlocks_expiry,
            self.window,
            self.state_ttl,
            self.fresh_state,
            "0" if self.unlocks is None else "1",
            self.field,
            self.unlocks or b"",
            self.stats_expiry,
            self.pending,
            self.journal,
            self.walls,
        ]


WALLS_PREFIX = "x:"  # a stats field of the walls of an experiment's variant: x:<figures id>:<variant>


def wall_field(figures_id: str, variant: str) -> str:
    """The field of the day's stats bucket that counts the walls of this variant (stats.roll_up moves it)."""
    return f"{WALLS_PREFIX}{figures_id}:{variant}"


def refusal_reason(policy: Policy | Meter, state: str, article_class: str) -> str:
    """What would help a refused reader (meter.access.rules.quota, the rule check.lua applies), by the
    quotas of a meter (a policy: its default meter's)."""
    return quota_rule.refusal(policy.quotas, state, article_class)


def period_end(period: Period, oldest: int, now: datetime) -> datetime:
    """When the next article frees up: the period's end, or when the oldest unlock leaves a rolling window."""
    if not period.rolling_seconds:
        return period.end
    start = datetime.fromtimestamp(oldest, UTC) if oldest else now
    return (start + timedelta(seconds=period.rolling_seconds)).astimezone(period.start.tzinfo)


_periods: dict[Meter | Policy, Period] = {}


def current_period(meter: Meter | Policy, now: datetime) -> Period:
    """The meter's period at `now` (a policy's: its default meter's); a calendar period is computed once
    and reused until it ends."""
    cached = _periods.get(meter)
    if cached is not None and cached.start <= now < cached.end:
        return cached
    period = meter.period_at(now)
    if not period.rolling_seconds:
        if len(_periods) > 1000:
            _periods.clear()
        _periods[meter] = period
    return period


_ALLOWED_CODES = frozenset(ALLOWED_REASONS)


def check(
    site: SiteInfo,
    subject: Subject | None,
    article_id: str,
    article_class: str,
    record: bool,
    meter: Meter | None = None,
    walls: str = "",
) -> Decision:
    """`meter`: the one to count in (`Policy.meter_for` the article's section, with a variant's quotas
    and a rule's extra reads); None: the default. `walls`: the stats field of the variant's walls."""
    policy = site.policy
    if meter is None:
        meter = policy.default_meter
    now = clock.now()
    period = current_period(meter, now)
    day = stats.day_of(policy, now)
    if subject is None:
        return _counted(site, day, record, _without_subject(meter, period, article_class, now))
    config = current_app.config
    count = config["METER_BUCKETS"]  # layout.buckets(), without a second context lookup
    bucket, field = place(subject.key, count)
    keys = [
        redis_keys.state_bucket(site.id, bucket, count),
        unlocks_key(site.id, subject.key, period, bucket, count, meter.name),
        redis_keys.stats_bucket(site.id, bucket, count, day.isoformat()),
        redis_keys.ledger_journal(site.id, bucket, count),
    ]
    if subject.amp_link_key:
        keys.append(subject.amp_link_key)
    args = ScriptArgs(
        kind=subject.kind,
        session=hash64(subject.session_id) if subject.session_id else b"",
        now=ledger.epoch(now),
        article=hash64(article_id),
        article_class=article_class,
        record=record,
        quota_anonymous=meter.quota_anonymous,
        quota_registered=meter.quota_registered,
        quota_verified=meter.quota_verified,
        # Calendar periods: one absolute expiry shared by the whole bucket.
        unlocks_expiry=period.rolling_seconds + 86400
        if period.rolling_seconds
        else ledger.epoch(period.end) + CALENDAR_GRACE,
        window=period.rolling_seconds,
        state_ttl=config["READER_CACHE_TTL"],
        field=field,
        stats_expiry=stats.stats_expiry(policy, day),
        pending=stats.take(site.id, day),
        journal=journal.entry(period, subject.key, article_id, now, meter.name)
        if record and article_class == "metered"
        else "",
        walls=walls,
    )
    redis = conn()
    try:
        try:
            result = redis.run_script("check", keys, args.argv())
        except RedisUnavailable as exc:
            if not exc.sent:  # the script did not run: the waiting counts wait for the next call
                stats.give_back(site.id, day, args.pending)
            raise
        args.pending = ""  # counted by the first run
        if result[0] in ("need_state", "need_unlocks"):
            # Cold path: load what Redis lacks from SQL, and let the script store it (only if still missing).
            if subject.kind == "r":
                args.fresh_state = ledger.reader_state(site.id, subject.reader_id, now)
            found = ledger.entries(site.id, subject.key, period, now, meter.name)
            args.unlocks = pack_unlocks(found, bool(period.rolling_seconds))
            result = redis.run_script("check", keys, args.argv())
    except RedisUnavailable as exc:
        log.debug("redis unavailable, degraded answer: %s", exc)  # the outage itself: once, in redis_conn
        if exc.sent and record and article_class == "metered":
            doubts.note(site.id, subject.key, article_id, now, meter.name)
        return _counted(site, day, record, degraded(site, subject, article_id, article_class, now, period, meter))
    except SQLAlchemyError:
        # Redis lacks this subject and the database cannot fill it in: answer as when Redis is away.
        db.session.rollback()
        log.warning("database unavailable on the cold path, degraded answer", exc_info=True)
        return _counted(site, day, record, degraded(site, subject, article_id, article_class, now, period, meter))

    code, state, used, oldest = result[0], result[1], int(result[2]), int(result[3])
    if code == "linked":
        return Decision(False, "linked", "anonymous", 0, 0, period.end, linked_to=state, meter_name=meter.name)
    if code == "revoked":
        return Decision(False, "revoked", "anonymous", 0, 0, period.end, revoked=True, meter_name=meter.name)
    limit = meter.quota_for(state)
    end = period_end(period, oldest, now)
    if code == "unlocked_now" or (code == "already_unlocked" and record and redis.redialled()):
        # Written now, so the ledger is current while the database answers. The script also put the unlock
        # in the bucket's journal: when this write fails the worker writes it later (idempotently, as
        # here: a redialled call may have unlocked the article on its first, broken connection, so
        # "already unlocked" then is written too, to be sure).
        try:
            ledger.record(site.id, subject.key, period, article_id, now, meter.name)
        except SQLAlchemyError:
            db.session.rollback()
            log.warning(
                "unlock of %s by %s: ledger write failed, left to the worker (journal)", article_id, subject.key
            )
    return Decision(
        code in _ALLOWED_CODES, code, state, used, limit, end, article_class=article_class, meter_name=meter.name
    )


def _counted(site: SiteInfo, day, record: bool, decision: Decision) -> Decision:
    """An answer given without the script: counted in the figures with the site's next script call."""
    if record and not decision.revoked:
        stats.note(site.id, day, decision.reason)
    return decision


def _without_subject(meter: Meter, period: Period, article_class: str, now: datetime) -> Decision:
    """Nobody to count against: free is free, nothing else can be unlocked."""
    end = period_end(period, 0, now)
    if article_class == "free":
        return Decision(True, "free_content", "anonymous", 0, meter.quota_anonymous, end, meter_name=meter.name)
    reason = refusal_reason(meter, "anonymous", article_class)
    return Decision(False, reason, "anonymous", 0, meter.quota_anonymous, end, meter_name=meter.name)


def degraded(
    site: SiteInfo,
    subject: Subject,
    article_id: str,
    article_class: str,
    now: datetime,
    period: Period,
    meter: Meter | None = None,
) -> Decision:
    """Redis is away: subscribers and free from the database, metered (in the meter's own ledger rows
    and by its quotas) as the site's policy says."""
    policy = site.policy
    if meter is None:
        meter = policy.default_meter
    state, used, unlocked = "anonymous", 0, False
    try:
        if subject.kind == "r":
            reader = db.session.get(Reader, subject.reader_id)
            session = db.session.get(ReaderSession, subject.session_id) if subject.session_id else None
            if reader is None or session is None or session.revoked_at is not None or session.reader_id != reader.id:
                return Decision(
                    False, "revoked", "anonymous", 0, 0, period.end, revoked=True, degraded=True, meter_name=meter.name
                )
            state = "subscriber" if reader.is_subscriber(ledger.naive_utc(now)) else reader.state
        found = ledger.entries(site.id, subject.key, period, now, meter.name)
        used, unlocked = len(found), article_id in found
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("database unavailable too while degraded")
    limit = meter.quota_for(state)
    end = period_end(period, 0, now)
    reason = quota_rule.degraded_answer(meter.quotas, state, article_class, unlocked, policy.degraded_mode)
    allowed = reason in _ALLOWED_CODES or reason == "degraded_allow"
    return Decision(
        allowed, reason, state, used, limit, end, degraded=True, article_class=article_class, meter_name=meter.name
    )
