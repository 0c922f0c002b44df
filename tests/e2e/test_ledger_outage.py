"""The database stopped mid-traffic: every unlock answered meanwhile reaches the ledger once it is back.

A PostgreSQL server of the test's own (tests/servers.py `Postgres`: the machine's shared one is never
stopped) behind a real gunicorn. Visitors with a quota of 2 read while the server is stopped with
`pg_ctl stop -m fast` and started again; the worker's pass then leaves exactly one ledger row per
`unlocked_now` answer, and after Redis loses its data the quota still holds, rebuilt from the ledger.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter

import pytest
from flask_migrate import upgrade
from sqlalchemy import select

from meter import create_app, worker
from meter.access.models import Unlock
from meter.platform import clock
from meter.platform.db import db
from meter.sites.rules import sites
from meter.stats import rules as stats
from tests.conftest import _config_dict, flush_redis, make_site
from tests.e2e.test_servers import post, until
from tests.servers import Gunicorn, Postgres, server_env

pytestmark = [pytest.mark.servers, pytest.mark.database_agnostic, pytest.mark.timeout(120)]  # its own PostgreSQL

VISITORS = 24
QUOTA = 2


@pytest.fixture
def own_postgres():
    server = Postgres()
    reason = server.unavailable()
    if reason:
        pytest.skip(f"a PostgreSQL server of the test's own cannot run here: {reason}")
    try:
        yield server.init().start()
    finally:
        server.remove()


@pytest.fixture
def meter_app(own_postgres, redis_url):
    """The app (as the worker runs it) on that database, migrated, with the suite's Redis emptied."""
    flush_redis(redis_url)
    clock.reset()
    sites.forget_cached()
    stats.forget_pending()
    app = create_app({**_config_dict(), "SQLALCHEMY_DATABASE_URI": own_postgres.url, "REDIS_URL": redis_url})
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


def test_unlocks_answered_while_the_database_is_stopped_reach_the_ledger_and_the_quota_survives_a_redis_flush(
    meter_app, own_postgres, redis_url, tmp_path
):
    key = make_site(meter_app, policy={"quota": {"anonymous": QUOTA, "registered": QUOTA, "verified": QUOTA}})
    # The site's entry outlives the outage in each process (the default is 10 s), as in production.
    env = server_env(own_postgres.url, redis_url, SITE_CACHE_TTL="300")
    server = Gunicorn(env, workers=1, threads=4, log=tmp_path / "gunicorn.log")
    visitors = [f"pembaca-{n:04d}" for n in range(VISITORS)]
    answers: list[tuple[str, str, dict]] = []  # (visitor, article, answer), in the order they came

    def check(visitor: str, article: str, cls: str = "metered") -> dict:
        body = {"anonymous_id": visitor, "article": {"id": article, "class": cls}}
        status, answer = post(server.url + "/v1/access", key, body, timeout=10)
        assert status == 200, (status, answer)
        return answer

    def traffic(jobs: list[tuple[str, str, str]], pause: float = 0.0) -> list[threading.Thread]:
        """Four clients working through `jobs` (visitor, article, class); answers go to `answers`."""
        waiting: queue.Queue = queue.Queue()
        for job in jobs:
            waiting.put(job)

        def client() -> None:
            while True:
                try:
                    visitor, article, cls = waiting.get_nowait()
                except queue.Empty:
                    return
                answers.append((visitor, article, check(visitor, article, cls)))
                time.sleep(pause)

        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        return clients

    def finish(clients: list[threading.Thread]) -> None:
        for thread in clients:
            thread.join(30)

    server.start()
    try:
        # Each visitor's meter is loaded into Redis while the database is up.
        finish(traffic([(visitor, "tempo:beranda", "free") for visitor in visitors]))
        assert {answer["reason"] for _, _, answer in answers} == {"free_content"}
        answers.clear()
        # Every visitor asks for one article more than the quota; the database stops mid-traffic.
        articles = [f"tempo:koran:{n}" for n in range(1, QUOTA + 2)]
        clients = traffic([(v, article, "metered") for article in articles for v in visitors], pause=0.05)
        until(lambda: len(answers) >= 10, "traffic to flow")
        own_postgres.stop("fast")
        stopped = len(answers)
        until(lambda: len(answers) >= stopped + 20 or len(answers) == VISITORS * len(articles), "answers meanwhile")
        restarted = len(answers)
        own_postgres.start()
        finish(clients)

        unlocked = [(v, a) for v, a, answer in answers if answer["reason"] == "unlocked_now"]
        during = [(v, a) for v, a, answer in answers[stopped:restarted] if answer["reason"] == "unlocked_now"]
        assert len(answers) == VISITORS * len(articles)
        assert len(during) >= 5, f"only {len(during)} unlocks were answered while the database was stopped"
        per_visitor = Counter(v for v, _ in unlocked)
        assert max(per_visitor.values()) <= QUOTA

        with meter_app.app_context():
            worker.run_once()  # the worker's pass, once the database is back
            rows = db.session.execute(select(Unlock.subject, Unlock.article_id)).all()
        assert len(rows) == len(unlocked)  # one ledger row per unlock answered, none twice
        assert sorted((s.removeprefix("a:"), a) for s, a in rows) == sorted(unlocked)

        # Redis loses its data: each meter is rebuilt from the ledger, and nobody reads past the quota.
        flush_redis(redis_url)
        answers.clear()
        finish(traffic([(v, f"tempo:koran:{QUOTA + 2}", "metered") for v in visitors]))
    finally:
        server.stop()
    per_visitor.update(v for v, _, answer in answers if answer["reason"] == "unlocked_now")
    assert max(per_visitor.values()) == QUOTA, [v for v, n in per_visitor.items() if n > QUOTA]
