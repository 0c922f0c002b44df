"""A recording check whose Redis reply is lost: the script ran (or not), the answer never came back.

A real Redis behind a real TCP proxy that lets the EVALSHA through and drops the reply. Before the
fix the unlock lived in Redis only and was gone with Redis's data; now the check notes a doubt and
the worker (`flask meter settle`, and every pass of `flask mail worker`) settles it from Redis.
"""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from meter import create_app
from meter.access.models import Unlock, UnlockDoubt
from meter.access.rules.metering import doubts, layout
from meter.platform import clock
from meter.platform.db import db
from meter.sites.models import Site
from meter.sites.rules import sites
from tests.conftest import _config_dict, flush_redis
from tests.faults import TcpProxy


@pytest.fixture
def proxy(redis_url):
    if redis_url.startswith("redis+cluster://"):
        pytest.skip("one Redis behind one proxy")
    target = urlsplit(redis_url)
    proxy = TcpProxy(target.hostname, target.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied(app, proxy):
    """The same app (database, Redis) reaching Redis through the proxy."""
    return create_app(
        {
            **_config_dict(),
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
            "REDIS_SOCKET_TIMEOUT": 0.25,  # production's: a lost reply costs this long
        }
    )


def _check(client, key: str, token: str, article: str) -> dict:
    response = client.post(
        "/v1/access",
        json={"reader_token": token, "article": {"id": article}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _ledger(app, subject: str) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(Unlock.article_id).where(Unlock.subject == subject)))


def _in_redis(app, subject: str, article: str) -> bool:
    with app.app_context():
        site = sites.info(db.session.scalars(select(Site)).one())
        period = site.policy.period_at(clock.now())
        return layout.hash64(article) in doubts.held_in_redis(site.id, subject, period)


def _eventually(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _doubts(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(UnlockDoubt))


def test_an_unlock_whose_reply_was_lost_reaches_the_ledger_and_survives_a_redis_flush(
    app, api, verified_reader, proxy, proxied, runner, redis_url
):
    reader_id, token = verified_reader()
    subject = f"r:{reader_id}"
    assert _check(proxied.test_client(), api.key, token, "koran:1")["reason"] == "unlocked_now"

    proxy.drop_replies = True
    lost = _check(proxied.test_client(), api.key, token, "koran:2")
    assert lost["degraded"] is True  # the reply never came: answered without Redis
    # ... but the script ran and unlocked it: the proxy hands the request on by itself, a moment later
    # on a busy machine than the client gave up.
    assert _eventually(lambda: _in_redis(app, subject, "koran:2"))
    assert _ledger(app, subject) == ["koran:1"]
    assert _doubts(app) == 1

    result = runner.invoke(args=["meter", "settle"])  # too soon: the script might still be running
    assert result.exit_code == 1 and "0 into the ledger" in result.output and "1 left" in result.output

    clock.travel(timedelta(seconds=10))
    result = runner.invoke(args=["meter", "settle"])
    assert result.exit_code == 0, result.output
    assert "1 into the ledger (found in Redis), 0 forgotten" in result.output
    assert _ledger(app, subject) == ["koran:1", "koran:2"]
    assert _doubts(app) == 0

    flush_redis(redis_url)  # Redis loses everything: the meter is rebuilt from the ledger
    again = api.access("koran:2", reader_token=token)
    assert (again["reason"], again["meter"]["used"]) == ("already_unlocked", 2)
    assert api.access("koran:3", reader_token=token)["reason"] == "quota_exhausted"


def test_a_refused_connection_leaves_no_doubt(app, api, verified_reader, proxy, proxied):
    """Nothing listens: the connection is refused and the EVALSHA never leaves, so nothing can have
    been unlocked. (Before, this noted a doubt too, which the worker could only forget.)"""
    _reader_id, token = verified_reader()
    proxy.stop()
    assert _check(proxied.test_client(), api.key, token, "koran:1")["degraded"] is True
    assert _doubts(app) == 0


def test_a_doubt_that_redis_never_saw_is_forgotten_by_the_worker(app, api, verified_reader, runner):
    """A request lost with its reply (sent, never run): the doubt is settled as "not unlocked"."""
    reader_id, token = verified_reader()
    subject = f"r:{reader_id}"
    with app.app_context():
        doubts.note(db.session.scalars(select(Site)).one().id, subject, "koran:1", clock.now())
    assert _doubts(app) == 1

    clock.travel(timedelta(seconds=10))
    result = runner.invoke(args=["mail", "worker", "--once"])  # the worker settles on every pass
    assert result.exit_code == 0, result.output
    assert _doubts(app) == 0
    assert _ledger(app, subject) == []
    assert not _in_redis(app, subject, "koran:1")
    assert api.access("koran:1", reader_token=token)["reason"] == "unlocked_now"  # still the reader's to take


def test_refusals_and_free_articles_leave_no_doubt(app, api, verified_reader, proxy, proxied):
    _reader_id, token = verified_reader()
    proxy.drop_replies = True
    client = proxied.test_client()
    for body in (
        {"reader_token": token, "article": {"id": "berita:1", "class": "free"}},
        {"reader_token": token, "article": {"id": "laput:1", "class": "premium"}},
        {"reader_token": token, "article": {"id": "koran:1"}, "record": False},
    ):
        proxied.extensions["meter.redis"].mark_up()  # skip the circuit breaker: every check tries Redis
        response = client.post("/v1/access", json=body, headers={"Authorization": f"Bearer {api.key}"})
        assert response.status_code == 200 and response.get_json()["degraded"] is True
    assert _doubts(app) == 0


def test_a_script_sent_twice_over_a_broken_connection_still_reaches_the_ledger(
    app, api, verified_reader, proxy, proxied, redis_url
):
    """The connection breaks after Redis ran the script: the client redials and sends it again, which
    answers "already unlocked". The first run's unlock must still be written to the ledger."""
    reader_id, token = verified_reader()
    subject = f"r:{reader_id}"
    client = proxied.test_client()
    assert _check(client, api.key, token, "koran:1")["reason"] == "unlocked_now"  # the connection is open

    proxy.cut_after_request = True
    answer = _check(client, api.key, token, "koran:2")
    assert (answer["reason"], answer["degraded"]) == ("already_unlocked", False)  # the second run's answer
    assert _ledger(app, subject) == ["koran:1", "koran:2"]
    assert _doubts(app) == 0

    flush_redis(redis_url)
    assert api.access("koran:2", reader_token=token)["reason"] == "already_unlocked"
    assert api.access("koran:3", reader_token=token)["reason"] == "quota_exhausted"


def test_a_doubt_in_a_named_meter_is_settled_in_that_meter(app, api, verified_reader, proxy, proxied, runner):
    """The doubt keeps its meter: the worker looks in that meter's keys and writes that meter's row."""
    changed = runner.invoke(
        args=["sites", "policy", "tempo", "--set", "meters.koran.quota.verified=2", "--set", "sections.koran=koran"]
    )
    assert changed.exit_code == 0, changed.output
    reader_id, token = verified_reader()
    subject = f"r:{reader_id}"

    def check(article: str) -> dict:
        body = {"reader_token": token, "article": {"id": article, "section": "koran"}}
        response = proxied.test_client().post("/v1/access", json=body, headers={"Authorization": f"Bearer {api.key}"})
        return response.get_json()

    assert check("koran:1")["reason"] == "unlocked_now"
    proxy.drop_replies = True
    assert check("koran:2")["degraded"] is True
    with app.app_context():
        site = sites.info(db.session.scalars(select(Site)).one())
        meter = site.policy.meter_named("koran")
        assert db.session.scalars(select(UnlockDoubt.meter)).all() == ["koran"]

        def held() -> bool:
            return layout.hash64("koran:2") in doubts.held_in_redis(
                site.id, subject, meter.period_at(clock.now()), "koran"
            )

        assert _eventually(held)
    clock.travel(timedelta(seconds=10))
    result = runner.invoke(args=["meter", "settle"])
    assert result.exit_code == 0 and "1 into the ledger" in result.output, result.output
    with app.app_context():
        rows = db.session.execute(select(Unlock.meter, Unlock.article_id).where(Unlock.subject == subject))
        assert sorted(rows) == [("koran", "koran:1"), ("koran", "koran:2")]
