"""Fixtures that build on each other: servers (session) → app → client → api/runner.

Real parts only: a redis-server process this suite starts (or METER_TEST_REDIS_URL), an aiosmtpd
SMTP server on a loopback port, and a database migrated with the project's own migrations.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import redis as redis_lib
import sqlalchemy
from aiosmtpd.controller import Controller

from config import TestConfig
from meter import create_app
from meter.dev.redis_server import RedisProcess, free_port
from meter.domain import sites, stats
from meter.infra import clock
from meter.infra.db import db

from .openapi_check import CheckedClient

LINK_RE = re.compile(r"https?://\S+")


# --- servers (one per test session) ------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("METER_TEST_REDIS_URL")
    if url:
        yield url
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


@pytest.fixture(scope="session")
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


POSTGRES_URL = os.environ.get("METER_TEST_DATABASE_URL", "")


@pytest.fixture(scope="session")
def database_template(tmp_path_factory, redis_url):
    """The schema made once by the project's migrations (`flask db upgrade`).

    SQLite (default): a migrated file that each test copies. PostgreSQL (METER_TEST_DATABASE_URL):
    the schema is rebuilt once, and each test truncates the tables.
    """
    from flask_migrate import upgrade

    if POSTGRES_URL:
        url = POSTGRES_URL
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("DROP SCHEMA public CASCADE"))
            conn.execute(sqlalchemy.text("CREATE SCHEMA public"))
        engine.dispose()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'template.sqlite3'}"
    app = create_app({**_config_dict(), "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


@pytest.fixture
def database_url(tmp_path, database_template) -> str:
    """A database of the migrated schema with no rows, for this test alone."""
    if database_template.startswith("sqlite:///"):
        path = tmp_path / "meter.sqlite3"
        shutil.copy(database_template.removeprefix("sqlite:///"), path)
        return f"sqlite:///{path}"
    engine = sqlalchemy.create_engine(database_template)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in db.metadata.sorted_tables)
        conn.execute(sqlalchemy.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return database_template


def _config_dict() -> dict:
    return {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}


# --- per test ----------------------------------------------------------------------------------


@pytest.fixture
def app(redis_url, smtp_server, database_url):
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
        }
    )
    app.test_client_class = CheckedClient  # every answer checked against /openapi.json (tests/openapi_check.py)
    yield app
    with app.app_context():
        db.engine.dispose()
    clock.reset()


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
    """A client of the suite's Redis: RedisCluster for redis+cluster:// URLs (tests/test_cluster.py)."""
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
    from meter.infra import mail

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
        token = link.rsplit("/activate/", 1)[1]
        response = api.post("/v1/activations", json={"token": token})
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        return body["reader_id"], body["reader_token"]

    return run
