"""Gifts in SQL, the truth: making one, listing a giver's, revoking one, what a gifted read's Redis
copy is built from, and a giver's gifts ending with the giver's deletion (meter.reader_data.rules).
None of this runs on the access check's hot path, except `load` on a cold start and `record_opening`
for a new device.

Rules: only a subscriber of a site whose policy has `gifts.per_period` > 0 may give; each period
(the site's meter period) allows that many gifts, revoked ones included (else revoke-and-give again
would be free); the same article again in the same period is the same gift and costs nothing (a
revoked or expired one gets a fresh link). Concurrent gifts of one reader are serialised by locking
the reader's row (PostgreSQL: SELECT … FOR UPDATE; SQLite serialises its writers anyway).
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from meter.access import U32_MAX, current_period, hash64
from meter.accounts.models import Reader
from meter.gifts.models import Gift, GiftOpening
from meter.gifts.rules import gift_rule, links
from meter.platform import clock, metrics, redis_keys, signals
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.platform.redis_conn import conn
from meter.sites import SiteInfo, normalise_origin
from meter.webhooks import outbox as webhook_outbox

KEY_GRACE = 86400  # the Redis copy outlives the gift by this much (then an expired gift is read from SQL once)


class NotAllowed(Exception):
    """Not a subscriber, or gifts are off on this site (403 gift-not-allowed)."""


class LimitReached(Exception):
    """This period's gifts are used up (403 gift-limit-reached)."""


class BadUrl(ValueError):
    """The article's URL is not on one of the site's origins."""


@dataclass(frozen=True)
class Made:
    gift: Gift
    created: bool  # a new gift (201), or the same article's gift again (200)
    left: int


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def period_start(site: SiteInfo) -> datetime:
    """Naive UTC start of the site's current meter period (a rolling window: its length back from now)."""
    return _naive(current_period(site.policy, clock.now()).start)


def made_this_period(site: SiteInfo, reader_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Gift).where(Gift.reader_id == reader_id, Gift.created_at >= period_start(site))
    )


def gifts_left(site: SiteInfo, reader: Reader) -> int:
    return max(site.policy.gifts_per_period - made_this_period(site, reader.id), 0)


def may_give(site: SiteInfo, reader: Reader) -> bool:
    return site.policy.gifts_per_period > 0 and reader.is_subscriber()


def _check_url(site: SiteInfo, url: str) -> None:
    origin = normalise_origin(url)
    if origin is None or origin not in site.origins:
        raise BadUrl("must be a URL on one of the site's origins")


def make(site: SiteInfo, reader: Reader, article_id: str, article_class: str, url: str) -> Made:
    """Give an article (see the module's rules); raises NotAllowed, LimitReached or BadUrl."""
    if not may_give(site, reader):
        raise NotAllowed
    _check_url(site, url)
    db.session.execute(select(Reader.id).where(Reader.id == reader.id).with_for_update())
    start = period_start(site)
    same = db.session.scalar(
        select(Gift)
        .where(Gift.reader_id == reader.id, Gift.article_id == article_id, Gift.created_at >= start)
        .order_by(Gift.id.desc())
        .limit(1)
    )
    now = utcnow()
    expires = now + timedelta(days=site.policy.gifts_days)
    if same is not None:
        if state_of(same, now) != "active":
            same.token = links.new_token(site.id)
            same.url = links.with_gift(url, same.token)
            same.revoked_at, same.expires_at, same.devices = None, expires, site.policy.gifts_devices
        left = max(site.policy.gifts_per_period - made_this_period(site, reader.id), 0)
        db.session.commit()
        return Made(same, False, left)
    made = made_this_period(site, reader.id)
    if made >= site.policy.gifts_per_period:
        db.session.rollback()
        raise LimitReached
    token = links.new_token(site.id)
    gift = Gift(
        site_id=site.id,
        reader_id=reader.id,
        token=token,
        article_id=article_id,
        article_class=article_class,
        url=links.with_gift(url, token),
        devices=site.policy.gifts_devices,
        created_at=now,
        expires_at=expires,
    )
    db.session.add(gift)
    db.session.flush()
    _created(gift)
    db.session.commit()
    signals.gift_made.send(current_app._get_current_object(), site_id=site.id, reader_id=reader.id)
    metrics.gift_made(site.slug)
    return Made(gift, True, max(site.policy.gifts_per_period - made - 1, 0))


