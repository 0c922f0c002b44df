"""Grants: meter's signed word that a reader may read an article now, verified offline by the publisher.

Every grant here is verified the way a publisher would: PyJWT's PyJWKClient fetching meter's live
JWK Set over HTTP (meter under a werkzeug server thread), and the demo site's content endpoint,
which verifies with the same library and refuses whatever does not fit.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import timedelta

import jwt
import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from meter.dev.demo import content as demo_content
from meter.dev.redis_server import free_port
from meter.platform import clock
from meter.platform.db import db
from meter.sites.models import GrantKey
from meter.sites.rules import grant_keys as keys
from meter.sites.rules import sites
from tests.conftest import Api, rebuilt

STORY, STORY_ID = "koran-harga-beras", "demo:koran:2026-01-31:beras"
OTHER_STORY_ID = "demo:koran:2026-01-31:krl"


class Live:
    """meter with the demo site, served over HTTP on a free loopback port."""

    def __init__(self, app) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.app = rebuilt(app, PUBLIC_BASE_URL=self.base, DEMO_SITE=True)
        self.app.test_client_class = app.test_client_class
        self.server = make_server("127.0.0.1", port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.runner = self.app.test_cli_runner()

    def flask(self, *args: str) -> str:
        result = self.runner.invoke(args=list(args))
        assert result.exit_code == 0, result.output
        return result.output

    def site(self, slug: str) -> Api:
        with self.app.app_context():
            _site, key = sites.create_site(slug, slug.title(), [self.base], policy={"quota": {"anonymous": 2}})
        return Api(self.app.test_client(), key, slug)

    def jwks_client(self, slug: str) -> jwt.PyJWKClient:
        return jwt.PyJWKClient(f"{self.base}/{slug}/.well-known/jwks.json")

    def content(self, grant: str | None, story: str = STORY) -> tuple[int, str]:
        request = urllib.request.Request(f"{self.base}/demo-site/content/{story}")
        if grant is not None:
            request.add_header("Authorization", f"Bearer {grant}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read().decode()


@pytest.fixture
def live(app):
    served = Live(app)
    yield served
    served.server.shutdown()
    with served.app.app_context():
        db.engine.dispose()


def verify(live: Live, slug: str, grant: str) -> dict:
    """A publisher's check: the key by `kid` from the live JWK Set, the signature, iss, aud and exp."""
    key = live.jwks_client(slug).get_signing_key_from_jwt(grant)
    return jwt.decode(grant, key.key, algorithms=["EdDSA", "ES256"], audience=slug, issuer=live.base)


def access(api: Api, article_id: str = STORY_ID, **body) -> dict:
    response = api.post("/v1/access", json={"article": {"id": article_id, "class": "metered"}, **body})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def embed(live: Live, client, slug: str, article_id: str = STORY_ID, record: bool = True) -> dict:
    body = {"article": {"id": article_id, "class": "metered"}, "record": record}
    response = client.post(f"/embed/{slug}/access", data=json.dumps(body), headers={"Origin": live.base})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_grants_of_the_api_and_the_embed_verify_against_the_live_jwk_set(live):
    api = live.site("demo")
    assert "new grant key" in live.flask("sites", "grant-keys", "create", "demo")
    live.flask("sites", "settings", "demo", "--content-protection", "on", "--grant-lifetime", "45")

    answer = access(api, anonymous_id="anon-000001", grant=True)
    assert answer["reason"] == "unlocked_now"
    claims = verify(live, "demo", answer["grant"])
    assert (claims["art"], claims["aud"], claims["rsn"], claims["iss"]) == (STORY_ID, "demo", "unlocked_now", live.base)
    assert 0 < claims["exp"] - claims["iat"] <= 45 and claims["jti"]
    assert claims["sub"] and "anon-000001" not in claims["sub"]  # a pseudonym, not the id
    header = jwt.get_unverified_header(answer["grant"])
    assert header["alg"] == "EdDSA" and header["kid"].startswith("g")
    again = verify(live, "demo", access(api, anonymous_id="anon-000001", grant=True)["grant"])
    assert (again["rsn"], again["sub"]) == ("already_unlocked", claims["sub"])  # the same reader, the same sub
    nobody = access(api, "demo:x", grant=True)  # no reader, no anonymous id: nothing to count against
    assert (nobody["allowed"], "grant" in nobody) == (False, False)
    free = api.post("/v1/access", json={"article": {"id": "demo:free", "class": "free"}, "grant": True}).get_json()
    assert verify(live, "demo", free["grant"])["rsn"] == "free_content" and "sub" not in jwt.decode(
        free["grant"], options={"verify_signature": False}
    )

    browser = live.app.test_client()
    shown = embed(live, browser, "demo")
    claims = verify(live, "demo", shown["grant"])
    assert (claims["art"], claims["rsn"]) == (STORY_ID, "unlocked_now")
    status, text = live.content(shown["grant"])
    assert status == 200 and "<p>" in text


