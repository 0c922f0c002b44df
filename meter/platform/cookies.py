"""meter's own cookies in a reader's browser: the login (a reader token) and an anonymous visitor id.

Both live on meter's origin, HttpOnly, read by the reader pages, the embed's endpoint and the AMP
endpoints. The login cookie is per site (`meter_r_<slug>`), so two sites on one meter never mix.
Outside development they are `Secure; SameSite=None`, because the embed asks from the publisher's
origin (a cross-site request that must carry them); in development (plain http) they are `Lax`.
Readers take the request's cookies as a mapping, so the hot entry (no Flask request) reads them alike.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Protocol

from flask import Response, current_app, request
from werkzeug.http import dump_cookie

from meter.platform.identifiers import is_anonymous_id


class SiteInfo(Protocol):
    """What a cookie needs of a site (the sites feature's SiteInfo has it): its slug names the cookie."""

    @property
    def slug(self) -> str: ...


ANON_COOKIE = "meter_anon"
ANON_MAX_AGE = 400 * 86400


def reader_cookie(site: SiteInfo) -> str:
    return f"meter_r_{site.slug}"


def _attrs() -> dict:
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    return {"httponly": True, "secure": secure, "samesite": "None" if secure else "Lax", "path": "/"}


def reader_token_in(cookies: Mapping[str, str], site: SiteInfo) -> str | None:
    value = cookies.get(reader_cookie(site))
    return value if value and len(value) < 1000 else None


def anonymous_id_in(cookies: Mapping[str, str]) -> str | None:
    value = cookies.get(ANON_COOKIE)
    return value if is_anonymous_id(value) else None


def reader_token(site: SiteInfo) -> str | None:
    return reader_token_in(request.cookies, site)


def anonymous_id() -> str | None:
    return anonymous_id_in(request.cookies)


def set_reader_token(response: Response, site: SiteInfo, token: str) -> None:
    response.set_cookie(reader_cookie(site), token, max_age=current_app.config["READER_TOKEN_MAX_AGE"], **_attrs())


def clear_reader_token(response: Response, site: SiteInfo) -> None:
    response.delete_cookie(reader_cookie(site), **_attrs())


def set_binding(response: Response, site: SiteInfo, name: str, value: str, max_age: int) -> None:
    """A started sign-in's browser binding (meter.social.rules.state): sent only to the site's login paths.
    Outside development SameSite=None, so that Apple's cross-site form post to the callback carries it."""
    response.set_cookie(name, value, max_age=max_age, **{**_attrs(), "path": f"/{site.slug}/login/"})


def new_anonymous_id() -> str:
    return "mv-" + secrets.token_urlsafe(18)


def anonymous_id_header(value: str) -> tuple[str, str]:
    """The Set-Cookie header that gives this browser its anonymous id."""
    return "Set-Cookie", dump_cookie(ANON_COOKIE, value, max_age=ANON_MAX_AGE, **_attrs())
