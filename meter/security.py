"""Security headers on every response: no sniffing, no framing, no referrer, a strict CSP for the API.

The reader pages set their own CSP (with a script nonce) in meter.pages; `setdefault` keeps it. The
session cookie (CSRF only) is HttpOnly and SameSite=Lax always, and Secure outside development
(config.py).
"""

from __future__ import annotations

from flask import Flask, Response, request

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    # JSON and problem documents are never a document to render: nothing may load or frame them.
    # (HTML sets its own: the reader pages a nonce CSP; the development demo site loads the embed.)
    if response.mimetype.endswith("json"):
        headers.setdefault("Content-Security-Policy", API_CSP)
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def init_app(app: Flask) -> None:
    app.after_request(security_headers)
