"""Races and faults across processes: real gunicorn servers sharing one Redis and one database."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_lib
from aiosmtpd.controller import Controller
from sqlalchemy import select

from meter.access.models import Unlock
from meter.access.rules.metering import layout
from meter.dev.redis_server import RedisProcess, free_port
from meter.platform import clock
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.sites.models import Site
from meter.sites.rules import sites
from tests.conftest import Mailbox
from tests.paths import ROOT_DIR
from tests.servers import Gunicorn, server_env

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]


def until(condition, what: str, timeout: float = 20.0) -> None:
    """Poll `condition` (every 50 ms) instead of sleeping a fixed time; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def outbox_row(app) -> OutboxMail:
    with app.app_context():
        db.session.expire_all()
        [row] = db.session.scalars(select(OutboxMail)).all()
        db.session.expunge(row)
        return row


def post(url: str, key: str, body: dict, timeout: float = 20.0) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture
def two_servers(app, database_url, redis_url, tmp_path):
    env = server_env(database_url, redis_url)
    servers = [Gunicorn(env, log=tmp_path / f"gunicorn-{i}.log") for i in range(2)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_two_servers_200_concurrent_checks_grant_exactly_the_quota(
    app, api, verified_reader, two_servers, redis_client
):
    reader_id, token = verified_reader()
    articles = [f"tempo:koran:2026-01-{i:02d}:berita" for i in range(50)]
    jobs = [(two_servers[i % 2].url, articles[i % 50]) for i in range(200)]
    barrier = threading.Barrier(50)

    def one(job):
        base, article = job
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=10)
        return post(base + "/v1/access", api.key, {"reader_token": token, "article": {"id": article}})

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, jobs))
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: 200}, statuses
    reasons = Counter(body["reason"] for _, body in answers)
    granted = {job[1] for job, (_, body) in zip(jobs, answers, strict=True) if body["allowed"]}
    assert reasons["unlocked_now"] == 2, reasons
    assert len(granted) == 2, granted  # exactly the quota (2 for a verified reader), across both servers
    assert set(reasons) <= {"unlocked_now", "already_unlocked", "quota_exhausted"}, reasons
    assert not any(body["degraded"] for _, body in answers)

    with app.app_context():
        ledger = set(db.session.scalars(select(Unlock.article_id).where(Unlock.subject == f"r:{reader_id}")))
        site = sites.info(db.session.scalar(select(Site)))
        period = site.policy.period_at(clock.now())
        unlock_key, field = layout.unlock_place(site.id, layout.reader_subject(reader_id), period)
    raw = redis_lib.Redis(connection_pool=redis_lib.ConnectionPool(**redis_client.connection_pool.connection_kwargs))
    raw.connection_pool.connection_kwargs["decode_responses"] = False

    def in_redis() -> set[bytes]:
        """The 64-bit article hashes the compact layout keeps for this reader and period."""
        packed = raw.hget(unlock_key, field) or b""
        return {packed[i : i + 8] for i in range(0, len(packed), 8)}

    assert ledger == granted
    assert in_redis() == {layout.hash64(article) for article in granted}  # the ledger agrees with Redis

    # Redis flushed, then another burst on both servers: rebuilt from the ledger, nobody gains.
    redis_client.flushall()
    with ThreadPoolExecutor(max_workers=50) as pool:
        again = list(pool.map(one, jobs[:100]))
    assert Counter(status for status, _ in again) == {200: 100}
    assert {job[1] for job, (_, body) in zip(jobs, again, strict=False) if body["allowed"]} <= granted
    assert not any(body["reason"] == "unlocked_now" for _, body in again)
    assert in_redis() == {layout.hash64(article) for article in granted}
    raw.close()


