"""A giver's deletion takes their gifts with it: the links die for every device, no row and no Redis key
of them is left, a Redis that lost the delete cannot bring a link back, the export lists the gifts, and
no later reader is given the deleted one's id (SQLite AUTOINCREMENT; PostgreSQL sequences). Real Redis,
real SQL, over HTTP and the operator's command."""

from __future__ import annotations

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from meter.access.rules.metering import layout
from meter.gifts.models import Gift, GiftOpening
from meter.platform.db import db
from tests.conftest import past_the_mail_budget
from tests.functional.test_gifts import ARTICLE, give, read, set_policy, subscriber

GIVER = "langganan@example.com"
PASSWORD = "rahasia-sekali"


def gift_keys(redis_client) -> list[str]:
    """Every gift key in the suite's Redis (redis_keys.gift_state / gift_devices: `m:{g<site>:<nonce>}…`)."""
    return sorted(redis_client.scan_iter(match="m:{g*", count=1000))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def refused(answer: dict) -> bool:
    """The gift did not let the device in (a reader may still read on their own quota)."""
    return answer["reason"] != "gift" and answer.get("gift") in ("invalid", "revoked")


def delete_giver(api, runner, token: str, how: str) -> None:
    if how == "reader":
        response = api.delete("/v1/readers/me", json={"password": PASSWORD}, headers={"X-Reader-Token": token})
        assert response.status_code == 204, response.get_data(as_text=True)
    else:
        deleted = runner.invoke(args=["readers", "delete", "tempo", GIVER, "--yes"])
        assert deleted.exit_code == 0, deleted.output
        assert "1 gift" in deleted.output


@pytest.fixture
def giver(app, api, verified_reader):
    """Tempo with gifts on, and a subscriber who gave ARTICLE: (reader_id, reader_token, gift_token)."""
    set_policy(app, "tempo", gifts__per_period="10")
    reader_id, token = subscriber(api, verified_reader, GIVER)
    made = give(api, token)
    assert made.status_code == 201, made.get_data(as_text=True)
    return reader_id, token, made.get_json()["gift_token"]


@pytest.mark.parametrize("how", ["reader", "operator"])
def test_a_deleted_givers_gift_link_is_refused_everywhere_and_leaves_nothing(
    app, api, runner, giver, verified_reader, redis_client, how
):
    giver_id, token, gift_token = giver
    _friend_id, friend = verified_reader("teman@example.com")
    assert read(api, gift_token, anonymous_id="device-before")["reason"] == "gift"
    assert read(api, gift_token, reader_token=friend)["reason"] == "gift"
    assert gift_keys(redis_client)

    delete_giver(api, runner, token, how)

    before = read(api, gift_token, anonymous_id="device-before")  # a device that opened it before
    assert refused(before) and before["allowed"] is False
    assert refused(read(api, gift_token, reader_token=friend))
    assert refused(read(api, gift_token, anonymous_id="device-new"))  # and a new one
    with app.app_context():
        assert count(Gift) == 0 and count(GiftOpening) == 0
    assert gift_keys(redis_client) == []

    # the next reader is not given the deleted giver's id, and sees no gift of theirs
    past_the_mail_budget()
    new_id, new_token = subscriber(api, verified_reader, "baru@example.com")
    assert new_id != giver_id and new_id > giver_id
    listed = api.get("/v1/gifts", headers={"X-Reader-Token": new_token})
    assert listed.status_code == 200 and listed.get_json()["gifts"] == []


def test_a_redis_that_lost_the_delete_cannot_bring_the_link_back(app, api, giver, redis_client):
    """Redis restored from before the deletion (a snapshot, a replica that missed it): the gift's keys are
    back, its row is not. A new device is checked against SQL and refused, and that kills the link for the
    devices that had it too."""
    _giver_id, token, gift_token = giver
    assert read(api, gift_token, anonymous_id="device-before")["reason"] == "gift"
    saved = {key: (redis_client.dump(key), redis_client.pttl(key)) for key in gift_keys(redis_client)}
    delete_giver(api, None, token, "reader")
    assert gift_keys(redis_client) == []
    for key, (value, ttl) in saved.items():
        redis_client.restore(key, max(ttl, 0), value, replace=True)

    assert refused(read(api, gift_token, anonymous_id="device-new"))
    assert refused(read(api, gift_token, anonymous_id="device-before"))
    assert gift_keys(redis_client) == []


