"""The JSON API under /v1: server-to-server calls authenticated by the site's API key."""

from __future__ import annotations

from flask import Blueprint, Flask, g, request

from meter.web import auth
from meter.web.csrf import csrf

bp = Blueprint("api", __name__, url_prefix="/v1")


@bp.before_request
def authenticate() -> None:
    g.site = auth.site_or_401(request.headers.get("Authorization", ""))


def init_app(app: Flask) -> None:
    from meter.web.api import accounts, gifts, me, readers, stats  # noqa: F401  (routes register on import)

    csrf.exempt(bp)  # API keys, not cookies, authenticate these calls
    app.register_blueprint(bp)
