"""AMP reader ids linked to logins: after a reader logs in through the pages with `?rid=`, the AMP
endpoints count that rid's views against the reader (and see their subscription).

The link is kept in Redis as "reader_id:session_id" beside the rid's own meter (the same hash-tag
slot), so the access check's one script finds it while judging the rid: no extra round trip.
Logging out (revoking the session) ends it on the next check, which then judges the rid as
anonymous and drops the link. A process keeps the links it has seen for a minute, so a linked
rid's steady state is one call as well; a rid linked to another reader within that minute is
seen within it. Each reader's linked rids are also listed under the reader (`redis_keys.amp_links_of`),
for the reader's export and deletion (`links_of`, `unlink_reader`).
"""

from __future__ import annotations

import contextlib
import threading
import time

from flask import current_app

from meter.domain.accounts.sessions import check_token
from meter.domain.identifiers import is_anonymous_id
from meter.domain.metering.layout import anonymous_subject, place
from meter.domain.sites import SiteInfo
from meter.infra import redis_keys
from meter.infra.redis_conn import RedisUnavailable, conn

CACHE_SECONDS = 60.0
CACHE_SIZE = 100_000

_lock = threading.Lock()
_seen: dict[tuple[int, str], tuple[float, int, str]] = {}


def key(site_id: int, rid: str) -> str:
    count = current_app.config["METER_BUCKETS"]
    bucket, _ = place(anonymous_subject(rid), count)
    return redis_keys.amp_link(site_id, bucket, count, rid)


def link(site: SiteInfo, rid: str, reader_token: str) -> bool:
    check = check_token(site, reader_token)
    if check.status != "valid" or not is_anonymous_id(rid):
        return False
    lifetime = current_app.config["READER_TOKEN_MAX_AGE"]
    listed = redis_keys.amp_links_of(site.id, check.reader_id)
    try:
        conn().call(conn().client.set, key(site.id, rid), f"{check.reader_id}:{check.session_id}", ex=lifetime)
        conn().call(conn().client.sadd, listed, rid)
        conn().call(conn().client.expire, listed, lifetime)
    except RedisUnavailable:
        return False
    remember(site.id, rid, check.reader_id, check.session_id)
    return True


def parse(value: str) -> tuple[int, str] | None:
    reader_id, _, sid = (value or "").partition(":")
    return (int(reader_id), sid) if reader_id.isdigit() and sid else None


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
