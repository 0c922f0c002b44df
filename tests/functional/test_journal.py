"""The ledger journal: an unlock answered while the database could not take it reaches the ledger later.

The database is really cut (tests/faults.py: a TCP proxy for PostgreSQL, the file moved away for SQLite)
while the check answers from Redis; the worker's pass writes the journaled unlock once it is back,
exactly once, and what a reset or a deletion removes from the ledger is not written back afterwards.
The same with a real PostgreSQL server stopped mid-traffic: tests/e2e/test_ledger_outage.py.
"""

from __future__ import annotations

from sqlalchemy import select

from meter import worker
from meter.access.models import Unlock
from meter.access.rules.metering import journal, layout
from meter.platform import clock, redis_keys
from meter.platform.db import db
from meter.sites.models import Site
from meter.sites.rules import sites
from tests.conftest import Api, make_site

PASSWORD = "rahasia-sekali"
VISITOR = "pembaca-0001"


def _ledger(app) -> list[tuple[str, str]]:
    with app.app_context():
        db.session.expire_all()
        return sorted((s, a) for s, a in db.session.execute(select(Unlock.subject, Unlock.article_id)))


def _journal_keys(redis_client) -> list[str]:
    return [key for key in redis_client.keys("m:{*") if key.endswith(":journal")]


def _while_cut(app, cut, action):
    """`action()` while the database is cut; then the database is back and the pool reconnects."""
    with app.app_context():
        cut.cut(db.engine)
    try:
        return action()
    finally:
        cut.restore()


def test_an_unlock_answered_while_the_database_is_cut_reaches_the_ledger_once_and_survives_a_redis_flush(
    cut_app, redis_client
):
    app, cut = cut_app
    api = Api(app.test_client(), make_site(app, policy={"quota": {"anonymous": 2}}), "tempo")
    assert api.access("tempo:koran:1", anonymous_id=VISITOR)["reason"] == "unlocked_now"  # written at once

    def reads():
        second = api.access("tempo:koran:2", anonymous_id=VISITOR)
        third = api.access("tempo:koran:3", anonymous_id=VISITOR)
        return second, third

    second, third = _while_cut(app, cut, reads)
    assert (second["reason"], second["degraded"]) == ("unlocked_now", False)  # the reader is not punished
    assert third["allowed"] is False
    subject = layout.anonymous_subject(VISITOR)
    assert _ledger(app) == [(subject, "tempo:koran:1")]  # the second unlock's own write failed

    with app.app_context():
        worker.run_once()
    assert _ledger(app) == [(subject, "tempo:koran:1"), (subject, "tempo:koran:2")]
    assert _journal_keys(redis_client) == []  # taken: nothing waits
    with app.app_context():
        worker.run_once()
    assert len(_ledger(app)) == 2  # never twice

    redis_client.flushall()  # Redis loses its data: the meter comes back from the ledger
    assert api.access("tempo:koran:3", anonymous_id=VISITOR)["allowed"] is False
    assert api.access("tempo:koran:2", anonymous_id=VISITOR)["reason"] == "already_unlocked"


def test_unlocks_written_at_once_are_taken_from_the_journal_without_a_second_row(app, api, redis_client):
    for visitor in ("pembaca-0001", "pembaca-0002"):
        api.access("tempo:koran:1", anonymous_id=visitor, record=False)  # would_unlock: not journaled
    assert _journal_keys(redis_client) == []
    other = Api(api.client, make_site(app, "kedua", policy={"quota": {"anonymous": 3}}), "kedua")
    for n in range(3):
        assert other.access(f"kedua:{n}", anonymous_id=VISITOR)["reason"] == "unlocked_now"
    assert len(_journal_keys(redis_client)) == 1
    with app.app_context():
        assert journal.drain() == 3
    assert len(_ledger(app)) == 3 and _journal_keys(redis_client) == []


def test_a_reset_is_not_undone_by_the_journal(app, api, cut_app, verified_reader, runner):
    fresh, cut = cut_app
    _reader_id, token = verified_reader()
    cut_api = Api(fresh.test_client(), api.key, "tempo")
    assert cut_api.access("tempo:koran:1", reader_token=token)["reason"] == "unlocked_now"
    answer = _while_cut(fresh, cut, lambda: cut_api.access("tempo:koran:2", reader_token=token))
    assert answer["reason"] == "unlocked_now"
    assert len(_ledger(app)) == 1

    result = runner.invoke(args=["meter", "reset", "tempo", "pembaca@example.com"])
    assert result.exit_code == 0, result.output
    assert "cleared 2 unlocks" in result.output  # the journaled one counted too
    with app.app_context():
        worker.run_once()
    assert _ledger(app) == []  # not written back by a later pass


def test_a_deleted_reader_leaves_no_row_through_the_journal(app, api, cut_app, verified_reader, redis_client):
    fresh, cut = cut_app
    reader_id, token = verified_reader()
    subject = layout.reader_subject(reader_id)
    cut_api = Api(fresh.test_client(), api.key, "tempo")
    assert cut_api.access("tempo:koran:1", reader_token=token)["reason"] == "unlocked_now"
    answer = _while_cut(fresh, cut, lambda: cut_api.access("tempo:koran:2", reader_token=token))
    assert answer["reason"] == "unlocked_now"

    response = api.delete("/v1/readers/me", json={"password": PASSWORD}, headers={"X-Reader-Token": token})
    assert response.status_code == 204, response.get_data(as_text=True)
    rows = _ledger(app)
    assert len(rows) == 2 and all(s.startswith("x:") for s, _ in rows)  # both kept for the counts, unlinked
    with app.app_context():
        site = sites.info(db.session.scalars(select(Site)).one())
        count = app.config["METER_BUCKETS"]
        bucket, _ = layout.place(subject, count)
        key = redis_keys.ledger_journal(site.id, bucket, count)
        label = site.policy.period_at(clock.now()).label
    # a check that raced the deletion journaled one more: it never becomes a row naming the reader
    redis_client.rpush(key, f"{int(clock.now().timestamp())}\t{label}\t{subject}\ttempo:koran:3")
    with app.app_context():
        worker.run_once()
    assert len(_ledger(app)) == 2 and _journal_keys(redis_client) == []
