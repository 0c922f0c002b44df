"""Fixtures that build on each other: servers (session) → app → client → api/runner.

Real parts only: a redis-server process this suite starts (or METER_TEST_REDIS_URL), an aiosmtpd
SMTP server on a loopback port, and a database migrated with the project's own migrations.

Under pytest-xdist (`make test` runs `-n 2`) each worker is a process with its own session: its own
redis-server, SMTP port and SQLite files, and on PostgreSQL a database of its own (`test_gw0`, …,
made when missing). A test's settings are given before its app is built, as a deployment's are:
`@pytest.mark.config(RATELIMIT_ACCESS_IP="2/minute")` (the closest marker wins); a test that needs
other settings mid-way builds the app again with them (`rebuilt`), as a restart would.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis as redis_lib
import sqlalchemy
from aiosmtpd.controller import Controller

from config import TestConfig
from meter import create_app
from meter.dev.redis_server import RedisProcess, free_port
from meter.platform import clock
from meter.platform.db import db
from meter.sites.rules import sites
from meter.stats import rules as stats
from tests.openapi_check import CheckedClient
from tests.template_cache import TEMPLATES

LINK_RE = re.compile(r"https?://\S+")


# --- servers (one per test session) ------------------------------------------------------------


WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", … under pytest-xdist; "" in one process


def worker_number() -> int:
    return int(WORKER.removeprefix("gw")) if WORKER.startswith("gw") else 0


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("METER_TEST_REDIS_URL")
    if url:  # an existing Redis: each xdist worker flushes a database number of its own
        yield url if not WORKER else urlunsplit(urlsplit(url)._replace(path=f"/{worker_number()}"))
        return
    server = RedisProcess(str(tmp_path_factory.mktemp("redis"))).start()
    yield server.url
    server.stop()


@dataclass
class Mailbox:
    messages: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(
                {"to": envelope.rcpt_tos, "from": envelope.mail_from, "msg": msg, "raw": envelope.content}
            )
        return "250 OK"

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def to(self, address: str) -> list:
        with self.lock:
            return [m for m in self.messages if address in m["to"]]


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def links_in(message) -> list[str]:
    return LINK_RE.findall(text_of(message))


def token_of(link: str) -> str:
    """The token of a mailed link (its last path segment, without the `?lang=` the link carries)."""
    return urlsplit(link).path.rsplit("/", 1)[1]


@pytest.fixture(scope="session")
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


POSTGRES_URL = os.environ.get("METER_TEST_DATABASE_URL", "")


def postgres_of_this_worker() -> str:
    """METER_TEST_DATABASE_URL, or under xdist a database of this worker's own next to it (made when
    missing: the suite's PostgreSQL lets it CREATE DATABASE), so that workers never share tables."""
    if not POSTGRES_URL or not WORKER:
        return POSTGRES_URL
    base = sqlalchemy.engine.make_url(POSTGRES_URL)
    name = f"{base.database}_{WORKER}"
    admin = sqlalchemy.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}):
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """This worker's PostgreSQL database ("" when the suite runs on SQLite)."""
    return postgres_of_this_worker()


@pytest.fixture(scope="session")
def sqlite_dir(tmp_path_factory):
    """Where the tests' SQLite files live: in memory (/dev/shm) where there is one, since every commit
    of a file on disk waits for its fsync (~10 ms on a busy disk, hundreds of commits a minute here)."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        path = tempfile.mkdtemp(prefix=f"meter-tests-{WORKER or 'main'}-", dir=shm)
        yield Path(path)
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("sqlite")


@pytest.fixture(scope="session")
def database_template(sqlite_dir, redis_url, postgres_url):
    """The schema made once by the project's migrations (`flask db upgrade`).

    SQLite (default): a migrated file that each test copies. PostgreSQL (METER_TEST_DATABASE_URL):
    the schema is rebuilt once, and each test truncates the tables.
    """
    from flask_migrate import upgrade

    if postgres_url:
        url = postgres_url
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("DROP SCHEMA public CASCADE"))
            conn.execute(sqlalchemy.text("CREATE SCHEMA public"))
        engine.dispose()
    else:
        url = f"sqlite:///{sqlite_dir / 'template.sqlite3'}"
    app = create_app({**_config_dict(), "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


@contextlib.contextmanager
def empty_database(sqlite_dir: Path, template: str) -> Iterator[str]:
    """A database of the migrated schema with no rows: a copy of the SQLite template (removed after),
    or the worker's PostgreSQL database with every table truncated."""
    if template.startswith("sqlite:///"):
        path = sqlite_dir / f"{uuid.uuid4().hex}.sqlite3"
        shutil.copy(template.removeprefix("sqlite:///"), path)
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in sqlite_dir.glob(f"{path.name}*"):  # the file and any -journal or -wal beside it
                leftover.unlink(missing_ok=True)
        return
    clear_database(template)
    yield template


