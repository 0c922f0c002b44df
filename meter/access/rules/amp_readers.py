"""AMP reader ids linked to logins: a login that AMP's login flow opened with `?rid=` makes the rid a
session of the reader's account, so the AMP endpoints count its views against the reader (and see
their subscription).

The web layer asks for a link only when AMP's own login flow started the login (its `return` on an
AMP viewer or the site's origins, `meter.access.rules.amp_origins.login_return`): a `/login?rid=…` link someone
else made links nothing. Each link is a session row of its own (id `amp-…`, with the device that
logged in), so it is listed on the account page and ends as sessions do: from that page, by a
password change or reset, by "end all other sessions", by AMP's sign-out; an account keeps at most
the site's `amp_links_max` of them, the oldest ended first.

The link is kept in Redis as "reader_id:session_id" beside the rid's own meter (the same hash-tag
slot), so the access check's one script finds it while judging the rid: no extra round trip. An
ended session is judged revoked on the next check, which then judges the rid as anonymous and
drops the link. A process keeps the links it has seen for a minute, so a linked rid's steady state
is one call as well; a rid linked to another reader within that minute is seen within it. Each
reader's linked rids are also listed under the reader (`redis_keys.amp_links_of`), for the reader's
export and deletion (`links_of`, `unlink_reader`).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time

from flask import current_app

from meter.access.rules.metering.layout import anonymous_subject, place
from meter.accounts import sessions
from meter.accounts.models import Reader
from meter.platform import redis_keys
from meter.platform.identifiers import is_anonymous_id
from meter.platform.redis_conn import RedisUnavailable, conn
from meter.sites import SiteInfo

CACHE_SECONDS = 60.0
CACHE_SIZE = 100_000
SESSION_PREFIX = "amp-"  # an AMP link's session id (a token's session id is hex: never this)

_lock = threading.Lock()
_seen: dict[tuple[int, str], tuple[float, int, str]] = {}


def key(site_id: int, rid: str) -> str:
    count = current_app.config["METER_BUCKETS"]
    bucket, _ = place(anonymous_subject(rid), count)
    return redis_keys.amp_link(site_id, bucket, count, rid)


def is_amp_session(sid: str) -> bool:
    return sid.startswith(SESSION_PREFIX)


def link(site: SiteInfo, rid: str, reader: Reader, *, device: str | None = None) -> bool:
    """Link the rid to the reader as a new AMP session of theirs (the session the rid stood for before,
    if any, ends: a rid is one device); the oldest of the reader's AMP sessions beyond the site's
    `amp_links_max` end. False when nothing was linked (a bad rid, none allowed, Redis away)."""
    if not is_anonymous_id(rid) or site.amp_links_max < 1 or reader.site_id != site.id:
        return False
    lifetime = current_app.config["READER_TOKEN_MAX_AGE"]
    listed = redis_keys.amp_links_of(site.id, reader.id)
    redis = conn()
    sid = SESSION_PREFIX + secrets.token_hex(14)
    try:
        before = parse(redis.call(redis.client.get, key(site.id, rid)) or "")
        sessions.open_session(reader.id, sid, device=device)
        redis.call(redis.client.set, key(site.id, rid), f"{reader.id}:{sid}", ex=lifetime)
        redis.call(redis.client.sadd, listed, rid)
        redis.call(redis.client.expire, listed, lifetime)
    except RedisUnavailable:
        sessions.end_sessions(site.id, reader.id, [sid])  # (a row the rid does not name would be listed)
        return False
    if before is not None and is_amp_session(before[1]):
        sessions.end_sessions(site.id, before[0], [before[1]])
    amp = [row for row in sessions.live_sessions(reader) if is_amp_session(row.id)]
    amp.sort(key=lambda row: row.created_at, reverse=True)
    sessions.end_sessions(site.id, reader.id, [row.id for row in amp[site.amp_links_max :]])
    remember(site.id, rid, reader.id, sid)
    return True


def unlink(site: SiteInfo, rid: str, reader_id: int) -> bool:
    """AMP's sign-out: end the rid's session when it is this reader's (a rid linked to someone else is
    theirs to end). False when there was none; raise RedisUnavailable."""
    linked = parse(conn().call(conn().client.get, key(site.id, rid)) or "")
    if linked is None or linked[0] != reader_id or not is_amp_session(linked[1]):
        return False
    sessions.end_sessions(site.id, reader_id, [linked[1]])
    forget(site.id, rid)
    return True


def parse(value: str) -> tuple[int, str] | None:
    reader_id, _, sid = (value or "").partition(":")
    return (int(reader_id), sid) if reader_id.isdigit() and sid else None


def session_of(value: str) -> tuple[int, str] | None:
    """(reader id, AMP session id) of a link the check found; None for a link that names no AMP session
    (one made before links were sessions of their own, by any `?rid=`): judged anonymous, and dropped."""
    linked = parse(value)
    return linked if linked is not None and is_amp_session(linked[1]) else None


def remember(site_id: int, rid: str, reader_id: int, session_id: str) -> None:
    with _lock:
        if len(_seen) >= CACHE_SIZE:
            _seen.clear()
        _seen[(site_id, rid)] = (time.monotonic() + CACHE_SECONDS, reader_id, session_id)


def seen(site_id: int, rid: str) -> tuple[int, str] | None:
    """The reader this process last saw linked to the rid, within the last minute."""
    hit = _seen.get((site_id, rid))
    if hit is None or hit[0] < time.monotonic():
        return None
    return hit[1], hit[2]


def forget(site_id: int, rid: str) -> None:
    """The linked session is gone: drop the link (best effort; a stale one is judged revoked again)."""
    with _lock:
        _seen.pop((site_id, rid), None)
    with contextlib.suppress(RedisUnavailable):
        conn().call(conn().client.delete, key(site_id, rid))


def links_of(site_id: int, reader_id: int) -> list[tuple[str, str]]:
    """(rid, session id) of every AMP reader id still linked to this reader; raise RedisUnavailable."""
    rids = sorted(conn().call(conn().client.smembers, redis_keys.amp_links_of(site_id, reader_id)) or ())
    found = []
    for rid in rids:
        linked = parse(conn().call(conn().client.get, key(site_id, rid)) or "")
        if linked is not None and linked[0] == reader_id:  # a rid linked to someone else since is theirs
            found.append((rid, linked[1]))
    return found


def unlink_reader(site_id: int, reader_id: int) -> int:
    """Drop every AMP link of this reader (and the list of them); returns how many; raise RedisUnavailable."""
    links = links_of(site_id, reader_id)
    for rid, _sid in links:
        with _lock:
            _seen.pop((site_id, rid), None)
        conn().call(conn().client.delete, key(site_id, rid))
    conn().call(conn().client.delete, redis_keys.amp_links_of(site_id, reader_id))
    return len(links)
