"""AMP access: authorization never counts, pingback counts, small answers, CORS for the right origins."""

from __future__ import annotations

import re

from tests.conftest import make_site

RID = "amp-Abc123_xyz-000"
ARTICLE = "tempo:koran:2026-01-31:nato"


def _site(app, policy=None):
    return make_site(app, "tempo", ("https://tempo.co",), policy or {"quota": {"anonymous": 2}})


SOURCE = {"__amp_source_origin": "https://tempo.co"}  # the AMP runtime adds it to every CORS request


def auth(client, rid=RID, article=ARTICLE, cls="metered", origin="https://tempo.co", **extra):
    query = {"rid": rid, "url": "https://tempo.co/amp/x", "article": article, "class": cls}
    query.update(SOURCE if origin else {})
    query.update(extra)
    headers = {"Origin": origin} if origin else {}
    return client.get(
        "/amp/tempo/authorization", query_string={k: v for k, v in query.items() if v is not None}, headers=headers
    )


def pingback(client, rid=RID, article=ARTICLE, origin="https://tempo.co", **extra):
    query = {"rid": rid, "url": "https://tempo.co/amp/x", "article": article, "class": "metered", **SOURCE, **extra}
    return client.post(
        "/amp/tempo/pingback",
        query_string={k: v for k, v in query.items() if v is not None},
        headers={"Origin": origin},
    )


def test_authorization_twice_then_pingback_once_counts_one_view(app, client):
    _site(app)
    for _ in range(2):
        answer = auth(client)
        assert answer.status_code == 200
        body = answer.get_json()
        assert body["granted"] is True and body["grantReason"] == "METERING"
        assert body["data"] == {"articlesRead": 0, "articlesLeft": 2, "articleLimit": 2, "isLoggedIn": False}
    assert pingback(client).status_code == 204
    body = auth(client).get_json()
    assert body["data"]["articlesRead"] == 1 and body["reason"] == "already_unlocked"
    assert pingback(client).status_code == 204  # the same document again: still one
    assert auth(client).get_json()["data"]["articlesRead"] == 1
    other = auth(client, article="tempo:koran:other").get_json()
    assert other["data"]["articlesRead"] == 1 and other["reason"] == "would_unlock"


def test_quota_used_up_is_refused_and_free_is_granted(app, client):
    _site(app, {"quota": {"anonymous": 1}})
    pingback(client, article="tempo:koran:a")
    refused = auth(client, article="tempo:koran:b").get_json()
    assert refused["granted"] is False and refused["grantReason"] is None
    assert refused["reason"] == "registration_required"
    free = auth(client, article="tempo:2022-01-31:nato", cls="free").get_json()
    assert (free["granted"], free["grantReason"]) == (True, "FREE")


def test_answer_is_small_uncached_and_names_nobody(app, client):
    _site(app)
    answer = auth(client)
    assert len(answer.get_data()) < 500, len(answer.get_data())
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.mimetype == "application/json"
    assert "@" not in answer.get_data(as_text=True)


def test_cors_for_site_origin_and_amp_cache_with_credentials(app, client):
    _site(app)
    for origin in ("https://tempo.co", "https://tempo-co.cdn.ampproject.org"):
        answer = auth(client, origin=origin, __amp_source_origin="https://tempo.co")
        assert answer.status_code == 200
        assert answer.headers["Access-Control-Allow-Origin"] == origin
        assert answer.headers["Access-Control-Allow-Credentials"] == "true"
        assert answer.headers["AMP-Access-Control-Allow-Source-Origin"] == "https://tempo.co"
        assert "AMP-Access-Control-Allow-Source-Origin" in answer.headers["Access-Control-Expose-Headers"]
    ping = pingback(client, origin="https://tempo-co.cdn.ampproject.org")
    assert ping.status_code == 204 and ping.headers["Access-Control-Allow-Origin"].endswith("ampproject.org")


def test_cors_refuses_other_origins_and_source_origins(app, client):
    _site(app)
    for origin in ("https://evil.example", "https://tempo.co.evil.example", "http://tempo.co", "null"):
        answer = auth(client, origin=origin)
        assert answer.status_code == 403, origin
        assert "Access-Control-Allow-Origin" not in answer.headers
        assert answer.mimetype == "application/problem+json"
    assert pingback(client, origin="https://evil.example").status_code == 403
    spoofed = auth(client, __amp_source_origin="https://evil.example")
    assert spoofed.status_code == 403 and "AMP-Access-Control-Allow-Source-Origin" not in spoofed.headers
    # nothing was counted by the refused pingback
    assert auth(client).get_json()["data"]["articlesRead"] == 0


