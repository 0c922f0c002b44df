"""meter's own page for an error a browser meets: in the reader's language, never Werkzeug's English HTML.

A form refused by Flask-WTF's CSRF check (a 400), an unknown address (404), a GET on a POST-only
form (405), a body over MAX_CONTENT_LENGTH (413) and the rest are answered by `problems` as
problem+json on API paths, and with this page everywhere else (`problems.ERROR_PAGE`). Under a
site's path the page wears the site's name and links back to its login page; elsewhere it is plain.

A CSRF refusal is logged with Flask-WTF's reason ("The referrer does not match the host."): a proxy
that rewrites Host or drops the port (deploy/nginx/meter.conf) shows up there, not as a mystery.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from meter.platform import http, problems
from meter.platform.i18n import choose_language

log = logging.getLogger(__name__)

KNOWN = frozenset({400, 404, 405, 413, 500, 503})
KEPT_HEADERS = ("Allow", "Retry-After")


SITE_BY_SLUG = "meter.site_by_slug"  # app.extensions: the sites feature's lookup, given to init_app


def _site_of_path() -> Any:
    """The site named by the first segment of the path, when there is one (never raises): the page
    wears its colours and name. The lookup is the sites feature's, passed to `init_app`: the platform
    names no feature."""
    site = g.get("site")
    if site is not None:
        return site
    slug = request.path.strip("/").split("/", 1)[0]
    if not slug or len(slug) > 64:
        return None
    try:
        return current_app.extensions[SITE_BY_SLUG](slug)
    except SQLAlchemyError:  # the database is away: a plain page then
        return None


def error_page(status: int, exc: Exception | None = None) -> Response:
    """The page for `status` (a CSRF refusal has its own words), with the reader pages' headers."""
    if isinstance(exc, CSRFError):
        log.warning("form refused by the CSRF check on %s: %s", request.path, exc.description)
    g.site = _site_of_path()
    g.lang = g.get("lang") or choose_language()
    g.csp_nonce = g.get("csp_nonce") or secrets.token_urlsafe(16)
    kind = "csrf" if isinstance(exc, CSRFError) else status if status in KNOWN else 400
    retry = request.path if request.url_rule is not None and "GET" in (request.url_rule.methods or ()) else None
    body = render_template("pages/error.html", kind=kind, status=status, retry_url=retry)
    response = Response(body, status=status, mimetype="text/html")
    response.headers.update(http.page_headers(g.csp_nonce))
    if isinstance(exc, HTTPException):
        original = exc.get_response()
        for name in KEPT_HEADERS:
            if original.headers.get(name):
                response.headers[name] = original.headers[name]
    return response


def init_app(app: Flask, site_by_slug: Callable[[str], Any]) -> None:
    app.extensions[problems.ERROR_PAGE] = error_page
    app.extensions[SITE_BY_SLUG] = site_by_slug
