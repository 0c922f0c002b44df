"""A started sign-in's state: kept in Redis, used once, and only by the browser that started it.

What the callback needs (PKCE's code verifier, the nonce, the redirect URI, where to return) never
travels through the browser: the browser carries only the `state` (in the provider's URL) and a
random binding value (a cookie). `take` reads and deletes the entry in one command (GETDEL), so of two
callbacks with one state exactly one finds it, and a replayed callback finds nothing; the entry
answers only to the browser whose binding cookie matches (a login CSRF, where an attacker sends a
victim the callback of the attacker's own account, finds nothing either).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from flask import current_app

from meter.platform import redis_keys
from meter.platform.redis_conn import RedisUnavailable, conn

STATE_MAX = 256  # Authlib's states are 30 characters; anything longer is not one of ours


class StateUnavailable(Exception):
    """Redis is away: no sign-in can be started or finished safely just now."""


def new_binding() -> str:
    return secrets.token_urlsafe(32)


def _digest(binding: str) -> str:
    return hashlib.sha256(binding.encode("utf-8")).hexdigest()


def save(site_id: int, provider: str, state: str, data: dict[str, Any], binding: str) -> None:
    record = json.dumps({"data": data, "bind": _digest(binding)})
    try:
        conn().call(
            conn().client.set,
            redis_keys.social_state(site_id, provider, state),
            record,
            ex=current_app.config["SOCIAL_STATE_TTL"],
        )
    except RedisUnavailable:
        raise StateUnavailable() from None


def take(site_id: int, provider: str, state: Any, binding: str | None) -> dict[str, Any] | None:
    """The data saved under `state` for this browser, now deleted; None when unknown, used or not this browser's."""
    if not isinstance(state, str) or not state or len(state) > STATE_MAX:
        return None
    try:
        raw = conn().call(conn().client.getdel, redis_keys.social_state(site_id, provider, state))
    except RedisUnavailable:
        raise StateUnavailable() from None
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    expected = record.get("bind") if isinstance(record, dict) else None
    if not isinstance(expected, str) or not binding or not hmac.compare_digest(expected, _digest(binding)):
        return None
    data = record.get("data")
    return data if isinstance(data, dict) else None
