"""Languages: Indonesian by default, English; pages, embed answers and mail all go through Babel catalogs.

The language of a request is chosen by `?lang=`, then the `meter_lang` cookie (set whenever `?lang=`
is given; HttpOnly, SameSite=Lax, and Secure wherever the session cookie is, i.e. outside
development), then `Accept-Language`, then the site's locale. Mail is rendered in the reader's stored
locale (`force_locale`), whatever language the request that queued it spoke. Dates are shown in the
site's time zone.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, has_request_context, request
from flask_babel import Babel

LOCALES = ("id", "en")
LANG_COOKIE = "meter_lang"

babel = Babel()


def choose_language() -> str:
    """The request's language (see the module docstring); "id" outside a request."""
    if not has_request_context():
        return "id"
    chosen = g.get("lang")
    if chosen:
        return chosen
    asked = request.args.get("lang")
    if asked in LOCALES:
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LOCALES:
        return cookie
    best = request.accept_languages.best_match(LOCALES)
    if best:
        return best
    site = g.get("site")
    locale = getattr(site, "locale", None)
    return locale if locale in LOCALES else "id"


def _locale_selector() -> str:
    return choose_language()


def _timezone_selector() -> str | None:
    site = g.get("site") if has_request_context() else None
    policy = getattr(site, "policy", None)
    return getattr(policy, "timezone", None) or "Asia/Jakarta"


def remember_language(response: Response) -> Response:
    """`?lang=` sticks: the next page (without the parameter) speaks the same language."""
    asked = request.args.get("lang")
    if asked in LOCALES and request.cookies.get(LANG_COOKIE) != asked:
        secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, samesite="Lax", httponly=True, secure=secure)
    return response


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "id")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Jakarta")
    babel.init_app(app, locale_selector=_locale_selector, timezone_selector=_timezone_selector)
    app.jinja_env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks collapse their whitespace
