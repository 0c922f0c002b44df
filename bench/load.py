"""What the bench's loads ask: a site and verified readers prepared through the app itself, and the
requests of each target (hello-world, the API, the embed, AMP), the same readers and articles for all.

Used by `bench.run` (over HTTP, with wrk) and `bench.inprocess` (one process, no HTTP).
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from urllib.parse import urlencode


def prepare(workdir: Path, redis_url: str, readers: int) -> tuple[dict, str, list[dict]]:
    """A migrated database, a site, verified readers with 2 unlocks each: all through the app."""
    from flask_migrate import upgrade
    from sqlalchemy import select, text

    from meter import create_app
    from meter.platform.db import db
    from meter.platform.models import OutboxMail
    from meter.sites.rules import sites

    db_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    env = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "METER_ENV": "production",
        "SITE_CACHE_TTL": "60",
        "LOG_LEVEL": "WARNING",
        "PUBLIC_BASE_URL": "http://127.0.0.1",  # production accepts http on loopback only
        "MAIL_DEFAULT_SENDER": "Bench <no-reply@bench.example>",  # and no sender on localhost
    }
    app = create_app(
        {
            "SECRET_KEY": env["SECRET_KEY"],
            "SQLALCHEMY_DATABASE_URI": db_url,
            "REDIS_URL": redis_url,
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST": 1024,
            "ARGON2_PARALLELISM": 1,
            "PUBLIC_BASE_URL": "http://127.0.0.1",
            "MAIL_DEFAULT_SENDER": env["MAIL_DEFAULT_SENDER"],
            "RATELIMIT_ENABLED": False,  # preparing registers many readers from one IP at once
        }
    )
    client = app.test_client()
    with app.app_context():
        upgrade()
        db.session.execute(text("PRAGMA journal_mode=WAL"))  # several gunicorn workers share the file
        _site, key = sites.create_site("bench", "Bench", [ORIGIN])
    auth = {"Authorization": f"Bearer {key}"}
    prepared = []
    for n in range(readers):
        email = f"bench{n}@example.com"
        response = client.post("/v1/readers", json={"email": email, "password": "rahasia-sekali"}, headers=auth)
        assert response.status_code == 202, response.get_data(as_text=True)
        with app.app_context():
            body = db.session.scalar(select(OutboxMail.body_text).where(OutboxMail.to_addr == email))
        token = re.search(r"/activate/([^\s?]+)", body).group(1)
        response = client.post("/v1/activations", json={"token": token}, headers=auth)
        reader_token = response.get_json()["reader_token"]
        unlocked = [f"bench:koran:{n}:a", f"bench:koran:{n}:b"]
        for article in unlocked:
            answer = client.post(
                "/v1/access", json={"reader_token": reader_token, "article": {"id": article}}, headers=auth
            ).get_json()
            assert answer["reason"] == "unlocked_now", answer
        prepared.append({"token": reader_token, "unlocked": unlocked, "new": f"bench:koran:{n}:new"})
    _give_the_new_articles(app, client, auth, prepared)
    with app.app_context():
        db.engine.dispose()
    return env, key, prepared


def _give_the_new_articles(app, client, auth: dict, prepared: list[dict]) -> None:
    """A subscriber gives each reader's new article, so that the access target's gift tokens are real gifts."""
    from sqlalchemy import select

    from meter.platform.db import db
    from meter.platform.models import OutboxMail
    from meter.sites.rules import sites

    with app.app_context():
        site = sites.by_slug("bench")
        site.policy = {**site.policy, "gifts": {"per_period": 1000, "days": 14, "devices": 10}}
        db.session.commit()
        sites.forget_cached()
    email = "giver@example.com"
    client.post("/v1/readers", json={"email": email, "password": "rahasia-sekali"}, headers=auth)
    with app.app_context():
        body = db.session.scalar(select(OutboxMail.body_text).where(OutboxMail.to_addr == email))
    token = re.search(r"/activate/([^\s?]+)", body).group(1)
    activated = client.post("/v1/activations", json={"token": token}, headers=auth).get_json()
    until = {"until": "2099-01-01T00:00:00+00:00"}
    assert client.put(f"/v1/readers/{activated['reader_id']}/subscription", json=until, headers=auth).status_code == 200
    for r in prepared:
        article = {"id": r["new"], "class": "metered", "url": f"{ORIGIN}/{r['new']}"}
        made = client.post(
            "/v1/gifts", json={"reader_token": activated["reader_token"], "article": article}, headers=auth
        )
        assert made.status_code == 201, made.get_data(as_text=True)
        r["gift"] = made.get_json()["gift_token"]


ORIGIN = "https://bench.example"

TARGETS = ("access", "embed", "amp")  # the three ways a check is asked, each compared with hello-world

# What the publisher's server sends of an ordinary reader's browser: never a crawler or a preview.
CLIENT = {
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (Linux; Android 14; SM-A155F) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
}


def bodies_for(prepared: list[dict]) -> list[str]:
    """Per reader: its 2 unlocked articles (already_unlocked) and a new one (quota_exhausted), record true."""
    out = []
    for r in prepared:
        for article in [*r["unlocked"], r["new"]]:
            out.append(json.dumps({"reader_token": r["token"], "article": {"id": article, "class": "metered"}}))
    return out


def requests_for(target: str, key: str, prepared: list[dict]) -> list[tuple[str, str, dict, str | None]]:
    """(method, path, headers, body) of each request of a target; the same readers and articles for all three.

    access: the API with the site's key and the reader token in the body, with the reader's `client` and, for
    the new article, the gift link a subscriber made of it (a gifted read); access-plain: the same without
    client and gift_token (the body before gifts and crawlers). embed: meter.js's call, with
    the reader's login cookie and the site's Origin. amp: AMP's authorization, with the reader's login
    cookie, the site's Origin and __amp_source_origin (record false: authorization never counts).
    """
    if target == "hello":
        return [("GET", "/bench/hello", {}, None)]
    if target == "bare":
        return [("GET", "/bench/bare", {}, None)]
    if target == "hello_redis":
        return [("GET", "/bench/hello-redis", {}, None)]
    out = []
    for n, r in enumerate(prepared):
        # A returning browser: meter's login cookie and its anonymous id cookie (set on its first visit).
        cookie = {"Cookie": f"meter_r_bench={r['token']}; meter_anon=mv-bench-{n:08d}", "Origin": ORIGIN}
        for article in [*r["unlocked"], r["new"]]:
            item = {"id": article, "class": "metered"}
            if target in ("access", "access-plain"):
                headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
                body = {"reader_token": r["token"], "article": item}
                if target == "access":
                    body["client"] = CLIENT
                    if article == r["new"] and r.get("gift"):
                        body["gift_token"] = r["gift"]
                out.append(("POST", "/v1/access", headers, json.dumps(body)))
            elif target == "embed":
                body = json.dumps({"article": item, "record": True, "url": f"{ORIGIN}/{n}"})
                out.append(("POST", "/embed/bench/access", {**cookie, "Content-Type": "text/plain"}, body))
            else:
                query = urlencode(
                    {
                        "rid": f"amp-bench-{n:08d}",
                        "url": f"{ORIGIN}/amp/{n}",
                        "article": article,
                        "__amp_source_origin": ORIGIN,
                    }
                )
                out.append(("GET", f"/amp/bench/authorization?{query}", cookie, None))
    return out
