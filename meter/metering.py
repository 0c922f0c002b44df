"""The meter: who has unlocked what, decided in Redis by one Lua script, kept durably in SQL.

Redis is the fast copy; the `unlocks` table is the truth. When a subject's Redis data is missing
(flush, restart, eviction) the script says so and it is rebuilt from the ledger before deciding, so
nobody gains or loses an unlock. The layout of the Redis data is private to this module and
`lua/check.lua`; keys are named in `keys.py`.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from . import clock, keys, signals
from .extensions import db
from .models import Reader, ReaderSession, Site, Unlock, UnlockDoubt
from .policy import Period, Policy
from .redisconn import RedisUnavailable, conn
from .sites import SiteInfo
from .sites import info as site_info

log = logging.getLogger(__name__)

CALENDAR_GRACE = 7 * 86400  # keep a finished period's data a while (late pingbacks, support)
U32_MAX = 0xFFFFFFFF  # times are packed as 32-bit epochs (until 2106)


def hash64(value: str) -> bytes:
    """The 8-byte hash Redis keeps instead of an article or session id (BLAKE2b: fast, no structure)."""
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def place(subject: str, buckets: int | None = None) -> tuple[int, bytes]:
    """(bucket, field) of a subject key (`r:<id>` | `a:<anonymous id>`) in the compact layout.

    Readers: field = the id in decimal (Redis packs it as an integer), bucket = id modulo METER_BUCKETS
    (ids are sequential, so buckets fill evenly). Anonymous ids: field = "a" + their 64-bit hash.
    """
    if buckets is None:
        buckets = current_app.config["METER_BUCKETS"]
    kind, _, rest = subject.partition(":")
    if kind == "r":
        reader_id = int(rest)
        return reader_id % buckets, str(reader_id).encode()
    digest = hash64(rest)
    return int.from_bytes(digest, "big") % buckets, b"a" + digest


def _pack_state(verified: bool, sub_until: int, session_ids: list[str]) -> bytes:
    return (
        (b"1" if verified else b"0")
        + struct.pack(">I", min(max(sub_until, 0), U32_MAX))
        + b"".join(hash64(s) for s in session_ids)
    )


def pack_unlocks(entries: dict[str, int], rolling: bool) -> bytes:
    """Unlocks as the script keeps them: 8-byte article hashes, each followed by a 4-byte time if rolling."""
    ordered = sorted(entries.items(), key=lambda item: item[1])
    if rolling:
        return b"".join(hash64(a) + struct.pack(">I", min(max(t, 0), U32_MAX)) for a, t in ordered)
    return b"".join(hash64(a) for a, _t in ordered)


def unlock_key(site_id: int, subject: str, period: Period, buckets: int | None = None) -> tuple[str, bytes]:
    """(key, field) that hold a subject's unlocks of a period."""
    if buckets is None:
        buckets = current_app.config["METER_BUCKETS"]
    bucket, fld = place(subject, buckets)
    return _unlock_key_of(site_id, subject, period, bucket, buckets), fld


def _unlock_key_of(site_id: int, subject: str, period: Period, bucket: int, buckets: int) -> str:
    if period.rolling_seconds:
        return keys.rolling_unlocks(site_id, bucket, buckets, subject)
    return keys.unlock_bucket(site_id, bucket, buckets, period.label)


@dataclass(frozen=True)
class Subject:
    """Whom an access check counts against: a reader (with the session of their token) or an anonymous id."""

    kind: str  # "r" | "a"
    key: str  # keys.subject_for_*
    reader_id: int | None = None
    session_id: str = ""

    @classmethod
    def reader(cls, reader_id: int, session_id: str = "") -> Subject:
        return cls("r", keys.subject_for_reader(reader_id), reader_id, session_id)

    @classmethod
    def anonymous(cls, anonymous_id: str) -> Subject:
        return cls("a", keys.subject_for_anonymous(anonymous_id))


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
    extra: dict = field(default_factory=dict)

    def meter(self) -> dict:
        return {
            "used": self.used,
            "limit": self.limit,
            "remaining": max(self.limit - self.used, 0),
            "period_end": self.period_end.isoformat(),
        }


def _ledger_period(period: Period, when: datetime) -> str:
    """Ledger rows of rolling windows are labelled by day, so an article can unlock again later."""
    return "d" + when.astimezone(UTC).strftime("%Y-%m-%d") if period.rolling_seconds else period.label


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def _naive_utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None)


def refusal_reason(policy: Policy, state: str, article_class: str) -> str:
    if article_class == "premium":
        return "subscription_required"
    if state == "anonymous" and max(policy.quota_registered, policy.quota_verified) > policy.quota_anonymous:
        return "registration_required"
    if state == "registered" and policy.quota_verified > policy.quota_registered:
        return "verification_required"
    return "quota_exhausted"


