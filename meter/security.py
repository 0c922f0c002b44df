"""Security headers on every response: no sniffing, no framing, no referrer, a strict CSP for the API.

The reader pages set their own CSP (with a script nonce) in meter.pages; `setdefault` keeps it. The
session cookie (CSRF only) is HttpOnly and SameSite=Lax always, and Secure outside development
(config.py).
"""

from __future__ import annotations

from flask import Flask, Response, request

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


BASE_HEADERS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"))
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def json_headers(secure: bool) -> list[tuple[str, str]]:
    """What `security_headers` gives a JSON answer (for the access check's fast path, which skips Flask)."""
    headers = [*BASE_HEADERS, ("Content-Security-Policy", API_CSP)]
    if secure:
        headers.append(HSTS)
    return headers


def security_headers(response: Response) -> Response:
    headers = response.headers
    for name, value in BASE_HEADERS:
        headers.setdefault(name, value)
    # JSON and problem documents are never a document to render: nothing may load or frame them.
    # (HTML sets its own: the reader pages a nonce CSP; the development demo site loads the embed.)
    if response.mimetype.endswith("json"):
        headers.setdefault("Content-Security-Policy", API_CSP)
    if request.is_secure:
        headers.setdefault(*HSTS)
    return response


def init_app(app: Flask) -> None:
    app.after_request(security_headers)