def _created(gift: Gift) -> None:
    """The gift.created event (committed with the gift). Not the link: it is the giver's to share."""
    data = {
        "gift": {
            "id": gift.id,
            "article_id": gift.article_id,
            "article_class": gift.article_class,
            "devices": gift.devices,
            "created_at": webhook_outbox.iso(gift.created_at),
            "expires_at": webhook_outbox.iso(gift.expires_at),
        },
        "reader": {"id": gift.reader_id},
    }
    webhook_outbox.emit(gift.site_id, "gift.created", data, gift.reader_id)


def listing(site: SiteInfo, reader: Reader) -> list[Gift]:
    """The reader's gifts of this period, newest first."""
    return list(
        db.session.scalars(
            select(Gift)
            .where(Gift.reader_id == reader.id, Gift.site_id == site.id, Gift.created_at >= period_start(site))
            .order_by(Gift.id.desc())
        )
    )


def devices_of(gift_ids: list[int]) -> dict[int, int]:
    if not gift_ids:
        return {}
    rows = db.session.execute(
        select(GiftOpening.gift_id, func.count()).where(GiftOpening.gift_id.in_(gift_ids)).group_by(GiftOpening.gift_id)
    )
    return dict(rows.all())


def _expiry(gift: Gift) -> int:
    """The gift's expiry as gift.lua reads it: a whole epoch second."""
    return min(max(int(gift.expires_at.replace(tzinfo=UTC).timestamp()), 0), U32_MAX)


def state_of(gift: Gift, now: datetime) -> str:
    """active, expired or revoked, by the rule gift.lua applies (`gift_rule`), at `now` (naive UTC, as
    stored): in whole seconds, as the link is judged, so no gift is called live that its link refuses."""
    return gift_rule.state(gift.revoked_at is not None, _expiry(gift), int(now.replace(tzinfo=UTC).timestamp()))


def packed_state(gift: Gift, revoked: bool = False) -> bytes:
    """The gift as gift.lua reads it: article hash, expiry, device limit, revoked."""
    return (
        hash64(gift.article_id)
        + struct.pack(">IH", _expiry(gift), min(gift.devices, 0xFFFF))
        + (b"1" if revoked or gift.revoked_at is not None else b"0")
    )


def _keys_until(gift: Gift) -> int:
    return int(gift.expires_at.replace(tzinfo=UTC).timestamp()) + KEY_GRACE


def revoke(site: SiteInfo, reader: Reader, token: str) -> bool:
    """Stop a gift's link at once: in SQL and, before that is committed, in its Redis copy (written whole,
    so a cold load racing with it cannot bring the link back). False: not this reader's gift.
    RedisUnavailable: nothing changed."""
    gift = db.session.scalar(select(Gift).where(Gift.token == token, Gift.site_id == site.id))
    if gift is None or gift.reader_id != reader.id:
        return False
    if gift.revoked_at is None:
        gift.revoked_at = utcnow()
        db.session.flush()
        nonce = token[:16]
        key = redis_keys.gift_state(site.id, nonce)
        redis = conn()
        try:
            pipe = redis.client.pipeline(transaction=False)
            pipe.hset(key, "s", packed_state(gift))
            pipe.expireat(key, _keys_until(gift))
            redis.call(pipe.execute)
        except Exception:
            db.session.rollback()
            raise
    db.session.commit()
    return True


def load(site_id: int, token: str) -> tuple[bytes, bytes] | None:
    """(packed state, packed device hashes) of a gift, for its Redis copy; None when there is no such gift."""
    gift = db.session.scalar(select(Gift).where(Gift.token == token, Gift.site_id == site_id))
    if gift is None:
        return None
    devices = db.session.scalars(select(GiftOpening.device).where(GiftOpening.gift_id == gift.id))
    return packed_state(gift), b"".join(bytes.fromhex(d) for d in devices)


def record_opening(site_id: int, token: str, device_hash: bytes) -> bool:
    """A new device opened the gift (the script let it in): kept in SQL, as the ledger keeps unlocks.

    False when SQL has no such gift: its giver was deleted and Redis still had it (a delete Redis
    lost). The caller refuses the device and drops the gift's keys (`forget_links`)."""
    gift_id = db.session.scalar(select(Gift.id).where(Gift.token == token, Gift.site_id == site_id))
    if gift_id is None:
        return False
    db.session.add(GiftOpening(gift_id=gift_id, device=device_hash.hex()))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # already written (a Redis copy rebuilt from SQL let it in again)
    return True


