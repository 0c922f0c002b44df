"""Which site a server-to-server call is for: the site's API key, `Authorization: Bearer <key>`."""

from __future__ import annotations

from meter.domain import sites
from meter.web.problems import Problem

UNAUTHORIZED = Problem(
    401,
    "unauthorized",
    "Unauthorized",
    "A valid site API key is required: Authorization: Bearer <key>.",
    headers={"WWW-Authenticate": 'Bearer realm="meter"'},
)


def site_for(authorization: str) -> sites.SiteInfo | None:
    """The site whose API key an Authorization header carries (`Bearer <key>`), or None."""
    scheme, _, key = authorization.partition(" ")
    # The scheme is no secret (a plain comparison; compare_digest raises on non-ASCII text).
    return sites.for_api_key(key.strip()) if scheme.lower() == "bearer" else None


def site_or_401(authorization: str) -> sites.SiteInfo:
    site = site_for(authorization)
    if site is None:
        raise UNAUTHORIZED
    return site
