"""Errors a browser meets are meter's own page in the reader's language, never Werkzeug's English HTML.

Issue 18: behind a proxy that dropped the port from Host, every form POST failed with Werkzeug's
"The referrer does not match the host." on an Indonesian form. The API keeps problem+json.
"""

from __future__ import annotations

import logging
import re

import pytest

from tests.conftest import make_site, rebuilt

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
WERKZEUG_HTML = ("<title>400 Bad Request</title>", "<title>404 Not Found</title>", "The requested URL", "CSRF token")
ID = {"Accept-Language": "id"}
EN = {"Accept-Language": "en"}


def assert_meter_page(response, status: int, *phrases: str) -> str:
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "text/html"
    assert '<main id="main">' in text  # meter's layout
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in the page"
    for werkzeug in WERKZEUG_HTML:
        assert werkzeug not in text
    return text


@pytest.fixture
def site(app):
    make_site(app, "tempo")
    return "tempo"


def test_a_form_without_its_csrf_token_gets_the_expired_form_page_in_indonesian(client, site, caplog):
    with caplog.at_level(logging.WARNING, logger="meter"):
        response = client.post("/tempo/register", data={"email": "a@example.com", "password": "x" * 10}, headers=ID)
    text = assert_meter_page(response, 400, "Formulir ini sudah kedaluwarsa", "Buka Halaman Lagi", "Tempo")
    assert 'href="/tempo/register"' in text  # back to the form, which gets a fresh token
    assert "CSRF check" in caplog.text and "/tempo/register" in caplog.text  # the reason, for the operator


def test_a_referrer_without_the_port_is_refused_with_meters_page_and_the_reason_is_logged(client, site, caplog):
    """What a proxy sending `Host $host` did on :8443: the Referer's host:port and Host differ."""
    base = "https://meter.test:8443"
    page = client.get("/tempo/login?lang=en", base_url=base)
    token = CSRF_RE.search(page.get_data(as_text=True)).group(1)
    with caplog.at_level(logging.WARNING, logger="meter"):
        response = client.post(
            "/tempo/login",
            data={"csrf_token": token, "email": "a@example.com", "password": "rahasia-sekali"},
            headers={"Referer": "https://meter.test/tempo/login"},  # the port was dropped
            base_url=base,
        )
    assert_meter_page(response, 400, "This form has expired")
    assert "referrer does not match the host" in caplog.text
    # The same form with Host and Referer agreeing is accepted (a wrong password: 422, the form again).
    accepted = client.post(
        "/tempo/login",
        data={"csrf_token": token, "email": "a@example.com", "password": "rahasia-sekali"},
        headers={"Referer": f"{base}/tempo/login"},
        base_url=base,
    )
    assert accepted.status_code == 422


@pytest.mark.parametrize(
    ("method", "path", "status", "indonesian", "english"),
    [
        ("GET", "/tempo/no-such-page", 404, "Halaman tidak ditemukan", "Page not found"),
        ("GET", "/no-such-site/register", 404, "Halaman tidak ditemukan", "Page not found"),
        ("GET", "/tempo/resend-activation", 405, "tidak dapat dibuka dengan cara ini", "cannot be opened this way"),
        ("POST", "/tempo/activate/abc", 400, "Formulir ini sudah kedaluwarsa", "This form has expired"),
    ],
)
def test_framework_errors_on_reader_pages_speak_the_readers_language(
    client, site, method, path, status, indonesian, english
):
    assert_meter_page(client.open(path, method=method, headers=ID), status, indonesian)
    response = client.open(path, method=method, headers=EN)
    assert_meter_page(response, status, english)
    if status == 405:
        assert response.headers["Allow"]


def test_an_oversized_form_gets_meters_413_page(app, client, site):
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/tempo/register?lang=en", data={"email": big}, headers=EN)
    assert_meter_page(response, 413, "What you sent is too large")


def test_a_nul_in_a_field_is_meters_400_page_on_every_database(app, client, site):
    """PostgreSQL cannot compare text with a NUL (SQLite can): refused before a view reads it."""
    assert_meter_page(client.get("/tempo/login?next=%00", headers=EN), 400)
    token = CSRF_RE.search(client.get("/tempo/forgot-password").get_data(as_text=True)).group(1)
    response = client.post(
        "/tempo/forgot-password", data={"csrf_token": token, "email": "a\x00@example.com"}, headers=EN
    )
    assert_meter_page(response, 400)


@pytest.mark.parametrize(
    ("path", "method", "headers", "body", "status"),
    [
        ("/tempo/login", "GET", {}, None, 200),
        ("/console/signin", "GET", {}, None, 200),
        ("/amp/tempo/authorization", "GET", {"Origin": "https://tempo.co"}, None, 400),
        ("/embed/tempo/access", "POST", {"Origin": "https://tempo.co"}, b'{"article": {"id": "tempo:1"}}', 200),
    ],
)
def test_raw_bytes_in_a_query_are_read_as_their_escapes_never_a_500(app, site, path, method, headers, body, status):
    """A WSGI server that passes a byte above ASCII in the query (gunicorn refuses it) gets the
    answer the escaped byte gets: werkzeug's request.args raised UnicodeDecodeError in the view and in
    its error page before."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    answers = []
    source = "__amp_source_origin=https%3A%2F%2Ftempo.co&article=tempo%3A1&"
    for query in (source + "next=%E9&lang=en&rid=r%E9", source + "next=\xe9&lang=en&rid=r\xe9"):
        environ = EnvironBuilder(path=path, method=method, headers=headers, data=body).get_environ()
        environ["QUERY_STRING"] = query  # as a server would put the raw byte: a latin-1 character
        app_iter, got, _headers = run_wsgi_app(app, environ)
        answers.append((got, b"".join(app_iter)))
    assert answers[0][0].startswith(f"{status} "), answers[0]
    assert answers[1][0] == answers[0][0]


def test_the_page_of_a_known_site_links_back_to_its_login_and_switches_language(client, site):
    text = assert_meter_page(client.get("/tempo/nothing-here", headers=ID), 404)
    assert 'href="/tempo/login' in text and "?lang=en" in text
    plain = assert_meter_page(client.get("/nowhere/at-all", headers=EN), 404)
    assert "/login" not in plain and 'href="/nowhere/at-all?lang=id"' in plain


def test_api_paths_keep_problem_json(client, site):
    response = client.get("/v1/access")
    assert response.status_code == 405 and response.mimetype == "application/problem+json"
    response = client.get("/v1/nothing")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def test_the_language_cookie_is_secure_where_the_session_cookie_is(app, client, site):
    secure = rebuilt(app, SESSION_COOKIE_SECURE=True).test_client()
    cookie = secure.get("/tempo/login?lang=en").headers["Set-Cookie"]
    assert cookie.startswith("meter_lang=en") and "Secure" in cookie and "HttpOnly" in cookie
    assert app.config["SESSION_COOKIE_SECURE"] is False  # development's plain http, as in TestConfig
    client.set_cookie("meter_lang", "en")
    other = client.get("/tempo/login?lang=id").headers.get_all("Set-Cookie")
    lang = next(c for c in other if c.startswith("meter_lang="))
    assert "Secure" not in lang