def reads_of(site_id: int, gifts: list[Gift]) -> dict[int, int]:
    """How many gifted reads each gift gave (kept in Redis only: 0 when Redis cannot say)."""
    if not gifts:
        return {}
    redis = conn()
    pipe = redis.client.pipeline(transaction=False)
    for gift in gifts:
        pipe.hget(redis_keys.gift_state(site_id, gift.token[:16]), "c")
    values = redis.call(pipe.execute)
    return {gift.id: int(v or 0) for gift, v in zip(gifts, values, strict=True)}


def expires_iso(gift: Gift) -> str:
    return gift.expires_at.replace(tzinfo=UTC).isoformat()


# --- a giver's deletion (meter.reader_data.rules.erasure) ------------------------------------------


def of_giver(reader_id: int) -> list[Gift]:
    """Every gift the reader made, every period, oldest first (their export, their deletion)."""
    return list(db.session.scalars(select(Gift).where(Gift.reader_id == reader_id).order_by(Gift.id)))


def end_links(site_id: int, gifts: list[Gift]) -> None:
    """Before a giver's gifts are deleted: each gift's Redis copy is written revoked and its devices are
    dropped, in one round trip. Written whole, as `revoke` does, so that a cold load racing with the
    deletion cannot bring a link back, nor can a Redis that misses the delete after the commit (it went
    away meanwhile): the revoked copy then refuses every device until it expires. RedisUnavailable:
    raised before any row is touched."""
    if not gifts:
        return
    redis = conn()
    pipe = redis.client.pipeline(transaction=False)
    for gift in gifts:
        key = redis_keys.gift_state(site_id, gift.token[:16])
        pipe.hset(key, "s", packed_state(gift, revoked=True))
        pipe.expireat(key, _keys_until(gift))
        pipe.delete(redis_keys.gift_devices(site_id, gift.token[:16]))
    redis.call(pipe.execute)


def unlink_openings(site_id: int, device: str) -> int:
    """The deleted reader's openings of others' gifts: each gets a random device hash of its own, in SQL
    and in the gift's Redis set, so it still counts as one of the gift's devices while no row leads
    back to the reader (an unkeyed hash of "r:<id>" is no secret). Redis first: RedisUnavailable leaves
    SQL untouched. Returns how many."""
    old = hash64(device)
    rows = db.session.execute(
        select(GiftOpening.id, Gift.token, Gift.expires_at)
        .join(Gift, GiftOpening.gift_id == Gift.id)
        .where(Gift.site_id == site_id, GiftOpening.device == old.hex())
    ).all()
    if not rows:
        return 0
    fresh = {row.id: secrets.token_bytes(8) for row in rows}
    redis = conn()
    pipe = redis.client.pipeline(transaction=False)
    for row in rows:
        key = redis_keys.gift_devices(site_id, row.token[:16])
        pipe.srem(key, old)
        pipe.sadd(key, fresh[row.id])
        pipe.expireat(key, int(row.expires_at.replace(tzinfo=UTC).timestamp()) + KEY_GRACE)
    redis.call(pipe.execute)
    for opening_id, device_hash in fresh.items():
        db.session.execute(update(GiftOpening).where(GiftOpening.id == opening_id).values(device=device_hash.hex()))
    return len(rows)


def delete_of_giver(reader_id: int) -> list[str]:
    """Delete the giver's gifts and their openings, in the caller's transaction (explicitly: SQLite
    enforces no foreign key, so no cascade would); returns the deleted gifts' nonces."""
    gifts = db.session.execute(select(Gift.id, Gift.token).where(Gift.reader_id == reader_id)).all()
    if not gifts:
        return []
    ids = [gift.id for gift in gifts]
    db.session.execute(delete(GiftOpening).where(GiftOpening.gift_id.in_(ids)))
    db.session.execute(delete(Gift).where(Gift.id.in_(ids)))
    return [gift.token[:16] for gift in gifts]


def forget_links(site_id: int, nonces: list[str]) -> None:
    """Delete gifts' Redis keys once their rows are gone: a read then finds the gift nowhere ("invalid")."""
    if not nonces:
        return
    redis = conn()
    pipe = redis.client.pipeline(transaction=False)
    for nonce in nonces:
        pipe.delete(redis_keys.gift_state(site_id, nonce))
        pipe.delete(redis_keys.gift_devices(site_id, nonce))
    redis.call(pipe.execute)
