"""The JSON API under /v1: server-to-server calls authenticated by the site's API key."""

from __future__ import annotations

from flask import Blueprint, Flask, g, request

from meter.domain import sites
from meter.web.csrf import csrf
from meter.web.problems import Problem

bp = Blueprint("api", __name__, url_prefix="/v1")


def site_for(authorization: str) -> sites.SiteInfo | None:
    """The site whose API key an Authorization header carries (`Bearer <key>`), or None."""
    scheme, _, key = authorization.partition(" ")
    # The scheme is no secret (a plain comparison; compare_digest raises on non-ASCII text).
    return sites.for_api_key(key.strip()) if scheme.lower() == "bearer" else None


@bp.before_request
def authenticate() -> None:
    site = site_for(request.headers.get("Authorization", ""))
    if site is None:
        raise Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "A valid site API key is required: Authorization: Bearer <key>.",
            headers={"WWW-Authenticate": 'Bearer realm="meter"'},
        )
    g.site = site


def init_app(app: Flask) -> None:
    from meter.web.api import access, accounts, readers  # noqa: F401  (routes register on import)

    csrf.exempt(bp)  # API keys, not cookies, authenticate these calls
    app.register_blueprint(bp)
    from meter.web.hot import AccessFastPath

    app.wsgi_app = AccessFastPath(app, app.wsgi_app)  # type: ignore[method-assign]