def _period_end(period: Period, oldest: int, now: datetime) -> datetime:
    if not period.rolling_seconds:
        return period.end
    start = datetime.fromtimestamp(oldest, UTC) if oldest else now
    return (start + timedelta(seconds=period.rolling_seconds)).astimezone(period.start.tzinfo)


# --- loading what Redis lost ------------------------------------------------------------------


def ledger_entries(site_id: int, subject: str, period: Period, now: datetime) -> dict[str, int]:
    """article id → unlock time (epoch) for the subject's current period, from the ledger."""
    query = select(Unlock.article_id, Unlock.unlocked_at).where(Unlock.site_id == site_id, Unlock.subject == subject)
    if period.rolling_seconds:
        since = _naive_utc(now - timedelta(seconds=period.rolling_seconds))
        query = query.where(Unlock.period.like("d%"), Unlock.unlocked_at > since)
    else:
        query = query.where(Unlock.period == period.label)
    entries: dict[str, int] = {}
    for article_id, unlocked_at in db.session.execute(query):
        t = _epoch(unlocked_at.replace(tzinfo=UTC))
        entries[article_id] = max(t, entries.get(article_id, 0))
    return entries


def reader_state_blob(site_id: int, reader_id: int, now: datetime) -> bytes:
    """The cached reader state the Lua script keeps: verified, subscription end, live session hashes."""
    reader = db.session.get(Reader, reader_id)
    if reader is None or reader.site_id != site_id:
        return _pack_state(False, 0, [])
    max_age = current_app.config["READER_TOKEN_MAX_AGE"]
    since = _naive_utc(now - timedelta(seconds=max_age))
    sids = db.session.scalars(
        select(ReaderSession.id).where(
            ReaderSession.reader_id == reader_id, ReaderSession.revoked_at.is_(None), ReaderSession.created_at > since
        )
    ).all()
    sub = _epoch(reader.subscription_until.replace(tzinfo=UTC)) if reader.subscription_until else 0
    return _pack_state(reader.verified_at is not None, sub, list(sids))


def record_unlock(site_id: int, subject: str, period: Period, article_id: str, when: datetime) -> None:
    """Write one unlock to the ledger; a duplicate (a retried or raced request) is ignored."""
    values = {
        "site_id": site_id,
        "subject": subject,
        "period": _ledger_period(period, when),
        "article_id": article_id,
        "unlocked_at": _naive_utc(when),
    }
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(Unlock).values(**values).on_conflict_do_nothing())
    db.session.commit()


# --- the check --------------------------------------------------------------------------------


_periods: dict[Policy, Period] = {}


def _period(policy: Policy, now: datetime) -> Period:
    """The policy's period at `now`; a calendar period is computed once and reused until it ends."""
    cached = _periods.get(policy)
    if cached is not None and cached.start <= now < cached.end:
        return cached
    period = policy.period_at(now)
    if not period.rolling_seconds:
        if len(_periods) > 1000:
            _periods.clear()
        _periods[policy] = period
    return period


_ALLOWED_CODES = frozenset({"free_content", "subscriber", "already_unlocked", "unlocked_now", "would_unlock"})


