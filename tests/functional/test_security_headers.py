"""Security headers on every response, and the session cookie's flags."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from meter import create_app
from meter.platform.db import db
from meter.platform.models import OutboxMail
from tests.conftest import Api, make_site
from tests.paths import ROOT_DIR


def assert_common(response, referrer: str = "no-referrer") -> None:
    h = response.headers
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["X-Frame-Options"] == "DENY"
    assert h["Referrer-Policy"] == referrer
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("method", "path", "auth"),
    [
        ("GET", "/healthz", False),
        ("POST", "/v1/access", True),
        ("POST", "/v1/access", False),  # 401 problem
        ("GET", "/v1/nothing-here", True),  # 404 problem
        ("POST", "/v1/readers", True),  # 400/422 problem
    ],
)
def test_api_responses_carry_the_headers_and_a_deny_all_csp(api, method, path, auth):
    body = {"article": {"id": "tempo:x", "class": "free"}} if path == "/v1/access" else None
    if auth:
        response = api.client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {api.key}"})
    else:
        response = api.client.open(path, method=method, json=body)
    assert_common(response)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_pages_keep_their_own_csp_with_a_nonce(app, api, register, client):
    link = register("pembaca@example.com")
    page = client.get(link.split("meter.test", 1)[1])
    assert page.status_code == 200
    # same-origin, not no-referrer: Flask-WTF's CSRF check needs the Referer of a form post over HTTPS
    assert_common(page, referrer="same-origin")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'nonce-" in csp and "default-src 'self'" in csp
    nonce = csp.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'nonce="{nonce}"' in page.get_data(as_text=True)


def _session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    return cookies[0]


def test_session_cookie_is_httponly_and_samesite_lax(app, api, register, client):
    link = register("pembaca@example.com")
    cookie = _session_cookie(client.get(link.split("meter.test", 1)[1]))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # TestConfig: plain http test client


def test_session_cookie_is_secure_with_the_production_setting(app):
    fresh = create_app({**app.config, "SESSION_COOKIE_SECURE": True})
    key = make_site(fresh)
    api = Api(fresh.test_client(), key, "tempo")
    api.post("/v1/readers", json={"email": "pembaca@example.com", "password": "rahasia-sekali"})
    # the activation page (its link read from the outbox) sets the CSRF session cookie
    with fresh.app_context():
        body = db.session.scalar(select(OutboxMail.body_text))
    path = body.split("meter.test", 1)[1].split()[0]
    cookie = _session_cookie(fresh.test_client().get(path))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.servers  # a Python process of its own
@pytest.mark.parametrize(("env", "secure"), [("production", "True"), ("development", "False"), ("testing", "True")])
def test_secure_cookies_are_the_default_outside_development(env, secure):
    code = "import config; print(config.Config.SESSION_COOKIE_SECURE)"
    environ = {k: v for k, v in os.environ.items() if k != "SESSION_COOKIE_SECURE"}
    environ["METER_ENV"] = env
    root = str(ROOT_DIR)
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == secure


def test_the_favicon_is_an_icon_not_a_404_on_every_page(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/x-icon"
    assert icon.get_data()[:4] == b"\x00\x00\x01\x00" and "max-age=86400" in icon.headers["Cache-Control"]
    icon.close()