def clear_database(url: str) -> None:
    """Every row gone, ids starting at 1 again (for a server that keeps its database between tests)."""
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        if url.startswith("sqlite"):
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
            conn.execute(sqlalchemy.text("DELETE FROM sqlite_sequence"))  # AUTOINCREMENT's counters
        else:
            tables = ", ".join(t.name for t in db.metadata.sorted_tables)
            conn.execute(sqlalchemy.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(sqlite_dir, database_template):
    """A database of the migrated schema with no rows, for this test alone."""
    with empty_database(sqlite_dir, database_template) as url:
        yield url


def _config_dict() -> dict:
    """TestConfig's settings, with the suite's one template cache (tests/template_cache.py)."""
    return {**{k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}, "JINJA_BYTECODE_CACHE": TEMPLATES}


# --- per test ----------------------------------------------------------------------------------


DATABASE_FIXTURES = {"database_url", "database_template", "postgres_url"}


SLOW = ("fuzz", "soak", "servers", "cluster", "browser")  # the longest kinds first


def _tier(item) -> int:
    return next((rank for rank, kind in enumerate(SLOW) if item.get_closest_marker(kind)), len(SLOW))


def pytest_collection_modifyitems(config, items) -> None:
    """The slow tier first, so that pytest-xdist's workers start on the long tests and finish together
    on the short ones, instead of one worker finishing a long test alone at the end.

    The PostgreSQL pass (METER_TEST_DATABASE_URL) runs the tests that use the suite's database; the
    others (`make run` with its own SQLite, installation checks, settings errors, pure functions) would
    only repeat the SQLite pass's run, and are deselected, as the summary says; so are those marked
    database_agnostic, whose subject does not depend on the database (pyproject.toml)."""
    items.sort(key=_tier)
    if not POSTGRES_URL:
        return
    kept = [
        item
        for item in items
        if DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        and not item.get_closest_marker("database_agnostic")
    ]
    if len(kept) < len(items):
        kept_ids = {id(item) for item in kept}
        config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept_ids])
        items[:] = kept


def marked_settings(node) -> dict:
    """The settings of `@pytest.mark.config(...)` on a test, its class and its module; the closest wins."""
    settings: dict = {}
    for marker in reversed(list(node.iter_markers("config"))):
        settings.update(marker.kwargs)
    return settings


@pytest.fixture
def app(request, redis_url, smtp_server, database_url):
    controller, mailbox = smtp_server
    flush_redis(redis_url)
    mailbox.clear()
    clock.reset()
    sites.forget_cached()
    stats.forget_pending()  # answers counted without the script by an earlier test's site 1
    app = create_app(
        {
            **_config_dict(),
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": controller.port,
            **marked_settings(request.node),
        }
    )
    app.test_client_class = CheckedClient  # every answer checked against /openapi.json (tests/openapi_check.py)
    yield app
    with app.app_context():
        db.engine.dispose()
    clock.reset()


def rebuilt(app, **settings):
    """The same deployment (database, Redis, SMTP) made again with other settings, as a restart with a
    changed environment would: for a test whose point is what changes when a setting does."""
    return create_app({**app.config, **settings})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def redis_client(app, redis_url):
    return redis_for(redis_url)


def redis_for(url: str):
    """A client of the suite's Redis: RedisCluster for redis+cluster:// URLs (tests/e2e/test_cluster.py)."""
    if url.startswith("redis+cluster://"):
        from redis.cluster import RedisCluster

        return RedisCluster.from_url("redis://" + url.removeprefix("redis+cluster://"), decode_responses=True)
    return redis_lib.Redis.from_url(url, decode_responses=True)


