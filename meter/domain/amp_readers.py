"""AMP reader ids linked to logins: after a reader logs in through the pages with `?rid=`, the AMP
endpoints count that rid's views against the reader (and see their subscription).

The link is kept in Redis as "reader_id:session_id", so logging out (revoking the session) ends it
on the next check: the meter then judges the rid as anonymous. It lives as long as a reader token.
"""

from __future__ import annotations

import re

from flask import current_app

from meter.domain.accounts.sessions import check_token
from meter.domain.sites import SiteInfo
from meter.infra import redis_keys
from meter.infra.redis_conn import RedisUnavailable, conn

RID_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")  # the anonymous_id shape; AMP's READER_ID fits it


def link(site: SiteInfo, rid: str, reader_token: str) -> bool:
    check = check_token(site, reader_token)
    if check.status != "valid" or not RID_RE.match(rid):
        return False
    try:
        conn().call(
            conn().client.set,
            redis_keys.amp_reader(site.id, rid),
            f"{check.reader_id}:{check.session_id}",
            ex=current_app.config["READER_TOKEN_MAX_AGE"],
        )
    except RedisUnavailable:
        return False
    return True


def reader_of(site: SiteInfo, rid: str) -> tuple[int, str] | None:
    """(reader_id, session_id) linked to this rid, or None (anonymous, or Redis unreachable)."""
    try:
        value = conn().call(conn().client.get, redis_keys.amp_reader(site.id, rid))
    except RedisUnavailable:
        return None
    reader_id, _, sid = (value or "").partition(":")
    return (int(reader_id), sid) if reader_id.isdigit() and sid else None