def test_no_grant_for_a_peek_a_refusal_or_a_site_that_does_not_use_grants(live):
    api = live.site("demo")
    browser = live.app.test_client()
    assert "grant" not in access(api, anonymous_id="anon-000002", grant=True)  # no key yet: nothing to sign with
    live.flask("sites", "grant-keys", "create", "demo")
    assert "grant" not in access(api, "demo:a", anonymous_id="anon-000002")  # neither the setting nor the body asks
    assert "grant" not in embed(live, browser, "demo", "demo:a")  # content protection is off

    live.flask("sites", "settings", "demo", "--grants", "on", "--content-protection", "on")
    peek = access(api, "demo:b", anonymous_id="anon-000003", record=False)
    assert (peek["allowed"], peek["reason"]) == (True, "would_unlock") and "grant" not in peek
    peek = embed(live, browser, "demo", "demo:b", record=False)
    assert (peek["allowed"], peek["reason"]) == (True, "would_unlock") and "grant" not in peek
    for n in range(3):  # the anonymous quota is 2: the third is refused
        answer = access(api, f"demo:q{n}", anonymous_id="anon-000003")
    assert (answer["allowed"], "grant" in answer) == (False, False)
    already = access(api, "demo:q0", anonymous_id="anon-000003", record=False)
    assert (already["allowed"], "grant" in already) == (True, False)  # unlocked before, but a peek all the same


def test_the_content_endpoint_refuses_expired_other_article_and_other_site_grants(live):
    demo, other = live.site("demo"), live.site("other")
    for slug in ("demo", "other"):
        live.flask("sites", "grant-keys", "create", slug)
        live.flask("sites", "settings", slug, "--grants", "on")
    good = access(demo, anonymous_id="anon-000004")["grant"]
    assert live.content(good)[0] == 200
    assert live.content(good, "koran-transportasi")[0] == 401  # a grant for another article
    assert live.content(access(other, anonymous_id="anon-000004")["grant"])[0] == 401  # another site's
    assert live.content(None)[0] == 401 and live.content("not.a.jwt")[0] == 401
    forged = jwt.encode({"aud": "demo", "art": STORY_ID}, "s" * 32, algorithm="HS256", headers={"kid": "x"})
    assert live.content(forged)[0] == 401

    clock.travel(timedelta(minutes=-5))  # made five minutes ago: it lived 60 s
    stale = access(demo, OTHER_STORY_ID, anonymous_id="anon-000005")["grant"]
    clock.reset()
    assert live.content(stale, "koran-transportasi")[0] == 401


def test_a_rotation_keeps_the_old_grants_valid_until_they_expire(live):
    """The verifiers check times by the real clock: the rotation is made in meter's past, so that the
    grants made then are still valid now."""
    api = live.site("demo")
    live.flask("sites", "settings", "demo", "--grants", "on", "--grant-lifetime", "600")
    clock.travel(timedelta(seconds=-sites.GRANT_KEY_AHEAD - 5))
    live.flask("sites", "grant-keys", "create", "demo", "--alg", "ES256")
    before = access(api, anonymous_id="anon-000006")["grant"]
    assert live.content(before)[0] == 200  # the content endpoint now has the set with the old key
    old_kid = jwt.get_unverified_header(before)["kid"]

    assert f"{old_kid} signs until then" in live.flask("sites", "grant-keys", "rotate", "demo")
    listed = json.loads(live.flask("sites", "grant-keys", "list", "demo", "--json"))
    assert [row["state"] for row in listed] == ["signing", "next"]
    new_kid = listed[1]["kid"]
    kids = [key["kid"] for key in live.app.test_client().get("/demo/.well-known/jwks.json").get_json()["keys"]]
    assert kids == [old_kid, new_kid]  # published before it signs: verifiers learn it first
    assert jwt.get_unverified_header(access(api, anonymous_id="anon-000006")["grant"])["kid"] == old_kid

    clock.reset()  # two minutes on: the new key signs
    sites.forget_cached()  # as every process's site cache does within SITE_CACHE_TTL
    after = access(api, anonymous_id="anon-000006")["grant"]
    assert jwt.get_unverified_header(after) == {"alg": "EdDSA", "kid": new_kid, "typ": "JWT"}
    listed = json.loads(live.flask("sites", "grant-keys", "list", "demo", "--json"))
    assert [(row["kid"], row["state"]) for row in listed] == [(old_kid, "published"), (new_kid, "signing")]
    assert verify(live, "demo", after)["art"] == verify(live, "demo", before)["art"] == STORY_ID
    assert live.content(before)[0] == 200  # made just before the rotation: valid until it expires
    demo_content.forget_keys()  # the demo's cached set has lived its lifespan: fetched again
    assert live.content(after)[0] == 200 and live.content(before)[0] == 200

    clock.travel(timedelta(seconds=keys.LIFETIME_MAX + live.app.config["SITE_CACHE_TTL"] + 1))
    with live.app.test_client() as client:
        kids = [key["kid"] for key in client.get("/demo/.well-known/jwks.json").get_json()["keys"]]
    assert kids == [new_kid]  # every grant the old key signed has expired: it is gone from the set

    live.flask("sites", "grant-keys", "retire", "demo", new_kid)  # a leaked key: out at once
    assert live.app.test_client().get("/demo/.well-known/jwks.json").get_json() == {"keys": []}
    assert "grant" not in access(api, "demo:c", anonymous_id="anon-000006")


