"""Faults survived: the database unreachable (a real cut: a TCP proxy for PostgreSQL, the file moved
away for SQLite). Redis stopped and flushed, and SMTP refusing or hanging, are in tests/functional/test_meter.py,
tests/functional/test_mail.py, tests/e2e/test_servers.py (real gunicorn) and tests/functional/test_model.py.
"""

from __future__ import annotations

import time
from datetime import timedelta

from meter.platform import clock, mail
from meter.platform.db import db
from tests.conftest import Api, links_in, make_site, token_of

PASSWORD = "rahasia-sekali"


def test_database_unreachable_readyz_503_and_cached_readers_still_answered(cut_app, mailbox):
    app, cut = cut_app
    client = app.test_client()
    api = Api(client, make_site(app), "tempo")
    assert api.post("/v1/readers", json={"email": "pembaca@example.com", "password": PASSWORD}).status_code == 202
    with app.app_context():
        mail.deliver_due()
    link = next(link for m in mailbox.to("pembaca@example.com") for link in links_in(m["msg"]) if "/activate/" in link)
    reader_token = api.post("/v1/activations", json={"token": token_of(link)}).get_json()["reader_token"]
    first = api.access("tempo:koran:1", reader_token=reader_token)  # warms the site cache and Redis
    assert first["reason"] == "unlocked_now"
    assert client.get("/readyz").status_code == 200

    with app.app_context():
        cut.cut(db.engine)
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.mimetype == "application/problem+json"
        assert "database" in ready.get_json()["detail"]
        clock.travel(timedelta(seconds=61))  # past SITE_CACHE_TTL: the site entry is stale, and the database
        # cannot refresh it
        again = api.access("tempo:koran:1", reader_token=reader_token)
        assert again["allowed"] and again["reason"] == "already_unlocked" and not again["degraded"]
        second = api.access("tempo:koran:2", reader_token=reader_token)  # decided in Redis; ledger write fails
        assert second["allowed"] and second["reason"] == "unlocked_now"
        third = api.access("tempo:koran:3", reader_token=reader_token)
        assert not third["allowed"] and third["reason"] == "quota_exhausted"
        anonymous = api.access("tempo:koran:1", anonymous_id="visitor-0001")  # not cached: degraded, no 5xx
        assert anonymous["degraded"] is True
        # calls that need the database answer 503 problem+json, never 500
        for path, body in [
            ("/v1/readers", {"email": "neu@example.com", "password": PASSWORD}),
            ("/v1/sessions", {"email": "pembaca@example.com", "password": PASSWORD}),
            ("/v1/password-resets", {"email": "pembaca@example.com"}),
        ]:
            response = api.post(path, json=body)
            assert response.status_code == 503, (path, response.get_data(as_text=True))
            assert response.mimetype == "application/problem+json" and response.headers["Retry-After"]
    finally:
        cut.restore()
    deadline = time.monotonic() + 30  # the pool reconnects (pool_pre_ping): polled, with room for a busy machine
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            break
        time.sleep(0.1)
    assert client.get("/readyz").status_code == 200
    assert api.access("tempo:koran:2", reader_token=reader_token)["reason"] == "already_unlocked"