def test_another_sites_amp_cache_subdomain_cannot_read_or_spend_the_meter(app, client):
    """An attacker's page on evil-example.cdn.ampproject.org (any publisher may have a cache subdomain)
    asking with the reader's cookie: refused, nothing shown, nothing counted. Only the cache subdomain
    of the site's own origin (tempo.co → tempo-co) passes, and only with __amp_source_origin."""
    _site(app)
    for origin in ("https://evil-example.cdn.ampproject.org", "https://tempo-co-evil.cdn.ampproject.org"):
        answer = auth(client, origin=origin)
        assert answer.status_code == 403 and "Access-Control-Allow-Origin" not in answer.headers, origin
        for _ in range(3):
            assert pingback(client, origin=origin).status_code == 403
    no_source = auth(client, origin="https://tempo-co.cdn.ampproject.org", __amp_source_origin=None)
    assert no_source.status_code == 403 and "Access-Control-Allow-Origin" not in no_source.headers
    assert auth(client).get_json()["data"]["articlesRead"] == 0


def test_amp_cache_subdomains_follow_the_caches_encoding():
    from meter.access.rules.amp_origins import cache_label

    assert cache_label("www.tempo.co") == "www-tempo-co"
    assert cache_label("koran-tempo.co") == "koran--tempo-co"
    assert (
        cache_label("xn--bcher-kva.example") == "xn--bcher-example-wob"
    )  # bücher.example: decoded, then encoded again
    long = "a" * 60 + ".example.com"
    assert len(cache_label(long)) == 52 and cache_label(long).isalnum()  # too long for a label: base32 of its hash


def test_bad_input_is_4xx(app, client):
    _site(app)
    assert auth(client, rid="short").status_code == 400
    assert auth(client, rid="x" * 200).status_code == 400
    assert auth(client, cls="gratis").status_code == 422
    assert auth(client, article="a\x00b").status_code == 422
    assert client.get("/amp/nope/authorization?rid=" + RID).status_code == 404
    assert client.get("/amp/tempo/pingback?rid=" + RID).status_code == 405


def test_login_with_rid_links_amp_views_to_the_reader(app, client, api, verified_reader):
    """AMP's login flow (its `return`) links the rid; AMP's sign-out (the logout page with the rid) ends it.
    (tests/functional/test_amp_sessions.py: the link is a session of the account, and a link without `return`.)"""
    _, token = verified_reader()
    amp_return = "https://cdn.ampproject.org/v0/amp-login-done-0.1.html?url=https%3A%2F%2Ftempo.co%2Famp%2Fx"
    page = client.get("/tempo/login", query_string={"rid": RID, "return": amp_return})
    html = page.get_data(as_text=True)
    assert f'value="{RID}"' in html
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    done = client.post(
        "/tempo/login",
        data={
            "csrf_token": csrf,
            "email": "pembaca@example.com",
            "password": "rahasia-sekali",
            "rid": RID,
            "amp_return": amp_return,
        },
    )
    assert done.status_code == 303 and done.headers["Location"] == amp_return + "#success=true"
    client.delete_cookie("meter_r_tempo")  # AMP viewers often do not send third-party cookies: the rid alone
    body = auth(client).get_json()
    assert body["data"]["isLoggedIn"] is True and body["data"]["articleLimit"] == 2
    assert pingback(client).status_code == 204
    assert api.access(ARTICLE, reader_token=token, record=False)["reason"] == "already_unlocked"
    anonymous = api.access(ARTICLE, anonymous_id=RID, record=False)
    assert anonymous["meter"]["used"] == 0  # counted against the reader, not the anonymous rid

    # AMP's sign-out opens the logout page with the rid: that ends the link, the rid is anonymous again
    client.set_cookie("meter_r_tempo", done.headers["Set-Cookie"].split("meter_r_tempo=", 1)[1].split(";", 1)[0])
    page = client.get("/tempo/logout", query_string={"rid": RID}).get_data(as_text=True)
    out = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/tempo/logout", data={"csrf_token": out, "rid": RID}).status_code == 200
    after = auth(client).get_json()
    assert after["data"]["isLoggedIn"] is False and after["data"]["articlesRead"] == 0