def check(site: SiteInfo, subject: Subject | None, article_id: str, article_class: str, record: bool) -> Decision:
    policy = site.policy
    now = clock.now()
    period = _period(policy, now)
    if subject is None:
        return _without_subject(policy, period, article_class, now)
    config = current_app.config
    buckets = config["METER_BUCKETS"]
    bucket, fld = place(subject.key, buckets)
    state_key = keys.state_bucket(site.id, bucket, buckets)
    ukey = _unlock_key_of(site.id, subject.key, period, bucket, buckets)
    ttl = (
        period.rolling_seconds + 86400
        if period.rolling_seconds
        else _epoch(period.end) + CALENDAR_GRACE  # one absolute expiry shared by the whole bucket
    )
    args: list = [
        subject.kind,
        hash64(subject.session_id) if subject.session_id else b"",
        _epoch(now),
        hash64(article_id),
        article_class,
        "1" if record else "0",
        policy.quota_anonymous,
        policy.quota_registered,
        policy.quota_verified,
        ttl,
        period.rolling_seconds,
        config["READER_CACHE_TTL"],
        b"",
        "0",
        fld,
        b"",
    ]
    redis = conn()
    try:
        result = redis.run_script("check", [state_key, ukey], args)
        if result[0] in ("need_state", "need_unlocks"):
            # Cold path: load what Redis lacks from SQL, and let the script store it (only if still missing).
            if subject.kind == "r":
                args[12] = reader_state_blob(site.id, subject.reader_id, now)
            args[13] = "1"
            args[15] = pack_unlocks(ledger_entries(site.id, subject.key, period, now), bool(period.rolling_seconds))
            result = redis.run_script("check", [state_key, ukey], args)
    except RedisUnavailable as exc:
        log.warning("redis unavailable, degraded answer: %s", exc)
        if exc.sent and record and article_class == "metered":
            note_doubt(site.id, subject.key, article_id, now)
        return degraded(site, subject, article_id, article_class, now, period)
    except SQLAlchemyError:
        # Redis lacks this subject and the database cannot fill it in: answer as when Redis is away.
        db.session.rollback()
        log.warning("database unavailable on the cold path, degraded answer", exc_info=True)
        return degraded(site, subject, article_id, article_class, now, period)

    code, state, used, oldest, _sub = result[0], result[1], int(result[2]), int(result[3]), int(result[4])
    if code == "revoked":
        return Decision(False, "revoked", "anonymous", 0, 0, period.end, revoked=True)
    limit = policy.quota_for(state) if state != "subscriber" else policy.quota_verified
    end = _period_end(period, oldest, now)
    if code == "unlocked_now" or (code == "already_unlocked" and record and redis.redialled()):
        # (A redialled call may have unlocked the article on its first, broken connection: the
        # ledger write is idempotent, so "already unlocked" then is written too, to be sure.)
        try:
            record_unlock(site.id, subject.key, period, article_id, now)
        except SQLAlchemyError:
            db.session.rollback()
            log.exception("unlock of %s by %s kept in Redis only: ledger write failed", article_id, subject.key)
        if code == "unlocked_now":
            signals.article_unlocked.send(
                current_app._get_current_object(), site_id=site.id, subject=subject.key, article_id=article_id
            )
    if code in _ALLOWED_CODES:
        allowed, reason = True, code
    else:
        allowed, reason = False, refusal_reason(policy, state, article_class)
    return Decision(allowed, reason, state, used, limit, end, article_class=article_class)


def _without_subject(policy: Policy, period: Period, article_class: str, now: datetime) -> Decision:
    """Nobody to count against: free is free, nothing else can be unlocked."""
    end = _period_end(period, 0, now)
    if article_class == "free":
        return Decision(True, "free_content", "anonymous", 0, policy.quota_anonymous, end)
    return Decision(
        False, refusal_reason(policy, "anonymous", article_class), "anonymous", 0, policy.quota_anonymous, end
    )


def degraded(
    site: SiteInfo, subject: Subject, article_id: str, article_class: str, now: datetime, period: Period
) -> Decision:
    """Redis is away: subscribers and free from the database, metered as the site's policy says."""
    policy = site.policy
    state, used, unlocked = "anonymous", 0, False
    try:
        if subject.kind == "r":
            reader = db.session.get(Reader, subject.reader_id)
            session = db.session.get(ReaderSession, subject.session_id) if subject.session_id else None
            if reader is None or session is None or session.revoked_at is not None or session.reader_id != reader.id:
                return Decision(False, "revoked", "anonymous", 0, 0, period.end, revoked=True, degraded=True)
            state = "subscriber" if reader.is_subscriber(_naive_utc(now)) else reader.state
        entries = ledger_entries(site.id, subject.key, period, now)
        used, unlocked = len(entries), article_id in entries
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("database unavailable too while degraded")
    limit = policy.quota_for(state) if state != "subscriber" else policy.quota_verified
    end = _period_end(period, 0, now)
    if article_class == "free":
        allowed, reason = True, "free_content"
    elif state == "subscriber":
        allowed, reason = True, "subscriber"
    elif article_class == "premium":
        allowed, reason = False, "subscription_required"
    elif unlocked:
        allowed, reason = True, "already_unlocked"
    elif policy.degraded_mode == "allow":
        allowed, reason = True, "degraded_allow"
    else:
        allowed, reason = False, "degraded_deny"
    return Decision(allowed, reason, state, used, limit, end, degraded=True, article_class=article_class)


# --- unlocks in doubt: a recording check whose reply was lost ----------------------------------

DOUBT_SETTLE_AFTER = 5.0  # seconds: by then the script has run, if it ever will
DOUBT_MAX_AGE = timedelta(days=40)  # past any calendar period and its grace: nothing left to settle


def note_doubt(site_id: int, subject: str, article_id: str, now: datetime) -> None:
    """The script may have unlocked the article before the reply was lost; the ledger must hear of it."""
    try:
        db.session.add(UnlockDoubt(site_id=site_id, subject=subject, article_id=article_id, checked_at=_naive_utc(now)))
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("unlock of %s by %s in doubt and not noted: the database failed too", article_id, subject)


