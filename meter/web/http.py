"""What every HTTP answer of meter gets, written once: a request id, the security headers, one log line.

Two entry points serve requests: Flask, and the hot WSGI entry for the access answers
(`meter.web.hot`), which skips Flask's per-request machinery. Both finish an answer here, so a
header or a log field added here reaches every route, the hottest included:

- `begin` reads the caller's X-Request-ID (or makes one) and starts the clock;
- `common_headers` gives the security headers of an answer of that type (JSON: a CSP that forbids
  everything; HTML pages: their own CSP with a script nonce, `page_headers`), HSTS over HTTPS, and
  the X-Request-ID;
- `log` writes the request's one line (route pattern, never the path: tokens live in some paths) and
  counts it in the metrics (`meter_http_requests_total`, `meter_http_request_duration_seconds`).

The session cookie (CSRF only) is HttpOnly and SameSite=Lax always, and Secure outside development
(config.py).
"""

from __future__ import annotations

import time

from flask import Flask, Response, abort, current_app, g, request, send_from_directory

from meter.domain import sites
from meter.infra import logs, metrics

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
BASE_HEADERS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"))
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def begin(given_request_id: str | None) -> tuple[float, str]:
    """(started, request id) of a request: the caller's X-Request-ID when it is a sane one, else a new one."""
    return time.perf_counter(), logs.request_id(given_request_id)


def common_headers(mimetype: str, secure: bool, request_id: str) -> list[tuple[str, str]]:
    """The headers every answer of this type carries (an answer's own headers of the same name win)."""
    headers = [*BASE_HEADERS]
    # JSON and problem documents are never a document to render: nothing may load or frame them.
    # (HTML sets its own: the reader pages a nonce CSP; the development demo site loads the embed.)
    if mimetype.endswith("json"):
        headers.append(("Content-Security-Policy", API_CSP))
    if secure:
        headers.append(HSTS)
    headers.append(("X-Request-ID", request_id))
    return headers


def page_headers(nonce: str) -> dict[str, str]:
    """The reader pages' own: a CSP with this response's script nonce, and tokens never sent elsewhere.

    Same-origin posts keep their Referer, which Flask-WTF's CSRF check requires over HTTPS
    (WTF_CSRF_SSL_STRICT); "no-referrer" broke every form there.
    """
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        ),
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def log(method: str, rule: str | None, status: int, site_slug: str | None, request_id: str, started: float) -> None:
    """The request's log line and its count and latency in the metrics, by route pattern."""
    metrics.observe_request(rule or "(no route)", method, status, time.perf_counter() - started)
    logs.log_request(method, rule, status, site_slug, request_id, started)


def site_or_404(slug: str) -> sites.SiteInfo:
    """The site a page, AMP or browser route names in its URL; 404 for an unknown slug."""
    site = sites.by_slug(slug)
    if site is None:
        abort(404)
    return sites.info(site)


# --- the Flask side ---------------------------------------------------------------------------------


def _begin() -> None:
    g.request_started, g.request_id = begin(request.headers.get("X-Request-ID"))
    # A login made by this request labels its session with the device (meter.domain.accounts.devices).
    g.user_agent = request.headers.get("User-Agent", "")


def _finish(response: Response) -> Response:
    if "request_id" not in g:  # a request that failed before before_request ran
        _begin()
    headers = response.headers
    for name, value in common_headers(response.mimetype or "", request.is_secure, g.request_id):
        if name == "X-Request-ID":
            headers[name] = value
        else:
            headers.setdefault(name, value)
    site = getattr(g, "site", None)
    slug = g.get("site_slug") or getattr(site, "slug", None) or (request.view_args or {}).get("site_slug")
    rule = request.url_rule.rule if request.url_rule is not None else None
    log(request.method, rule, response.status_code, slug, g.request_id, g.request_started)
    return response


def favicon() -> Response:
    """Browsers ask every site for /favicon.ico: a small icon (cached for a day) instead of a 404
    on every page view, in the logs and in the error metrics."""
    response = send_from_directory(current_app.static_folder or "static", "favicon.ico", max_age=86400)
    response.mimetype = "image/x-icon"
    return response


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_finish)
    app.add_url_rule("/favicon.ico", "favicon", favicon)