def test_the_export_lists_the_gifts_made(app, api, giver):
    _giver_id, token, gift_token = giver
    assert read(api, gift_token, anonymous_id="device-0001")["reason"] == "gift"
    data = api.get("/v1/readers/me/export", headers={"X-Reader-Token": token}).get_json()
    with app.app_context():
        gift = db.session.scalar(select(Gift))
        expected = {
            "article_id": ARTICLE["id"],
            "article_class": "metered",
            "url": ARTICLE["url"],  # the article's, without the link's secret
            "created_at": gift.created_at.isoformat() + "+00:00",
            "expires_at": gift.expires_at.isoformat() + "+00:00",
            "revoked_at": None,
            "device_limit": 10,
            "devices": 1,
        }
    assert data["gifts"] == [expected]
    assert gift_token not in str(data)  # an export is no copy of a working link (as its mails' links are masked)


def test_a_deleted_readers_id_is_never_given_again(app, api, giver, verified_reader):
    """The deleted reader had the highest id: SQLite without AUTOINCREMENT gave it to the next one, who then
    listed the deleted giver's gifts (their rows stayed) as their own."""
    giver_id, token, _gift_token = giver
    delete_giver(api, None, token, "reader")
    past_the_mail_budget()
    new_id, new_token = verified_reader("baru@example.com")
    assert new_id > giver_id
    assert api.get("/v1/gifts", headers={"X-Reader-Token": new_token}).get_json()["gifts"] == []


def test_a_deleted_readers_openings_of_others_gifts_stay_counted_but_name_nobody(
    app, api, giver, verified_reader, redis_client, redis_url
):
    _giver_id, token, gift_token = giver
    friend_id, friend = verified_reader("teman@example.com")
    assert read(api, gift_token, reader_token=friend)["reason"] == "gift"
    theirs = layout.hash64(layout.reader_subject(friend_id))
    with app.app_context():
        assert db.session.scalar(select(GiftOpening.device)) == theirs.hex()
    redis = redis_lib.Redis.from_url(redis_url)  # bytes: a gift's devices are 8-byte hashes
    [devices_key] = [key for key in gift_keys(redis_client) if key.endswith(":d")]
    assert redis.sismember(devices_key, theirs)

    response = api.delete("/v1/readers/me", json={"password": PASSWORD}, headers={"X-Reader-Token": friend})
    assert response.status_code == 204
    with app.app_context():
        [device] = db.session.scalars(select(GiftOpening.device)).all()
    assert device != theirs.hex()
    assert redis.smembers(devices_key) == {bytes.fromhex(device)}
    listed = api.get("/v1/gifts", headers={"X-Reader-Token": token}).get_json()
    assert listed["gifts"][0]["devices"] == 1  # still one of the gift's devices


def test_a_redis_gone_away_right_after_the_commit_leaves_the_links_revoked(app, api, giver, monkeypatch):
    """The keys are written revoked before the rows go: if Redis is away when they should be deleted
    after the commit, what it keeps refuses every device until it expires."""
    from meter.gifts.rules import store
    from meter.platform.redis_conn import RedisUnavailable

    _giver_id, token, gift_token = giver
    assert read(api, gift_token, anonymous_id="device-before")["reason"] == "gift"

    def away(*_args):
        raise RedisUnavailable("gone")

    monkeypatch.setattr(store, "forget_links", away)
    delete_giver(api, None, token, "reader")
    before = read(api, gift_token, anonymous_id="device-before")
    assert refused(before) and before["gift"] == "revoked"
    assert refused(read(api, gift_token, anonymous_id="device-new"))
