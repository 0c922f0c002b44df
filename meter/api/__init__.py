"""The JSON API under /v1: server-to-server calls authenticated by the site's API key."""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, g, request

from .. import sites
from ..extensions import csrf
from ..problems import Problem

bp = Blueprint("api", __name__, url_prefix="/v1")


@bp.before_request
def authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    site = sites.for_api_key(key.strip()) if hmac.compare_digest(scheme.lower(), "bearer") else None
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
    from . import access, accounts, readers  # noqa: F401  (routes register on import)

    csrf.exempt(bp)  # API keys, not cookies, authenticate these calls
    app.register_blueprint(bp)