def test_the_jwk_set_is_public_cacheable_and_holds_no_private_part(live):
    live.site("demo")
    live.flask("sites", "grant-keys", "create", "demo")
    live.flask("sites", "settings", "demo", "--grant-lifetime", "90")
    with urllib.request.urlopen(f"{live.base}/demo/.well-known/jwks.json", timeout=10) as answer:
        assert answer.headers["Cache-Control"] == "public, max-age=90"
        assert answer.headers["Content-Type"] == "application/jwk-set+json"
        [key] = json.loads(answer.read())["keys"]
    assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"} and key["crv"] == "Ed25519"
    assert live.app.test_client().get("/nobody/.well-known/jwks.json").status_code == 404
    with live.app.app_context():
        [row] = db.session.scalars(select(GrantKey)).all()
        assert "PRIVATE KEY" not in row.private_key  # sealed at rest


def test_the_grant_commands_refuse_what_they_cannot_do(live):
    live.site("demo")
    live.flask("sites", "grant-keys", "create", "demo")
    again = live.runner.invoke(args=["sites", "grant-keys", "create", "demo"])
    assert again.exit_code == 1 and "rotate it" in again.output
    gone = live.runner.invoke(args=["sites", "grant-keys", "retire", "demo", "g0000"])
    assert gone.exit_code == 1 and "no published grant key" in gone.output
    for bad in ("5", "3601", "x", "-1"):
        result = live.runner.invoke(args=["sites", "settings", "demo", "--grant-lifetime", bad])
        assert result.exit_code == 1 and "grant-lifetime" in result.output
    assert live.runner.invoke(args=["sites", "settings", "demo", "--content-protection", "yes"]).exit_code == 1
    shown = live.flask("sites", "settings", "demo")
    assert "grant_lifetime\t60 (default)" in shown and "content_protection\t-" in shown


def test_an_owner_makes_rotates_and_retires_grant_keys_in_the_console(app, runner, api):
    from tests.console_helpers import staff_client

    client = staff_client(app, runner, "own@tempo.co", "tempo", "owner")

    def post(url: str, **data):
        page = client.get("/console/tempo/keys?lang=en").get_data(as_text=True)
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        return client.post(url, data={"csrf_token": token, **data})

    assert post("/console/tempo/keys/grants/new").status_code == 303
    assert post("/console/tempo/keys/grants/new").status_code == 303  # a rotation
    with app.app_context():
        made = [(key.kid, keys.state(key)) for key in sites.by_slug("tempo").grant_keys]
    assert [state for _kid, state in made] == ["signing", "next"]
    page = client.get("/console/tempo/keys?lang=en").get_data(as_text=True)
    assert made[0][0] in page and made[1][0] in page and "PRIVATE" not in page
    assert post("/console/tempo/keys/grants/retire", kid=made[0][0]).status_code == 303
    assert client.post("/console/tempo/keys/grants/retire", data={"kid": made[1][0]}).status_code == 400  # no CSRF
    with app.app_context():
        assert [keys.state(key) for key in sites.by_slug("tempo").grant_keys] == ["retired", "signing"]
    rows = json.loads(runner.invoke(args=["audit", "show", "--json"]).output)
    assert [row["action"] for row in rows if row["action"].startswith("grant_key.")] == [
        "grant_key.retire",
        "grant_key.rotate",
        "grant_key.create",
    ]
