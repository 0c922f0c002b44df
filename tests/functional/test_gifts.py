"""Gift articles: giving, reading with a gift link (nobody's meter moves), the device limit, expiry,
revocation, the refusals, the figures, and a Redis that lost the gifts. Real Redis, real SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from meter.access.models import Unlock
from meter.gifts.models import GiftOpening
from meter.platform import clock
from meter.platform.db import db
from meter.sites.rules import sites
from tests.conftest import Api, make_site

ARTICLE = {"id": "tempo:koran:2026-11-30:beras", "class": "metered", "url": "https://tempo.co/koran/beras?utm=wa#atas"}


def set_policy(app, slug: str, **changes: str) -> None:
    with app.app_context():
        site = sites.by_slug(slug)
        policy = dict(site.policy)
        from meter.sites.rules.policy import set_dotted

        for key, value in changes.items():
            policy = set_dotted(policy, key.replace("__", "."), value)
        site.policy = policy
        db.session.commit()
        sites.forget_cached()


def subscriber(api: Api, verified_reader, email: str = "langganan@example.com") -> tuple[int, str]:
    reader_id, token = verified_reader(email)
    until = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    assert api.put(f"/v1/readers/{reader_id}/subscription", json={"until": until}).status_code == 200
    return reader_id, token


@pytest.fixture
def gifting(app, api, verified_reader):
    """Tempo's gifts (10 a period, 14 days, 10 devices) and a subscriber: (api, subscriber's token)."""
    set_policy(app, "tempo", gifts__per_period="10")
    _reader_id, token = subscriber(api, verified_reader)
    return api, token


def give(api: Api, token: str, article: dict = ARTICLE):
    return api.post("/v1/gifts", json={"reader_token": token, "article": article})


def read(api: Api, gift_token: str | None, article_id: str = ARTICLE["id"], **who) -> dict:
    body = {"article": {"id": article_id, "class": "metered"}, **who}
    if gift_token is not None:
        body["gift_token"] = gift_token
    response = api.post("/v1/access", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def used(api: Api, token: str) -> int:
    return api.get("/v1/readers/me", headers={"X-Reader-Token": token}).get_json()["meter"]["used"]


def test_a_gift_lets_a_visitor_and_a_reader_with_none_left_read_and_neither_meter_moves(app, gifting, verified_reader):
    api, giver = gifting
    made = give(api, giver)
    assert made.status_code == 201, made.get_data(as_text=True)
    gift = made.get_json()
    url = urlsplit(gift["url"])
    assert (url.scheme, url.netloc, url.path, url.fragment) == ("https", "tempo.co", "/koran/beras", "atas")
    assert parse_qs(url.query) == {"utm": ["wa"], "gift": [gift["gift_token"]]}
    assert gift["gifts_left"] == 9
    assert datetime.fromisoformat(gift["expires_at"]) - datetime.now(UTC) > timedelta(days=13, hours=23)

    _friend_id, friend = verified_reader("teman@example.com")
    for n in range(2):  # Tempo's verified quota: 2, both spent
        assert read(api, None, f"tempo:koran:other-{n}", reader_token=friend)["reason"] == "unlocked_now"
    assert read(api, None, reader_token=friend)["reason"] == "quota_exhausted"
    gifted = read(api, gift["gift_token"], reader_token=friend)
    assert (gifted["allowed"], gifted["reason"], gifted["reader"]["token"]) == (True, "gift", "valid")
    assert "gift" not in gifted
    assert used(api, friend) == 2

    assert read(api, None, anonymous_id="visitor-0001")["reason"] == "registration_required"
    visitor = read(api, gift["gift_token"], anonymous_id="visitor-0001")
    assert (visitor["allowed"], visitor["reason"], visitor["reader"]["state"]) == (True, "gift", "anonymous")
    assert read(api, gift["gift_token"], anonymous_id="visitor-0001")["reason"] == "gift"  # again: still in
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Unlock).where(Unlock.subject.like("a:%"))) == 0
        assert db.session.scalar(select(func.count()).select_from(GiftOpening)) == 2  # two devices, in SQL

    again = give(api, giver)  # the same article in the same period: the same link, not counted
    assert again.status_code == 200
    assert (again.get_json()["gift_token"], again.get_json()["gifts_left"]) == (gift["gift_token"], 9)

    listed = api.get("/v1/gifts", headers={"X-Reader-Token": giver}).get_json()
    assert listed["gifts_left"] == 9
    (entry,) = listed["gifts"]
    assert (entry["gift_token"], entry["state"], entry["devices"], entry["device_limit"]) == (
        gift["gift_token"],
        "active",
        2,
        10,
    )
    assert entry["opened"] == 3  # three gifted reads
    assert entry["article"] == {"id": ARTICLE["id"], "class": "metered"}


def test_the_eleventh_device_is_refused_and_the_first_ten_keep_reading(app, gifting):
    api, giver = gifting
    token = give(api, giver).get_json()["gift_token"]
    for n in range(10):
        assert read(api, token, anonymous_id=f"device-{n:04d}")["reason"] == "gift"
    eleventh = read(api, token, anonymous_id="device-0010")
    assert (eleventh["allowed"], eleventh["reason"], eleventh["gift"]) == (
        False,
        "registration_required",
        "device_limit",
    )
    assert read(api, token, anonymous_id="device-0010")["gift"] == "device_limit"  # remembered, same answer
    assert read(api, token, anonymous_id="device-0003")["reason"] == "gift"


def test_a_gift_expires_after_gifts_days(app, gifting):
    api, giver = gifting
    set_policy(app, "tempo", gifts__days="3", period="rolling:30d")  # 3 days on: still this period
    token = give(api, giver).get_json()["gift_token"]
    assert read(api, token, anonymous_id="visitor-0001")["reason"] == "gift"
    clock.travel(timedelta(days=3, seconds=1))
    expired = read(api, token, anonymous_id="visitor-0001")
    assert (expired["allowed"], expired["gift"]) == (False, "expired")
    listed = api.get("/v1/gifts", headers={"X-Reader-Token": giver}).get_json()
    assert listed["gifts"][0]["state"] == "expired"
    fresh = give(api, giver)  # the same article again: a fresh link, still not counted
    assert fresh.status_code == 200
    assert fresh.get_json()["gift_token"] != token and fresh.get_json()["gifts_left"] == 9
    assert read(api, fresh.get_json()["gift_token"], anonymous_id="visitor-0001")["reason"] == "gift"


def test_a_revoked_link_stops_at_once_everywhere(app, gifting, verified_reader):
    api, giver = gifting
    token = give(api, giver).get_json()["gift_token"]
    assert read(api, token, anonymous_id="visitor-0001")["reason"] == "gift"
    _other_id, other = subscriber(api, verified_reader, "lain@example.com")
    assert api.delete(f"/v1/gifts/{token}", headers={"X-Reader-Token": other}).status_code == 404  # not theirs
    assert read(api, token, anonymous_id="visitor-0001")["reason"] == "gift"
    assert api.delete(f"/v1/gifts/{token}", headers={"X-Reader-Token": giver}).status_code == 204
    for who in ("visitor-0001", "visitor-0002"):
        answer = read(api, token, anonymous_id=who)
        assert (answer["allowed"], answer["gift"]) == (False, "revoked")
    assert api.delete(f"/v1/gifts/{token}", headers={"X-Reader-Token": giver}).status_code == 204  # idempotent
    assert api.delete("/v1/gifts/not-a-token", headers={"X-Reader-Token": giver}).status_code == 404


def test_a_revocation_reaches_a_process_that_had_the_gift_in_memory(app, gifting, redis_url, database_url):
    """Two apps, as two processes: the one that did not revoke learns it from Redis on the next read."""
    from meter import create_app
    from tests.conftest import _config_dict

    api, giver = gifting
    token = give(api, giver).get_json()["gift_token"]
    other = create_app({**_config_dict(), "SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url})
    other_api = Api(other.test_client(), api.key, "tempo")
    assert read(other_api, token, anonymous_id="visitor-0001")["reason"] == "gift"
    assert api.delete(f"/v1/gifts/{token}", headers={"X-Reader-Token": giver}).status_code == 204
    assert read(other_api, token, anonymous_id="visitor-0001")["gift"] == "revoked"


def test_who_may_give_and_what(app, api, verified_reader):
    _reader_id, plain = verified_reader("biasa@example.com")
    set_policy(app, "tempo", gifts__per_period="2")
    refused = give(api, plain)
    assert refused.status_code == 403 and refused.get_json()["type"].endswith("/gift-not-allowed")
    _sub_id, sub = subscriber(api, verified_reader)
    assert give(api, sub, {**ARTICLE, "class": "free"}).status_code == 422
    off_site = give(api, sub, {**ARTICLE, "url": "https://evil.example/koran/beras"})
    assert off_site.status_code == 422 and "article.url" in off_site.get_json()["errors"]
    assert give(api, "not-a-token").status_code == 401
    assert give(api, sub, {**ARTICLE, "id": "tempo:a"}).status_code == 201
    assert give(api, sub, {**ARTICLE, "id": "tempo:b"}).get_json()["gifts_left"] == 0
    limit = give(api, sub, {**ARTICLE, "id": "tempo:c"})
    assert limit.status_code == 403 and limit.get_json()["type"].endswith("/gift-limit-reached")
    assert give(api, sub, {**ARTICLE, "id": "tempo:a"}).status_code == 200  # the same article: still fine
    set_policy(app, "tempo", gifts__per_period="0")
    off = give(api, sub, {**ARTICLE, "id": "tempo:d"})
    assert off.status_code == 403 and off.get_json()["type"].endswith("/gift-not-allowed")


def test_bad_and_foreign_gift_tokens_are_ignored_with_invalid(app, gifting, client):
    api, giver = gifting
    token = give(api, giver).get_json()["gift_token"]
    for bad in ("", "x" * 32, token[:-1] + ("A" if token[-1] != "A" else "B"), "ü" * 40, "a" * 256):
        answer = read(api, bad, anonymous_id="visitor-0001")
        assert (answer["allowed"], answer["gift"]) == (False, "invalid"), bad
    other = read(api, token, "tempo:koran:another-article", anonymous_id="visitor-0001")
    assert (other["allowed"], other["gift"]) == (False, "invalid")
    nobody = read(api, token)  # no reader, no anonymous id: no device to count it by
    assert (nobody["allowed"], nobody["gift"]) == (False, "invalid")
    key = Api(client, make_site(app, "lain", ("https://lain.example",)), "lain")
    assert read(key, token, anonymous_id="visitor-0001")["gift"] == "invalid"  # another site's gift
    assert read(api, token, anonymous_id="visitor-0001")["reason"] == "gift"  # the right article, at last


def test_gifted_reads_are_counted_in_the_figures(app, gifting):
    api, giver = gifting
    token = give(api, giver).get_json()["gift_token"]
    read(api, token, anonymous_id="visitor-0001")
    read(api, token, anonymous_id="visitor-0002")
    read(api, None, "tempo:warm", anonymous_id="visitor-0003")  # a script call carries the waiting counts
    today = api.get("/v1/stats").get_json()["days"][-1]
    assert today["views"]["gift"] == 2
    assert today["gifts_made"] == 1
    quiet = api.get("/v1/stats?from=2026-01-01&to=2026-01-01").get_json()["days"][0]["views"]
    assert {reason: quiet[reason] for reason in ("gift", "crawler", "preview")} == dict.fromkeys(
        ("gift", "crawler", "preview"), 0
    )  # a day without any: every figure 0, the new reasons too


def test_a_redis_that_lost_the_gift_rebuilds_it_from_sql_and_the_limit_holds(app, gifting, redis_client):
    api, giver = gifting
    token = give(api, giver).get_json()["gift_token"]
    for n in range(3):
        assert read(api, token, anonymous_id=f"device-{n:04d}")["reason"] == "gift"
    redis_client.flushall()
    answers = [read(api, token, anonymous_id=f"device-{n:04d}") for n in range(12)]
    assert [a["reason"] == "gift" for a in answers] == [True] * 10 + [False] * 2
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(GiftOpening)) == 10


def test_the_embed_opens_a_gift_link_and_a_subscriber_gets_the_gift_button(app, gifting, client):
    _api, giver = gifting
    origin = {"Origin": "https://tempo.co"}
    subscriber_browser = app.test_client()
    subscriber_browser.set_cookie("meter_r_tempo", giver)
    page = {"article": {"id": ARTICLE["id"], "class": "metered"}, "url": "https://tempo.co/koran/beras"}
    seen = subscriber_browser.post("/embed/tempo/access", json=page, headers=origin).get_json()
    assert (seen["reason"], seen["can_give"]) == ("subscriber", True)
    button = subscriber_browser.get("/embed/tempo/gifts?lang=id", headers=origin)
    assert button.status_code == 200
    assert button.get_json() == {"gifts_left": 10, "label": "Hadiahkan artikel ini (10 tersisa)"}
    made = subscriber_browser.post("/embed/tempo/gifts?lang=id", json=page, headers=origin)
    assert made.status_code == 201, made.get_data(as_text=True)
    body = made.get_json()
    assert body["label"] == "Hadiahkan artikel ini (9 tersisa)" and body["copy_label"] == "Salin Link"
    assert made.headers["Access-Control-Allow-Origin"] == "https://tempo.co"
    gift = parse_qs(urlsplit(body["url"]).query)["gift"][0]

    stranger = app.test_client()
    walled = stranger.post("/embed/tempo/access", json=page, headers=origin).get_json()
    assert (walled["allowed"], walled["wall"]["kind"], walled["can_give"]) == (False, "register", False)
    opened = stranger.post("/embed/tempo/access", json={**page, "gift_token": gift}, headers=origin).get_json()
    assert (opened["allowed"], opened["reason"], opened["wall"]) == (True, "gift", None)
    assert opened["banner"] == "Artikel ini hadiah dari pelanggan Tempo"  # whom to thank, from the site's name
    assert stranger.get("/embed/tempo/gifts", headers=origin).status_code == 401
    assert subscriber_browser.get("/embed/tempo/gifts", headers={"Origin": "https://evil.example"}).status_code == 403


def test_an_amp_page_opened_from_a_gift_link_is_granted(app, gifting, client):
    api, giver = gifting
    token = give(api, giver).get_json()["gift_token"]
    query = {
        "rid": "amp-friend-0001",
        "url": f"https://tempo.co/amp/koran/beras?gift={token}",
        "article": ARTICLE["id"],
    }
    granted = client.get("/amp/tempo/authorization", query_string=query).get_json()
    assert (granted["granted"], granted["grantReason"], granted["reason"]) == (True, "FREE", "gift")
    assert client.post("/amp/tempo/pingback", query_string=query).status_code == 204
    listed = api.get("/v1/gifts", headers={"X-Reader-Token": giver}).get_json()["gifts"][0]
    assert listed["devices"] == 1  # the pingback counted the rid as a device; the authorization did not
    plain = client.get("/amp/tempo/authorization", query_string={**query, "url": "https://tempo.co/amp/koran/beras"})
    assert plain.get_json()["granted"] is False


def test_a_signed_in_reader_is_offered_no_login_on_the_premium_wall_and_a_way_back(app, verified_reader):
    """The premium wall of a reader who is signed in: "Berlangganan" only (no "Masuk", no provider); the
    account link leads back to the article."""
    _reader_id, token = verified_reader("pembaca@example.com")
    origin = {"Origin": "https://tempo.co"}
    page = {"article": {"id": "tempo:laput:1", "class": "premium"}, "url": "https://tempo.co/laput/1"}
    stranger = app.test_client().post("/embed/tempo/access", json=page, headers=origin).get_json()
    assert [action["kind"] for action in stranger["wall"]["actions"]] == ["subscribe", "login"]
    reader = app.test_client()
    reader.set_cookie("meter_r_tempo", token)
    seen = reader.post("/embed/tempo/access?lang=id", json=page, headers=origin).get_json()
    assert seen["logged_in"] and seen["wall"]["kind"] == "subscribe"
    assert [action["kind"] for action in seen["wall"]["actions"]] == ["subscribe"]
    assert seen["account"]["url"].endswith("/tempo/account?next=https%3A%2F%2Ftempo.co%2Flaput%2F1&lang=id")
