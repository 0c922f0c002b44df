"""Sites and their API keys.

A key is shown once; only its SHA-256 is stored (a key is 256 random bits, so a fast hash is
enough). Lookups are cached per process for SITE_CACHE_TTL seconds so the access check does no SQL.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from meter.platform import clock, hosts
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites.models import ApiKey, GrantKey, Site
from meter.sites.rules.policy import Policy, normalise

log = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEFAULT_COLOUR = "#b00"
RESERVED_SLUGS = frozenset({"console"})  # /console/ is the publisher console, not a site's reader pages
AMP_LINKS_MAX = 5  # the default of the site setting `amp_links_max`
GRANT_LIFETIME = 60  # the default of the site setting `grant_lifetime` (seconds)
GRANT_KEY_AHEAD = 120  # seconds a rotated-in grant key is published before it signs (`signing_grant_key`)
KEY_PREFIX_LEN = 12  # "mk_" + 9 characters; enough to find the row, useless to an attacker


@dataclass(frozen=True)
class SiteInfo:
    """What the hot path needs of a site, detached from the database session."""

    id: int
    slug: str
    name: str
    origins: tuple[str, ...]
    policy: Policy
    locale: str
    colour: str = DEFAULT_COLOUR  # the pages' and walls' accent colour (site settings)
    subscribe_url: str | None = None  # where the subscribe wall sends readers (site settings)
    premium_name: str | None = None  # the subscriber-only section, named on walls and in mails (Tempo: "Laporan Utama")
    signed_articles: bool = False  # the embed and AMP trust an article's class only when the publisher signed it
    amp_counts_on: str = "pingback"  # or "authorization": AMP views count when authorized, pingback or not
    article_keys: tuple[tuple[str, str], ...] = ()  # (kid, secret) of the live signing keys (article_signing)
    # (name, kind, label) of each sign-in provider, for the buttons; their secrets stay in meter.social.rules.
    login_providers: tuple[tuple[str, str, str], ...] = ()
    mail_from: str | None = None  # "Name <address>" or an address: the From of its mails (see `mail_sender`)
    reply_to: str | None = None  # where replies to its mails go (else to the sender)
    support_url: str | None = None  # where its readers get help (http(s) or mailto), named in every mail
    amp_links_max: int = AMP_LINKS_MAX  # AMP reader ids one account may have linked (its AMP sessions)
    # (kid, alg, sealed private PEM) of the key that signs the site's grants (meter.access.rules.grants), or None.
    grant_key: tuple[str, str, str] | None = None
    grants_api: bool = False  # every allowed, counted answer of /v1/access carries a grant (setting `grants`)
    content_protection: bool = False  # the embed's answers carry grants, meter.js fetches the body with one
    grant_lifetime: int = GRANT_LIFETIME  # seconds a grant is valid (setting `grant_lifetime`)


def info(site: Site) -> SiteInfo:
    settings = site.settings or {}
    return SiteInfo(
        site.id,
        site.slug,
        site.name,
        tuple(site.origins or ()),
        Policy.from_dict(site.policy),
        site.locale,
        settings.get("colour") or DEFAULT_COLOUR,
        settings.get("subscribe_url"),
        settings.get("premium_name") or None,
        settings.get("signed_articles") == "required",
        settings.get("amp_counts_on") or "pingback",
        tuple((key.kid, key.secret) for key in site.article_keys if key.revoked_at is None),
        tuple((p.name, p.kind, p.label) for p in site.login_providers),
        mail_from=settings.get("mail_from") or None,
        reply_to=settings.get("reply_to") or None,
        support_url=settings.get("support_url") or None,
        amp_links_max=_count(settings.get("amp_links_max"), AMP_LINKS_MAX),
        grant_key=_grant_key(site),
        grants_api=settings.get("grants") == "on",
        content_protection=settings.get("content_protection") == "on",
        grant_lifetime=_count(settings.get("grant_lifetime"), GRANT_LIFETIME) or GRANT_LIFETIME,
    )


def _grant_key(site: Site) -> tuple[str, str, str] | None:
    key = signing_grant_key(site)
    return (key.kid, key.alg, key.private_key) if key is not None else None


def signing_grant_key(site: Site) -> GrantKey | None:
    """The key that signs the site's grants now, kept sealed here (meter.access.rules.grants signs).

    A key made by a rotation is published GRANT_KEY_AHEAD seconds before it signs: until then the key
    it replaces signs on. Why: a verifier that fetched the JWK Set a moment before the rotation would
    refuse a new kid until it may fetch again (PyJWKClient waits 30 s between such fetches, an HTTP
    cache up to the set's max-age). So: the newest live key that has been published that long, else
    the oldest live key (a site's first key signs at once)."""
    now = utcnow()
    live = sorted(
        (key for key in site.grant_keys if key.retired_at is None or key.retired_at > now), key=lambda k: k.id
    )
    cutoff = now - timedelta(seconds=GRANT_KEY_AHEAD)
    ready = [key for n, key in enumerate(live) if n == 0 or key.created_at <= cutoff]
    return ready[-1] if ready else None


def _count(value: Any, default: int) -> int:
    """A whole-number setting as stored (the command line checks it); anything else is the default."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def mail_sender(site: SiteInfo) -> str:
    """The From of the site's mails: its `mail_from` setting, else the site's name with the address of
    MAIL_DEFAULT_SENDER; a setting of an address alone gets the site's name. Why: every mail is
    signed with the site's name, and one sender for all sites ("meter <no-reply@…>") told readers
    nothing; the address stays the operator's unless a site's own domain is set up to send."""
    name, address = parseaddr(site.mail_from or "")
    if not address:
        address = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]
    return str(Address(display_name=name or site.name, addr_spec=address))


@lru_cache(maxsize=1024)  # the embed checks every request's Origin; a site has a handful
def normalise_origin(url: str) -> str | None:
    """`https://Example.com/path` → `https://example.com`; None when it is not an http(s) origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


ORIGIN_FORM = "an origin is http(s)://host[:port]: no path, query, user, spaces"


def check_origin(url: str) -> str:
    """An origin as an operator configures one (the command line, the console): scheme://host[:port]
    and nothing else, kept as a browser sends it in Origin (lower case, an international name in its
    xn-- form, no default port). ValueError says what is wrong. Why strict: an origin is compared with
    the Origin header as text, so anything a browser never sends (a space, a path, a user) only makes
    an entry that can never match, or reads as another host than the one meant."""
    shown = repr(url[:100]) if isinstance(url, str) else "?"
    if not isinstance(url, str) or len(url) > 2048:
        raise ValueError(f"not an origin: {shown}")
    url = url.strip()
    if any(ch.isspace() or ch < " " or ch == "\x7f" or ch in "\\?#@" for ch in url):
        raise ValueError(f"not an origin: {shown} ({ORIGIN_FORM})")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"not an origin: {shown} ({ORIGIN_FORM})") from None
    if parts.scheme not in ("http", "https") or parts.path not in ("", "/") or parts.netloc.endswith(":"):
        raise ValueError(f"not an origin: {shown} ({ORIGIN_FORM})")
    host = hosts.ascii_host(parts.hostname or "")
    if host is None or port == 0:
        raise ValueError(f"not an origin: {shown} (not a host name or address)")
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key(site: Site) -> str:
    """Create an API key for `site` and return it; it cannot be read back later."""
    key = "mk_" + secrets.token_urlsafe(32).replace("-", "x").replace("_", "y")
    db.session.add(ApiKey(site=site, prefix=key[:KEY_PREFIX_LEN], key_hash=_hash_key(key)))
    return key


def create_site(
    slug: str, name: str, origins: list[str], locale: str = "id", policy: dict | None = None
) -> tuple[Site, str]:
    if not SLUG_RE.match(slug):
        raise ValueError("slug must be lower-case letters, digits and dashes (at most 63)")
    if slug in RESERVED_SLUGS:
        raise ValueError(f"{slug!r} is taken by meter itself (/{slug}/): choose another slug")
    if not name.strip() or len(name) > 200 or any(ch < " " or ch == "\x7f" for ch in name):
        raise ValueError("name must be 1 to 200 printable characters")
    if db.session.scalar(db.select(Site).filter_by(slug=slug)):
        raise ValueError(f"site {slug!r} already exists")
    clean = [check_origin(origin) for origin in origins]
    if locale not in ("id", "en"):
        raise ValueError("locale must be id or en")
    site = Site(slug=slug, name=name, origins=clean, policy=normalise(policy or {}), locale=locale)
    db.session.add(site)
    key = new_key(site)
    db.session.commit()
    return site, key


def by_slug(slug: str) -> Site | None:
    """The site row (for changes: commands, the console); the hot paths use `info_by_slug`."""
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        return None
    return db.session.scalar(db.select(Site).filter_by(slug=slug))


def info_by_slug(slug: str) -> SiteInfo | None:
    """The site a browser or AMP route names in its URL, cached per process like API keys (no SQL per check)."""
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        return None

    def load() -> SiteInfo | None:
        row = by_slug(slug)
        return info(row) if row is not None else None

    return _cache.get("slug:" + slug, current_app.config["SITE_CACHE_TTL"], load)


class Cache:
    """A per-process cache with a time to live, which keeps serving what it had while the database is away."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, Any]] = {}

    def get(self, key: str, ttl: float, load: Callable[[], Any]) -> Any:
        now = clock.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit and now - hit[0] < ttl:
            return hit[1]
        try:
            value = load()
        except SQLAlchemyError:
            if hit is None:
                raise
            # The database is away: a site we knew keeps answering (its key was valid a moment ago);
            # a revocation made during the outage takes effect when the database is back.
            db.session.rollback()
            log.warning("database unavailable; serving a stale cached site entry")
            return hit[1]
        if ttl > 0:
            with self._lock:
                if len(self._items) > 10_000:
                    self._items.clear()
                self._items[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = Cache()


def for_api_key(key: str) -> SiteInfo | None:
    if not key.startswith("mk_") or len(key) > 200:
        return None
    digest = _hash_key(key)

    def load() -> SiteInfo | None:
        row = db.session.scalar(db.select(ApiKey).filter_by(prefix=key[:KEY_PREFIX_LEN], revoked_at=None))
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        return info(row.site)

    return _cache.get(digest, current_app.config["SITE_CACHE_TTL"], load)


def revoke_key(site: Site, prefix: str) -> int:
    rows = db.session.scalars(db.select(ApiKey).filter_by(site_id=site.id, revoked_at=None)).all()
    probe = prefix[:KEY_PREFIX_LEN]  # only the first KEY_PREFIX_LEN characters are stored; a whole key works too
    hits = [row for row in rows if len(prefix) >= 6 and row.prefix.startswith(probe)]
    if len(hits) != 1:
        return len(hits)
    hits[0].revoked_at = utcnow()
    db.session.commit()
    _cache.clear()
    return 1


def cached(key: str, load: Callable[[], Any]) -> Any:
    """`load()`, kept per process for SITE_CACHE_TTL like the sites themselves (`forget_cached` drops it too)."""
    return _cache.get(key, current_app.config["SITE_CACHE_TTL"], load)


def forget_cached() -> None:
    _cache.clear()
