"""How often one address may be mailed on one site: one budget across every path that mails it.

Why: each path had its own guard or none, so 19 registrations of one address put 20 activation
mails in its inbox, and the pages and the embed had only a 60 s cool-down. Now registration (the
activation or "already registered" mail), every resend (the activation-sent page, the expired-link
form, the embed, the API) and the operator's `flask readers resend-activation` (unless `--force`)
spend from one budget per address and site: RATELIMIT_RESEND_EMAIL, "1 per 3 minutes;5 per day" by
default (the `limits` library's notation; each part a sliding window).

The budget is spent by the request, before anything else is done and whether or not the address
has an account: an unknown address costs the same and answers the same (no enumeration). A request
over budget changes nothing and is refused with the seconds to wait (`Spent`, a 429 above).

The sent mails are a sorted set in Redis (`redis_keys.mail_budget`), decided by one script so that
two requests at once cannot both take the last mail. While Redis is away, each process keeps the
budget in memory: a worker still refuses a flood by itself.
"""

from __future__ import annotations

import secrets
import threading
from importlib import resources

import limits
from flask import current_app

from meter.platform import clock, redis_keys
from meter.platform.redis_conn import RedisUnavailable, conn, register_script

register_script("mail_budget", resources.files(__package__).joinpath("mail_budget.lua"))

SETTING = "RATELIMIT_RESEND_EMAIL"
_MEMORY = "meter.mail_budget.memory"


class Spent(Exception):
    """The address's mail budget is spent; `retry_after`: seconds until another mail may go."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"mail budget spent; retry in {retry_after} s")
        self.retry_after = retry_after


def _windows() -> list[tuple[int, int]]:
    """(amount, seconds) of each part of the setting."""
    return [(item.amount, item.get_expiry()) for item in limits.parse_many(current_app.config[SETTING])]


def _seconds(wait: float) -> int:
    return max(1, int(wait + 0.999)) if wait > 0 else 0


def _memory_wait(key: str, now: float, windows: list[tuple[int, int]], spend: bool) -> float:
    """The script's rule on this process's own record (only while Redis is away)."""
    store = current_app.extensions.setdefault(_MEMORY, {"lock": threading.Lock(), "sent": {}})
    with store["lock"]:
        longest = max(seconds for _, seconds in windows)
        sent = [t for t in store["sent"].get(key, []) if t > now - longest]
        wait = 0.0
        for amount, seconds in windows:
            inside = [t for t in sent if t > now - seconds]
            if len(inside) >= amount:
                wait = max(wait, inside[len(inside) - amount] + seconds - now)
        if wait == 0 and spend:
            sent.append(now)
        store["sent"][key] = sent
        return wait


def _check(site_id: int, email_key: str, spend: bool) -> int:
    key = redis_keys.mail_budget(site_id, email_key)
    windows = _windows()
    now = clock.now().timestamp()
    args = [repr(now), "1" if spend else "0", secrets.token_hex(8)]
    for amount, seconds in windows:
        args += [str(amount), str(seconds)]
    try:
        wait = float(conn().run_script("mail_budget", [key], args))
    except RedisUnavailable:
        wait = _memory_wait(key, now, windows, spend)
    return _seconds(wait)


def spend(site_id: int, email_key: str) -> None:
    """Count one mail to this address; raise Spent (counting nothing) when the budget has none left."""
    wait = _check(site_id, email_key, spend=True)
    if wait:
        raise Spent(wait)


def wait(site_id: int, email_key: str) -> int:
    """Seconds until another mail may go to this address (0: now); spends nothing."""
    return _check(site_id, email_key, spend=False)
