"""Where an AMP page of a site may be served from, and where AMP's login flow may return to.

An AMP page reaches meter from the site's own origins, from an AMP cache's subdomain of them (the
cache's documented encoding of the host), or inside an AMP viewer. The access routes check a request's
Origin against these (`meter.access.views.amp`); the login pages check the `return` of a login that
AMP's login flow opened, before they link its reader id (`meter.access.rules.amp_readers`).
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from urllib.parse import urlsplit

from meter.sites import SiteInfo, normalise_origin

AMP_CACHES = ("cdn.ampproject.org", "bing-amp.com")
# Where AMP's login flow returns (its `return`, the runtime's amp-login-done page), besides the site's
# origins and their cache subdomains (a runtime served from there).
AMP_VIEWERS = frozenset({"https://cdn.ampproject.org"})


def cache_label(host: str) -> str:
    """The AMP cache's subdomain for a publisher's host: `www.tempo.co` → `www-tempo-co`.

    The cache's documented encoding: punycode-decode, "-" → "--", "." → "-", wrap in "0-…-0" when
    the third and fourth characters are "--", punycode-encode; when that is no valid DNS label (over
    63 characters), the lower-case base32 of the host's SHA-256.
    """
    try:
        label = host.encode("ascii").decode("idna").replace("-", "--").replace(".", "-")
        if label[2:4] == "--":
            label = f"0-{label}-0"
        encoded = label.encode("idna").decode("ascii")
        if len(encoded) <= 63:
            return encoded
    except UnicodeError:
        pass
    return base64.b32encode(hashlib.sha256(host.encode()).digest()).decode().rstrip("=").lower()


def cache_origins(site: SiteInfo) -> frozenset[str]:
    """The AMP cache origins that may serve this site's AMP pages (https origins on the default port)."""
    return _cache_origins(site.origins)


@lru_cache(maxsize=1024)
def _cache_origins(origins: tuple[str, ...]) -> frozenset[str]:
    found = set()
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme == "https" and parts.port is None and parts.hostname:
            label = cache_label(parts.hostname)
            found.update(f"https://{label}.{cache}" for cache in AMP_CACHES)
    return frozenset(found)


def login_return(site: SiteInfo, url: str | None) -> str | None:
    """AMP's `return` (RETURN_URL) of a login or logout its login flow opened, when it is an absolute
    URL on an AMP viewer, a cache subdomain of the site (both https) or one of the site's origins; else None.

    Only such a login links its AMP reader id (`meter.access.rules.amp_readers`), and only there does the
    page return with `#success=true`: a plain `/login?rid=…` someone else made links nothing.
    """
    if not url or len(url) > 2048 or any(ch in url for ch in "\r\n\\#") or not url.startswith(("https://", "http://")):
        return None
    origin = normalise_origin(url)
    if origin is None or not (origin in AMP_VIEWERS or origin in site.origins or origin in cache_origins(site)):
        return None
    return url