def _unlocked_hashes(site_id: int, subject: str, period: Period) -> set[bytes]:
    """The article hashes Redis holds for the subject's period (empty when Redis holds nothing)."""
    key, fld = unlock_key(site_id, subject, period)
    redis = conn()
    if period.rolling_seconds:
        packed = redis.call(redis.client.execute_command, "GET", key, NEVER_DECODE=True)
        size = 12
    else:
        packed = redis.call(redis.client.execute_command, "HGET", key, fld, NEVER_DECODE=True)
        size = 8
    packed = packed or b""
    return {packed[i : i + 8] for i in range(0, len(packed) - 7, size)}


def settle_doubts(limit: int = 500) -> tuple[int, int]:
    """Unlocks in doubt: those Redis holds go into the ledger, the rest are forgotten.

    Returns (into the ledger, forgotten). Stops, keeping the rest, while Redis cannot answer.
    """
    now = clock.now()
    settle_before = _naive_utc(now) - timedelta(seconds=DOUBT_SETTLE_AFTER)
    rows = db.session.scalars(
        select(UnlockDoubt).where(UnlockDoubt.checked_at <= settle_before).order_by(UnlockDoubt.id).limit(limit)
    ).all()
    kept = forgotten = 0
    for row in rows:
        checked_at = row.checked_at.replace(tzinfo=UTC)
        site_row = db.session.get(Site, row.site_id)
        if site_row is not None and _naive_utc(now) - row.checked_at < DOUBT_MAX_AGE:
            site = site_info(site_row)
            period = site.policy.period_at(checked_at)
            try:
                held = hash64(row.article_id) in _unlocked_hashes(site.id, row.subject, period)
            except RedisUnavailable:
                break
            if held:
                record_unlock(site.id, row.subject, period, row.article_id, checked_at)
                log.info("unlock of %s by %s, in doubt, found in Redis: now in the ledger", row.article_id, row.subject)
                kept += 1
            else:
                forgotten += 1
        else:
            forgotten += 1
        db.session.delete(row)
        db.session.commit()
    return kept, forgotten


# --- changes outside the hot path -------------------------------------------------------------


def forget_reader_state(site_id: int, reader_id: int) -> None:
    """Drop the cached reader state after any change to it in SQL; the next check reloads it."""
    bucket, fld = place(keys.subject_for_reader(reader_id))
    try:
        conn().call(conn().client.hdel, keys.state_bucket(site_id, bucket, current_app.config["METER_BUCKETS"]), fld)
    except RedisUnavailable:
        log.warning("could not drop cached state of reader %s; it expires within READER_CACHE_TTL", reader_id)


def _drop_unlocks(site_id: int, subject: str, period: Period) -> None:
    key, fld = unlock_key(site_id, subject, period)
    if period.rolling_seconds:
        conn().call(conn().client.delete, key)
    else:
        conn().call(conn().client.hdel, key, fld)


def _forget_unlocks(site_id: int, subject: str, period: Period) -> None:
    try:
        _drop_unlocks(site_id, subject, period)
    except RedisUnavailable:
        log.warning("could not drop cached unlocks of %s", subject)


def unlocked_articles(site: SiteInfo, subject: str) -> dict[str, int]:
    now = clock.now()
    return ledger_entries(site.id, subject, site.policy.period_at(now), now)


def summary(site: SiteInfo, subject: str, state: str) -> dict:
    """The subject's meter for this period, from the ledger (for /v1/readers/me and operators)."""
    now = clock.now()
    period = site.policy.period_at(now)
    unlocked = ledger_entries(site.id, subject, period, now)
    limit = site.policy.quota_for("verified" if state == "subscriber" else state)
    return {
        "used": len(unlocked),
        "limit": limit,
        "remaining": max(limit - len(unlocked), 0),
        "period": period.label,
        "period_end": _period_end(period, min(unlocked.values(), default=0), now).isoformat(),
        "unlocked": sorted(unlocked),
    }


def merge_anonymous(site: SiteInfo, anonymous_id: str, reader_id: int) -> int:
    """Carry an anonymous visitor's unlocks of the current period over to a reader; returns how many."""
    now = clock.now()
    period = site.policy.period_at(now)
    anon = keys.subject_for_anonymous(anonymous_id)
    reader = keys.subject_for_reader(reader_id)
    entries = ledger_entries(site.id, anon, period, now)
    if not entries:
        return 0
    for article_id, t in entries.items():
        when = datetime.fromtimestamp(t, UTC)
        record_unlock(site.id, reader, period, article_id, when)
    query = delete(Unlock).where(Unlock.site_id == site.id, Unlock.subject == anon)
    db.session.execute(query)
    db.session.commit()
    _forget_unlocks(site.id, anon, period)
    _forget_unlocks(site.id, reader, period)
    return len(entries)


def reset(site: SiteInfo, subject: str) -> int:
    """Clear the subject's unlocks of the current period (operator command)."""
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
