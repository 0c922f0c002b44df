"""The publisher console (`/console/`, HTML): staff see their sites' figures, help readers, steer the
policy, keys, origins, sign-in providers and mail.

Separate from the reader pages in everything that matters: its own accounts (meter.console.rules.staff_accounts),
its own session cookie (`meter_console`, path /console/, SameSite=Strict), its own catalog domain
(`console` in meter/translations), its own error pages. What it shares with them: CSRF on every form
(Flask-WTF), the CSP with a per-response nonce (`http.page_headers`; the console runs no script at
all: charts are SVG drawn on the server, progress pages refresh themselves), the language rule
(`?lang=`, cookie, Accept-Language; Indonesian by default).

Every view is declared with the least role it needs (`auth.view`), checked on every request against
the member's grant on the site in the URL; a site the member has no grant on is not found (404), a
role too low is refused (403). The modules: `auth` (set-up, sign-in, the checks), `dashboard`,
`readers`, `site` (policy, keys, origins, providers), `meters` (the policy's named meters), `arrival_rules`
(each meter's rules by arrival), `experiments` (each meter's experiment), `mail` (outbox, audit log, staff), `webhooks`,
`labels` (the words shown for meter's codes), `charts`.
"""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, Flask, g, make_response, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from meter.accounts import mail_budget
from meter.accounts import rate_limits as ratelimit
from meter.platform import http, page_shell, problems
from meter.platform.i18n import choose_language, remember_language

log = logging.getLogger(__name__)

bp = Blueprint("console", __name__, url_prefix="/console")
PREFIX = "/console/"


@bp.before_request
def _console() -> None:
    g.console = True  # first: a refusal by the shell's checks gets the console's error page


page_shell.install(bp)


def duration(seconds: float | None) -> str:
    """42 s, 7 min, 3 h 5 min, 2 d 4 h: how long, in the units a person reads, in the member's language."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 90:
        return _("%(s)d s", s=seconds)
    if seconds < 5400:
        return _("%(m)d min", m=round(seconds / 60))
    if seconds < 2 * 86400:
        return _("%(h)d h %(m)d min", h=seconds // 3600, m=seconds % 3600 // 60)
    return _("%(d)d d %(h)d h", d=seconds // 86400, h=seconds % 86400 // 3600)


def error_page(status: int, exc: Exception | None = None, kind: str | None = None):
    """The console's page for an error, in the member's language, with the console's headers; `kind`
    names a page of its own for the status (such as "search": too many reader searches)."""
    if isinstance(exc, CSRFError):
        log.warning("console form refused by the CSRF check on %s: %s", request.path, exc.description)
    g.lang = g.get("lang") or choose_language()
    g.csp_nonce = g.get("csp_nonce") or secrets.token_urlsafe(16)
    kind = kind or ("csrf" if isinstance(exc, CSRFError) else status)
    headers = dict(http.page_headers(g.csp_nonce))
    if isinstance(exc, ratelimit.RateLimited | mail_budget.Spent):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, HTTPException):
        allow = exc.get_response().headers.get("Allow")
        if allow:
            headers["Allow"] = allow
    wait = getattr(exc, "retry_after", None)
    body = render_template("console/error.html", kind=kind, status=status, wait=wait)
    response = make_response(body, status)
    response.headers.update(headers)
    return remember_language(response)


@bp.errorhandler(ratelimit.RateLimited)
@bp.errorhandler(mail_budget.Spent)
def _too_many(exc):
    return error_page(429, exc)


def _wrap_error_page(app: Flask) -> None:
    """Errors on /console/ paths that no console view raised (an unknown address, a refused CSRF token,
    a body too large) get the console's page too, not a reader page that names a site "console"."""
    readers_page = app.extensions.get(problems.ERROR_PAGE)

    def render(status: int, exc: Exception):
        if request.path.startswith(PREFIX) or request.path == PREFIX.rstrip("/"):
            return error_page(status, exc)
        return readers_page(status, exc) if readers_page else exc

    app.extensions[problems.ERROR_PAGE] = render


def init_app(app: Flask) -> None:
    from meter.console.views import (  # noqa: F401 - registers the views
        arrival_rules,
        auth,
        dashboard,
        experiments,
        labels,
        mail,
        meters,
        readers,
        site,
        webhooks,
    )

    app.register_blueprint(bp)
    app.add_template_filter(duration)
    app.add_template_global(labels, "labels")
    _wrap_error_page(app)
