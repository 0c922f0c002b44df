"""Which site a request is for: a server-to-server call names it by its API key (`Authorization:
Bearer <key>`, the JSON API's blueprints, made here so that none goes without the check); a reader
page names it by the slug in its path, and an unknown slug is the reader's 404 page."""

from __future__ import annotations

from flask import Blueprint, abort, g, request

from meter.platform.csrf import csrf
from meter.platform.problems import Problem
from meter.sites.rules import sites

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


def api_blueprint(name: str, import_name: str) -> Blueprint:
    """A feature's part of the JSON API under /v1, every call of which names its site by API key.

    Each feature owns its blueprint; they all come from here, so that none can be made without the
    key check (a blueprint that forgot it would answer without a site, or for anyone). API keys, not
    cookies, authenticate these calls: the blueprint is exempt from CSRF.
    """
    bp = Blueprint(name, import_name, url_prefix="/v1")

    @bp.before_request
    def authenticate() -> None:
        g.site = site_or_401(request.headers.get("Authorization", ""))

    csrf.exempt(bp)
    return bp


def site_page_or_404(slug: str) -> sites.SiteInfo:
    """The site a reader page names in its URL; the 404 page for an unknown slug."""
    site = sites.by_slug(slug)
    if site is None:
        abort(404)
    return sites.info(site)


def site_by_slug(slug: str) -> sites.SiteInfo | None:
    """The site of a slug, for the error pages' look (None for none)."""
    found = sites.by_slug(slug)
    return sites.info(found) if found is not None else None
