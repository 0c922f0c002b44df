"""The embed's browser endpoint: meter's own cookies, CORS for the site's origins only, the walls."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from flask import Response

from tests import openapi_check as openapi
from tests.conftest import make_site, past_the_mail_budget

ORIGIN = "https://tempo.co"


def ask(client, article="tempo:koran:a", cls="metered", record=True, origin=ORIGIN, lang=None, **extra):
    body = {"article": {"id": article, "class": cls}, "record": record, "url": "https://tempo.co/koran/a", **extra}
    headers = {"Origin": origin, "Content-Type": "text/plain"} if origin else {"Content-Type": "text/plain"}
    path = "/embed/tempo/access" + (f"?lang={lang}" if lang else "")
    return client.post(path, data=json.dumps(body), headers=headers)


def test_script_is_small_plain_javascript(client):
    script = client.get("/embed/meter.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert len(script.get_data()) < 11_000  # content protection (fetching the body with a grant) took it past 10 kB
    assert b"prerendering" in script.get_data() and b"credentials" in script.get_data()


def test_anonymous_visitor_gets_an_id_cookie_and_the_register_wall(app, client):
    make_site(app)
    first = ask(client)
    assert first.status_code == 200
    assert first.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert first.headers["Access-Control-Allow-Credentials"] == "true"
    assert "meter_anon=" in first.headers["Set-Cookie"] and "HttpOnly" in first.headers["Set-Cookie"]
    body = first.get_json()
    assert (body["allowed"], body["reason"]) == (False, "registration_required")
    wall = body["wall"]
    assert wall["kind"] == "register" and wall["title"] == "Daftar untuk terus membaca"
    register = next(a for a in wall["actions"] if a["kind"] == "register")
    assert register["url"].startswith("http://meter.test/tempo/register?")
    assert parse_qs(urlsplit(register["url"]).query)["next"] == ["https://tempo.co/koran/a"]
    second = ask(client)
    assert "Set-Cookie" not in second.headers  # the id stays


def test_refused_origins_count_nothing(app, client):
    make_site(app, policy={"quota": {"anonymous": 1}})
    for origin in ("https://evil.example", "null", None, "https://tempo.co.evil.example"):
        answer = ask(client, origin=origin)
        assert answer.status_code == 403, origin
        assert "Access-Control-Allow-Origin" not in answer.headers
    allowed = ask(client).get_json()
    assert (allowed["allowed"], allowed["reason"]) == (True, "unlocked_now")


def test_prerender_asks_without_counting_and_banner_says_what_is_left(app, client):
    make_site(app, policy={"quota": {"anonymous": 2}})
    peek = ask(client, record=False).get_json()
    assert (peek["reason"], peek["meter"]["used"]) == ("would_unlock", 0)
    shown = ask(client).get_json()
    assert (shown["reason"], shown["meter"]["used"], shown["banner"]) == ("unlocked_now", 1, "1 artikel gratis tersisa")
    english = ask(client, article="tempo:koran:b", lang="en").get_json()
    assert english["banner"] == "0 free articles left"
    over = ask(client, article="tempo:koran:c", lang="en").get_json()
    assert over["wall"]["kind"] == "quota" and "come back on" in over["wall"]["body"]


def test_logged_in_reader_by_cookie_and_premium_wall(app, client, verified_reader):
    _, token = verified_reader()
    client.set_cookie("meter_r_tempo", token)
    answer = ask(client).get_json()
    assert (answer["allowed"], answer["logged_in"], answer["banner"]) == (True, True, "1 artikel gratis tersisa")
    laput = ask(client, article="tempo:laput:1", cls="premium", subscribe_url="https://tempo.co/langganan").get_json()
    assert laput["wall"]["kind"] == "subscribe"
    assert laput["wall"]["actions"][0]["url"] == "https://tempo.co/langganan"
    foreign = ask(client, article="tempo:laput:1", cls="premium", subscribe_url="https://evil.example/").get_json()
    assert foreign["wall"]["actions"][0]["url"] == "#"


def test_unverified_reader_gets_the_verify_wall_and_can_resend_within_the_mail_budget(
    app, client, api, register, mailbox, deliver
):
    register()
    past_the_mail_budget()  # the registration's own mail spent the address's budget for 3 minutes
    login = api.post("/v1/sessions", json={"email": "pembaca@example.com", "password": "rahasia-sekali"})
    client.set_cookie("meter_r_tempo", login.get_json()["reader_token"])
    answer = ask(client).get_json()
    assert answer["wall"]["kind"] == "verify" and answer["wall"]["actions"][0]["kind"] == "resend"
    headers = {"Origin": ORIGIN, "Content-Type": "text/plain"}
    mailbox.clear()
    sent = client.post("/embed/tempo/resend", data="{}", headers=headers)
    assert sent.status_code == 200 and sent.get_json()["status"] == "sent"
    assert 170 < sent.get_json()["retry_after"] <= 180
    again = client.post("/embed/tempo/resend", data="{}", headers=headers)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0
    assert deliver() == (1, 0) and len(mailbox.to("pembaca@example.com")) == 1


def test_bad_input_is_4xx(app, client):
    make_site(app)
    headers = {"Origin": ORIGIN}
    assert client.post("/embed/tempo/access", data="not json", headers=headers).status_code == 400
    assert client.post("/embed/tempo/access", data="[]", headers=headers).status_code == 422
    assert client.post("/embed/tempo/access", data='{"article": {"id": ""}}', headers=headers).status_code == 422
    assert ask(client, cls="gratis").status_code == 422
    assert ask(client, record="yes").status_code == 422
    assert client.post("/embed/nope/access", data="{}", headers=headers).status_code == 404
    assert client.post("/embed/tempo/resend", data="{}", headers=headers).status_code == 401
    assert client.get("/embed/tempo/access").status_code == 405


def test_refusals_are_problems_the_sites_page_can_read(app, client):
    """Errors under /embed/ are problem+json whatever Accept says (meter.js sends none), and a refusal
    after the Origin was accepted carries the CORS headers: the script sees it, not a network error."""
    make_site(app)
    headers = {"Origin": ORIGIN}
    big = b"{" + b" " * app.config["MAX_CONTENT_LENGTH"] + b"}"
    for response, status in (
        (client.post("/embed/tempo/access", data="not json", headers=headers), 400),
        (client.post("/embed/tempo/access", data='{"article": {"id": ""}}', headers=headers), 422),
        (client.post("/embed/tempo/access", data=big, headers=headers), 413),
        (client.post("/embed/tempo/resend", data="{}", headers=headers), 401),
    ):
        assert response.status_code == status
        assert response.mimetype == "application/problem+json"
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
    unknown = client.post("/embed/nope/access", data="{}", headers=headers)  # no site: no origins to allow
    assert unknown.status_code == 404 and unknown.mimetype == "application/problem+json"
    assert "Access-Control-Allow-Origin" not in unknown.headers
    for origin in ("https://evil.example", None):
        refused = ask(client, article="tempo:koran:x", origin=origin)
        assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers


def test_embed_answers_are_described_in_openapi(app, client):
    """/openapi.json describes the embed; the suite checks every answer here against it (conftest)."""
    make_site(app)
    preflight = client.options("/embed/tempo/access", headers={"Origin": ORIGIN})
    assert preflight.status_code == 204 and not preflight.get_data()
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert client.options("/embed/tempo/resend", headers={"Origin": ORIGIN}).status_code == 204
    refused = client.options("/embed/tempo/resend", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    headers = {"Origin": ORIGIN, "Accept": "application/json"}
    unknown = client.post("/embed/nope/access", data="{}", headers=headers)
    assert unknown.status_code == 404 and unknown.mimetype == "application/problem+json"
    big = b"{" + b" " * app.config["MAX_CONTENT_LENGTH"] + b"}"
    assert client.post("/embed/tempo/access", data=big, headers={"Origin": ORIGIN}).status_code == 413
    free = ask(client, article="tempo:berita:1", cls="free").get_json()
    assert (free["allowed"], free["banner"], free["wall"]) == (True, None, None)
    spec = client.get("/openapi.json").get_json()
    access = spec["paths"]["/embed/{site_slug}/access"]
    assert access["post"]["security"] == [] and set(access) == {"post", "options"}
    assert {p["name"] for p in access["post"]["parameters"]} == {"site_slug", "lang"}
    with app.test_request_context():
        wrong = Response(json.dumps({**free, "wall": {"kind": "nag", "actions": []}}), mimetype="application/json")
        assert "POST /embed/<site_slug>/access → 200" in openapi.violation("POST", "/embed/<site_slug>/access", wrong)
