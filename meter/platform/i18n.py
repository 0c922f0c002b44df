"""Languages: Indonesian by default, English; pages, embed answers and mail all go through Babel catalogs.

The language of a request is chosen by `?lang=`, then the `meter_lang` cookie (set whenever `?lang=`
is given; HttpOnly, SameSite=Lax, and Secure wherever the session cookie is, i.e. outside
development), then `Accept-Language`, then the site's locale. Mail is rendered in the reader's stored
locale (`force_locale`), whatever language the request that queued it spoke. Dates are shown in the
site's time zone.
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

from babel import Locale
from babel.support import Translations
from flask import Flask, Response, current_app, g, has_request_context, request
from flask_babel import Babel
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

LOCALES = ("id", "en")
LANG_COOKIE = "meter_lang"

babel = Babel()


def language_of(asked: str | None, cookie: str | None, accept_language: str | None, site_locale: str | None) -> str:
    """The language of a request from what it carries (see the module docstring); the one rule for
    every entry point, Flask's and the hot WSGI entry's."""
    if asked in LOCALES:
        return asked
    if cookie in LOCALES:
        return cookie
    if accept_language:
        # Browsers' headers are far shorter than 256 characters; a longer one is read, not kept.
        best = (_kept_best_accepted if len(accept_language) <= 256 else _best_accepted)(accept_language)
        if best:
            return best
    return site_locale if site_locale in LOCALES else "id"


def _best_accepted(accept_language: str) -> str | None:
    """Which of LOCALES an Accept-Language header prefers, if any."""
    return parse_accept_header(accept_language, LanguageAccept).best_match(LOCALES)


# Kept per header value: werkzeug's parse and match cost 18 µs, a browser sends the header with every
# embed check, and an audience's browsers send few distinct values (the answer depends on nothing else).
_kept_best_accepted = lru_cache(maxsize=1024)(_best_accepted)


def choose_language() -> str:
    """The language of this Flask request; "id" outside a request."""
    if not has_request_context():
        return "id"
    chosen = g.get("lang")
    if chosen:
        return chosen
    site = g.get("site")
    return language_of(
        request.args.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("Accept-Language"),
        getattr(site, "locale", None),
    )


TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"  # meter/translations, as Flask-Babel's


class Texts:
    """The catalogs of one language, for answers made outside a Flask request (the access answers of the
    hot entry): the same strings and formatting as Flask-Babel's gettext/ngettext, without its per-call
    context lookups. Made once per language (`texts`)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.locale = Locale.parse(lang)
        self._catalog = Translations.load(str(TRANSLATIONS), [lang], domain="messages")

    def gettext(self, string: str, **variables: object) -> str:
        text = self._catalog.gettext(string)
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, num: int, **variables: object) -> str:
        variables.setdefault("num", num)
        return self._catalog.ngettext(singular, plural, num) % variables


@cache
def texts(lang: str) -> Texts:
    return Texts(lang if lang in LOCALES else "id")


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
    # Two catalogs in meter/translations: `messages` (readers: pages, mail, embed) and `console` (staff).
    app.config.setdefault("BABEL_DOMAIN", "messages;console")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations;translations")
    babel.init_app(app, locale_selector=_locale_selector, timezone_selector=_timezone_selector)
    app.jinja_env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks collapse their whitespace
