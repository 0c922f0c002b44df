"""meter's own cookies in a reader's browser: the login (a reader token) and an anonymous visitor id.

Both live on meter's origin, HttpOnly, read by the reader pages, the embed's endpoint and the AMP
endpoints. The login cookie is per site (`meter_r_<slug>`), so two sites on one meter never mix.
Outside development they are `Secure; SameSite=None`, because the embed asks from the publisher's
origin (a cross-site request that must carry them); in development (plain http) they are `Lax`.
"""

from __future__ import annotations

import re
import secrets

from flask import Response, current_app, request

from meter.domain.sites import SiteInfo

ANON_COOKIE = "meter_anon"
ANON_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


def reader_cookie(site: SiteInfo) -> str:
    return f"meter_r_{site.slug}"


def _attrs() -> dict:
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    return {"httponly": True, "secure": secure, "samesite": "None" if secure else "Lax", "path": "/"}


def reader_token(site: SiteInfo) -> str | None:
    value = request.cookies.get(reader_cookie(site))
    return value if value and len(value) < 1000 else None


def set_reader_token(response: Response, site: SiteInfo, token: str) -> None:
    response.set_cookie(reader_cookie(site), token, max_age=current_app.config["READER_TOKEN_MAX_AGE"], **_attrs())


def clear_reader_token(response: Response, site: SiteInfo) -> None:
    response.delete_cookie(reader_cookie(site), **_attrs())


def anonymous_id() -> str | None:
    value = request.cookies.get(ANON_COOKIE)
    return value if value and ANON_RE.match(value) else None


def new_anonymous_id() -> str:
    return "mv-" + secrets.token_urlsafe(18)


def set_anonymous_id(response: Response, value: str) -> None:
    response.set_cookie(ANON_COOKIE, value, max_age=400 * 86400, **_attrs())
