"""One gift opened 200 times at once, by 200 different visitors, across 2 gunicorn servers sharing one
Redis and one database: exactly `gifts.devices` get in, and SQL agrees with Redis."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from meter.gifts.models import GiftOpening
from meter.platform.db import db
from tests.e2e.test_servers import post
from tests.functional.test_gifts import gifting, give  # noqa: F401  (gifting: the fixture)
from tests.servers import Gunicorn, server_env

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]


def test_200_concurrent_openings_across_two_servers_let_exactly_the_device_limit_in(
    app,
    gifting,  # noqa: F811 (the imported fixture)
    database_url,
    redis_url,
    tmp_path,
):
    api, giver = gifting
    token = give(api, giver).get_json()["gift_token"]
    servers = [Gunicorn(server_env(database_url, redis_url), log=tmp_path / f"gunicorn-{i}.log") for i in range(2)]
    try:
        for server in servers:
            server.start()
        barrier = threading.Barrier(50)

        def open_gift(n: int) -> tuple[int, dict]:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)
            body = {
                "anonymous_id": f"friend-{n:05d}",
                "article": {"id": "tempo:koran:2026-11-30:beras", "class": "metered"},
                "gift_token": token,
            }
            return post(servers[n % 2].url + "/v1/access", api.key, body)

        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(open_gift, range(200)))
    finally:
        for server in servers:
            server.stop()
    assert Counter(status for status, _ in answers) == {200: 200}
    outcomes = Counter(body["reason"] if body["allowed"] else body.get("gift") for _, body in answers)
    assert outcomes == {"gift": 10, "device_limit": 190}, outcomes
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(GiftOpening)) == 10
