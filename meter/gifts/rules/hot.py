"""A gifted read on the access check's hot path: one EVALSHA of `gift.lua`, on the gift's own keys.

Why its own script: a gift's devices are shared by everyone who opens it, so they cannot live in
every reader's slot; and a valid gifted read needs nothing of the reader's meter. The gift's state
and its devices carry the gift's hash tag (`redis_keys.gift_tag`), one Redis Cluster slot.

A refused gift (expired, revoked, another article, the device limit) is then judged without it, by
the meter's script: two calls. What cannot change is remembered in this process (an expired or
revoked gift, a device over the limit, a token that names no gift), so from the second time such a
link is opened here it costs nothing again. A token that is not signed by this site is refused
without any call (`links`). Cold start: the script says the gift is missing, it is read from SQL
and sent with a second call; a new device is written to SQL (`store.record_opening`), and that
write is where a Redis copy of a deleted giver's gift meets the truth: no row, so the device is
refused and the copy dropped, whatever Redis remembered.
"""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError

from meter.access import hash64
from meter.gifts.rules import gift_rule, links, store
from meter.platform import clock, metrics, redis_keys
from meter.platform.db import db
from meter.platform.redis_conn import RedisUnavailable, conn

log = logging.getLogger(__name__)

REFUSALS = gift_rule.REFUSALS
_known: dict[tuple, str] = {}  # what cannot change: (token,) | (token, article) | (token, device) → outcome


def _remember(key: tuple, outcome: str) -> str:
    if len(_known) > 100_000:
        _known.clear()
    _known[key] = outcome
    return outcome


def read(site_id: int, site_slug: str, token: str, article_id: str, device: str | None, record: bool) -> str | None:
    """The gift's answer for this article and device: "gift" (allowed; nothing counted for the reader)
    or a refusal of REFUSALS; None when Redis could not answer (the check then goes on without it)."""
    outcome = _read(site_id, token, article_id, device, record)
    if outcome == "gift_new":
        metrics.gift_read(site_slug, "new_device")
        return "gift"
    if outcome is not None:
        metrics.gift_read(site_slug, outcome if outcome != "gift" else "again" if record else "asked")
    return outcome


def _gone(site_id: int, token: str, nonce: str) -> str:
    """Redis let a new device into a gift SQL no longer has (its giver was deleted, and Redis lost the
    delete: restored from before it, or away when it came). SQL is the truth: the device is refused,
    and the gift's keys go, so the devices that had it are refused from now on too."""
    log.warning("gift %s… is in Redis but not in SQL (its giver was deleted): its keys dropped", nonce[:6])
    with contextlib.suppress(RedisUnavailable):  # refused here all the same; the next new device drops them
        store.forget_links(site_id, [nonce])
    return _remember((token,), "invalid")


def _read(site_id: int, token: str, article_id: str, device: str | None, record: bool) -> str | None:
    nonce = links.nonce_of(site_id, token)
    if nonce is None:
        return "invalid"
    known = _known.get((token,)) or _known.get((token, article_id))
    if known is None and device is not None:
        known = _known.get((token, device))
    if known is not None:
        return known
    if device is None:
        return "invalid"  # nobody to count as a device: the gift cannot be limited, so it is not used
    device_hash = hash64(device)
    keys = [redis_keys.gift_state(site_id, nonce), redis_keys.gift_devices(site_id, nonce)]
    argv = [
        int(clock.now().timestamp()),
        hash64(article_id),
        device_hash,
        "1" if record else "0",
        b"",
        b"",
        store.KEY_GRACE,
    ]
    redis = conn()
    try:
        code, _devices = redis.run_script("gift", keys, argv)
        if code == "need_gift":
            try:
                loaded = store.load(site_id, token)
            except SQLAlchemyError:
                db.session.rollback()
                log.warning("gift %s… not judged: Redis lacks it and the database failed", nonce[:6], exc_info=True)
                return None
            if loaded is None:
                return _remember((token,), "invalid")
            argv[4], argv[5] = loaded
            code, _devices = redis.run_script("gift", keys, argv)
    except RedisUnavailable as exc:
        log.debug("gift not judged, Redis unavailable: %s", exc)  # the outage itself: once, in redis_conn
        return None
    if code == "gift_new":
        try:
            if not store.record_opening(site_id, token, device_hash):
                return _gone(site_id, token, nonce)
        except SQLAlchemyError:
            db.session.rollback()
            log.exception("a device of gift %s… kept in Redis only: the database write failed", nonce[:6])
        return "gift_new"
    if code in ("expired", "revoked"):
        return _remember((token,), code)
    if code == "invalid":
        return _remember((token, article_id), code)
    if code == "device_limit":
        return _remember((token, device), code)
    return "gift"
