"""The second way to verify a crawler: reverse DNS, then forward DNS back to the same address.

What the search engines document: the address's PTR name must be under the operator's domain
(`crawl-66-249-66-1.googlebot.com`), and that name must resolve (A/AAAA) to the same address — a PTR
alone proves nothing, since whoever owns an address writes its PTR. Any failure is a "no" (fail
closed): a PTR elsewhere, no PTR, a name that resolves elsewhere or not at all.

It runs only for a user agent that claims a crawler from outside its operator's published ranges,
and never twice for one address: answers are kept in this process and in Redis (shared by every
process and host, under a hash of the address, not the address), a yes for YES_TTL (a day), a no for
NO_TTL (an hour). A DNS server that does not
answer is neither: that "unknown" is kept in this process for UNKNOWN_TTL only, and the crawler is
judged as an ordinary visitor meanwhile. CRAWLER_DNS_SERVER (`host` or `host:port`) names the
resolver to ask (else the system's), CRAWLER_DNS_TIMEOUT bounds the whole lookup.
"""

from __future__ import annotations

import ipaddress
import logging
import threading

import dns.exception
import dns.name
import dns.resolver
import dns.reversename
from flask import current_app

from meter.access.rules.metering.layout import hash64
from meter.platform import clock, redis_keys
from meter.platform.redis_conn import RedisUnavailable, conn

log = logging.getLogger(__name__)

YES_TTL = 86400
NO_TTL = 3600
UNKNOWN_TTL = 60
MAX_NAMES = 4  # PTR names looked at: a real crawler has one

_cache: dict[tuple[str, str], tuple[bool, float]] = {}  # (operator, ip) → (verified, until epoch)
_locks: dict[tuple[str, str], threading.Lock] = {}
_guard = threading.Lock()


def verified(operator: str, ip: str, suffixes: tuple[str, ...]) -> bool:
    """Whether `ip` is `operator`'s crawler by its DNS names (cached; see the module's docstring)."""
    if not suffixes:
        return False
    key = (operator, ip)
    hit = _cached(key)
    if hit is not None:
        return hit
    with _lock_for(key):  # one lookup per address at a time in this process; the others wait for it
        hit = _cached(key)
        if hit is not None:
            return hit
        shared = _from_redis(operator, ip)
        if shared is not None:
            _keep(key, shared, YES_TTL if shared else NO_TTL)
            return shared
        answer = _lookup(ip, suffixes)
        if answer is None:
            _keep(key, False, UNKNOWN_TTL)
            return False
        _keep(key, answer, YES_TTL if answer else NO_TTL)
        _to_redis(operator, ip, answer)
        return answer


def _cached(key: tuple[str, str]) -> bool | None:
    hit = _cache.get(key)
    if hit is not None and hit[1] > clock.now().timestamp():
        return hit[0]
    return None


def _keep(key: tuple[str, str], answer: bool, ttl: int) -> None:
    if len(_cache) > 50_000:
        _cache.clear()
    _cache[key] = (answer, clock.now().timestamp() + ttl)


def _lock_for(key: tuple[str, str]) -> threading.Lock:
    with _guard:
        lock = _locks.get(key)
        if lock is None:
            if len(_locks) > 10_000:
                _locks.clear()
            lock = _locks[key] = threading.Lock()
        return lock


def _from_redis(operator: str, ip: str) -> bool | None:
    redis = conn()
    try:
        value = redis.call(redis.client.get, redis_keys.crawler_dns(operator, hash64(ip).hex()))
    except RedisUnavailable:
        return None
    return None if value is None else value == "1"


def _to_redis(operator: str, ip: str, answer: bool) -> None:
    redis = conn()
    try:
        key = redis_keys.crawler_dns(operator, hash64(ip).hex())
        redis.call(redis.client.set, key, "1" if answer else "0", ex=YES_TTL if answer else NO_TTL)
    except RedisUnavailable:
        log.info("a %s crawler's DNS answer kept in this process only: Redis unreachable", operator)


def resolver() -> dns.resolver.Resolver:
    config = current_app.config
    server = (config.get("CRAWLER_DNS_SERVER") or "").strip()
    if server:
        host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
        made = dns.resolver.Resolver(configure=False)
        made.nameservers = [host or server]
        made.port = int(port) if port else 53
    else:
        made = dns.resolver.Resolver()
    made.lifetime = made.timeout = float(config.get("CRAWLER_DNS_TIMEOUT", 2.0))
    return made


def _under(name: str, suffixes: tuple[str, ...]) -> bool:
    name = name.rstrip(".").lower()
    return any(name.endswith("." + suffix) for suffix in suffixes)


def _lookup(ip: str, suffixes: tuple[str, ...]) -> bool | None:
    """True or False as DNS says; None when DNS could not answer (timeout, no server)."""
    address = ipaddress.ip_address(ip)
    ask = resolver()
    # (Addresses stay out of the logs: a client that claims a crawler may be a reader with a changed User-Agent.)
    try:
        names = [str(r.target) for r in ask.resolve(dns.reversename.from_address(ip), "PTR")][:MAX_NAMES]
        for name in names:
            if not _under(name, suffixes):
                continue
            try:
                forward = ask.resolve(dns.name.from_text(name), "AAAA" if address.version == 6 else "A")
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            if any(ipaddress.ip_address(r.address) == address for r in forward):
                return True
        return False
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return False
    except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout, OSError) as exc:
        log.warning("a crawler's DNS check was not answered: %s", type(exc).__name__)
        return None
    except dns.exception.DNSException as exc:
        log.warning("a crawler's DNS check failed: %s", type(exc).__name__)
        return None