def flush_redis(url: str) -> None:
    client = redis_for(url)
    client.flushall()  # RedisCluster sends it to every primary
    client.close()


@pytest.fixture
def mailbox(smtp_server):
    return smtp_server[1]


@pytest.fixture
def deliver(app, mailbox):
    """Run the mail worker once, over a real SMTP connection; returns (sent, failed)."""
    from meter.platform import mail

    def run() -> tuple[int, int]:
        with app.app_context():
            return mail.deliver_due()

    return run


@dataclass
class Api:
    """A site's server-to-server client: every call carries its API key."""

    client: object
    key: str
    slug: str

    def _h(self, headers=None):
        return {"Authorization": f"Bearer {self.key}", **(headers or {})}

    def post(self, path, json=None, headers=None, **kw):
        return self.client.post(path, json=json, headers=self._h(headers), **kw)

    def put(self, path, json=None, headers=None, **kw):
        return self.client.put(path, json=json, headers=self._h(headers), **kw)

    def delete(self, path, json=None, headers=None, **kw):
        return self.client.delete(path, json=json, headers=self._h(headers), **kw)

    def get(self, path, headers=None, **kw):
        return self.client.get(path, headers=self._h(headers), **kw)

    def access(self, article_id, cls="metered", reader_token=None, anonymous_id=None, record=True):
        body = {"article": {"id": article_id, "class": cls}, "record": record}
        if reader_token:
            body["reader_token"] = reader_token
        if anonymous_id:
            body["anonymous_id"] = anonymous_id
        response = self.post("/v1/access", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()


def past_the_mail_budget() -> None:
    """Move meter's clock past the 3 minutes an address waits between two mails (RATELIMIT_RESEND_EMAIL)."""
    clock.travel(timedelta(minutes=3, seconds=1))


def make_site(app, slug="tempo", origins=("https://tempo.co",), policy=None) -> str:
    with app.app_context():
        _site, key = sites.create_site(slug, slug.title(), list(origins), "id", policy)
    return key


@pytest.fixture
def api(app, client):
    return Api(client, make_site(app), "tempo")


@pytest.fixture
def register(api, mailbox, deliver):
    """Register a reader and return the activation link from the real mail."""

    def run(email_addr="pembaca@example.com", password="rahasia-sekali", **extra) -> str:
        response = api.post("/v1/readers", json={"email": email_addr, "password": password, **extra})
        assert response.status_code == 202, response.get_data(as_text=True)
        deliver()
        mails = mailbox.to(email_addr)
        assert mails, f"no mail reached {email_addr}"
        return next(link for link in links_in(mails[-1]["msg"]) if "/activate/" in link)

    return run


@pytest.fixture
def verified_reader(api, register):
    """A verified reader's (reader_id, reader_token)."""

    def run(email_addr="pembaca@example.com", password="rahasia-sekali") -> tuple[int, str]:
        link = register(email_addr, password)
        token = token_of(link)
        response = api.post("/v1/activations", json={"token": token})
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        return body["reader_id"], body["reader_token"]

    return run


@pytest.fixture
def cut_app(app, database_url):
    """The same deployment, with a database that can be cut (tests/faults.py), and the site cached past the cut."""
    from tests.faults import DatabaseCut

    cut = DatabaseCut(database_url)
    fresh = create_app({**app.config, "SQLALCHEMY_DATABASE_URI": cut.url, "SITE_CACHE_TTL": 60.0})
    yield fresh, cut
    cut.close()
    with fresh.app_context():
        db.engine.dispose()


def monitor_commands(redis_client, action) -> list[str]:
    """Commands clients sent to Redis during `action` (MONITOR; commands run inside scripts excluded)."""
    seen: list[str] = []
    ready = threading.Event()

    def watch() -> None:
        with redis_client.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if command["command"] == "ECHO monitor-stop":
                    return
                if command.get("client_type") != "lua" and command.get("client_address") != "lua":
                    seen.append(command["command"].split(" ", 1)[0].upper())

    stopper = redis_client.client()  # its own connection, opened before watching
    stopper.ping()
    thread = threading.Thread(target=watch)
    thread.start()
    ready.wait(5)
    try:
        action()
    finally:
        stopper.echo("monitor-stop")
        thread.join(5)
        stopper.close()
    return seen
