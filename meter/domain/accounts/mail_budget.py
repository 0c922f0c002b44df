"""How often a reader's address may be sent an activation mail: a cool-down between two mails, kept in Redis."""

from __future__ import annotations

import time

from meter.domain.sites import SiteInfo
from meter.infra import redis_keys
from meter.infra.redis_conn import RedisUnavailable, conn

RESEND_COOL_DOWN = 60  # seconds between two activation mails to one address (page, embed)


def cool_down(site: SiteInfo, email_key: str, seconds: int) -> int:
    """Seconds still to wait before another activation mail to this address (0: go, and start the clock).

    Kept in Redis so it holds across browsers; without Redis the caller's own clock (the session) decides.
    """
    key = redis_keys.resend_cool_down(site.id, email_key)
    try:
        if conn().call(conn().client.set, key, str(int(time.time())), nx=True, ex=seconds):
            return 0
        ttl = conn().call(conn().client.ttl, key)
    except RedisUnavailable:
        return 0
    return max(int(ttl or 0), 1)