def test_redis_stopped_mid_run_no_5xx_degraded_then_recovers(app, api, verified_reader, database_url, tmp_path):
    """Traffic keeps flowing to a real gunicorn while its redis-server is stopped and started again."""
    _reader_id, token = verified_reader()
    redis_server = RedisProcess(str(tmp_path / "own-redis")).start()
    server = Gunicorn(
        server_env(database_url, redis_server.url, REDIS_RETRY_AFTER="0.2"), log=tmp_path / "gunicorn.log"
    )
    try:
        server.start()
        body = {"reader_token": token, "article": {"id": "tempo:koran:satu"}}
        status, first = post(server.url + "/v1/access", api.key, body)
        assert status == 200 and first["reason"] == "unlocked_now" and not first["degraded"]

        seen: list[tuple[int, bool, str]] = []
        stop = threading.Event()

        def traffic():
            while not stop.is_set():
                s, b = post(server.url + "/v1/access", api.key, body, timeout=10)
                seen.append((s, b.get("degraded"), b.get("reason")))
                time.sleep(0.02)

        workers = [threading.Thread(target=traffic) for _ in range(4)]
        for w in workers:
            w.start()
        until(lambda: len(seen) >= 10, "traffic to flow")
        redis_server.stop()
        until(lambda: any(degraded for _, degraded, _ in seen), "a degraded answer")
        redis_server.start()  # an empty Redis: rebuilt from the ledger on the next check
        # each worker finds Redis again on its own (after REDIS_RETRY_AFTER): wait until all have
        until(lambda: not any(d for _, d, _ in seen[-8:]), "answers from Redis again")
        stop.set()
        for w in workers:
            w.join()
    finally:
        server.stop()
        redis_server.stop()
    statuses = Counter(s for s, _, _ in seen)
    assert set(statuses) == {200}, statuses  # no 5xx at any point
    degraded = [r for s, d, r in seen if d]
    assert degraded, "Redis was stopped: some answers must say degraded"
    assert set(degraded) <= {"already_unlocked", "degraded_allow", "degraded_deny"}, set(degraded)
    assert seen[-1][1] is False and seen[-1][2] == "already_unlocked"  # recovered, and the unlock survived


def test_the_soak_runs_short_with_no_5xx():
    """`make soak` itself, for a few seconds: its script keeps working (the RSS bound needs the full run)."""
    root = ROOT_DIR
    out = subprocess.run(
        [sys.executable, "-m", "tests.soak", "--seconds", "5", "--clients", "4", "--max-rss-growth", "10"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "5xx (and connection failures): 0" in out.stdout


def test_smtp_down_registration_202_and_the_worker_process_delivers_once_when_it_is_back(
    app, api, database_url, redis_url, tmp_path
):
    """gunicorn and `flask mail worker` as processes; the SMTP server starts only after the registration."""
    smtp_port = free_port()  # nothing listens here yet
    env = server_env(
        database_url,
        redis_url,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp_port),
        MAIL_RETRY_BASE="0.5",
        MAIL_RETRY_MAX="1",
        MAIL_TIMEOUT="2",
        FLASK_APP="wsgi",
    )
    server = Gunicorn(env, workers=1, log=tmp_path / "gunicorn.log").start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "mail", "worker", "--interval", "0.2"],
        cwd=ROOT_DIR,
        env=env,
        stdout=open(tmp_path / "worker.log", "ab"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
    )
    mailbox = Mailbox()
    controller = None
    try:
        status, body = post(
            server.url + "/v1/readers", api.key, {"email": "pembaca@example.com", "password": "rahasia-sekali"}
        )
        assert (status, body) == (202, {"status": "activation_sent"})
        until(lambda: outbox_row(app).attempts >= 2, "the worker to try and fail twice")
        row = outbox_row(app)
        assert row.sent_at is None and row.last_error
        controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        # sent_at is committed after the SMTP server accepted the mail: from then on no pass claims it again
        until(lambda: outbox_row(app).sent_at is not None, "the delivery to be recorded")
    finally:
        worker.terminate()
        worker.wait(timeout=15)
        server.stop()
        if controller is not None:
            controller.stop()
    assert [m["to"] for m in mailbox.messages] == [["pembaca@example.com"]]  # delivered exactly once
    with app.app_context():
        db.session.expire_all()
        [row] = db.session.scalars(select(OutboxMail)).all()
        assert row.sent_at is not None and row.dead_at is None
