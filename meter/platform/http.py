"""What every HTTP answer of meter gets, written once: a request id, the security headers, one log line.

Two entry points serve requests: Flask, and the hot WSGI entry for the access answers
(`meter.access.views.hot`), which skips Flask's per-request machinery. Both finish an answer here, so a
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

from flask import Flask, Response, current_app, g, request, send_from_directory

from meter.platform import logs, metrics

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
BASE_HEADERS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"))
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def begin(given_request_id: str | None) -> tuple[float, str]:
    """(started, request id) of a request: the caller's X-Request-ID when it is a sane one, else a new one."""
    return time.perf_counter(), logs.request_id(given_request_id)


def _fixed_headers(json: bool, secure: bool) -> tuple[tuple[str, str], ...]:
    headers = [*BASE_HEADERS]
    # JSON and problem documents are never a document to render: nothing may load or frame them.
    # (HTML sets its own: the reader pages a nonce CSP; the development demo site loads the embed.)
    if json:
        headers.append(("Content-Security-Policy", API_CSP))
    if secure:
        headers.append(HSTS)
    return tuple(headers)


# Built once: (JSON?, HTTPS?) → the headers of such an answer, the request id aside.
FIXED_HEADERS = {(json, secure): _fixed_headers(json, secure) for json in (False, True) for secure in (False, True)}


COMMON_NAMES = frozenset(name.lower() for name, _ in (*FIXED_HEADERS[True, True], ("X-Request-ID", "")))


def common_headers(mimetype: str, secure: bool, request_id: str) -> list[tuple[str, str]]:
    """The headers every answer of this type carries (an answer's own headers of the same name win)."""
    return [*FIXED_HEADERS[mimetype.endswith("json"), bool(secure)], ("X-Request-ID", request_id)]


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


# --- the Flask side ---------------------------------------------------------------------------------


def _begin() -> None:
    state = g._get_current_object()  # once: each use of a context proxy looks the context up again
    environ = request.environ
    state.request_started, state.request_id = begin(environ.get("HTTP_X_REQUEST_ID"))
    # A login made by this request labels its session with the device (meter.accounts.rules.devices).
    state.user_agent = environ.get("HTTP_USER_AGENT", "")


def _finish(response: Response) -> Response:
    state = g._get_current_object()
    if "request_id" not in state:  # a request that failed before before_request ran
        _begin()
    req = request._get_current_object()  # type: ignore[attr-defined]
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}  # one pass, not a search per common header
    for name, value in common_headers(response.mimetype or "", req.is_secure, state.request_id):
        if name == "X-Request-ID" and "x-request-id" in present:
            headers[name] = value
        elif name.lower() not in present:
            headers.add(name, value)
    site = getattr(state, "site", None)
    slug = state.get("site_slug") or getattr(site, "slug", None) or (req.view_args or {}).get("site_slug")
    rule = req.url_rule.rule if req.url_rule is not None else None
    log(req.method, rule, response.status_code, slug, state.request_id, state.request_started)
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
