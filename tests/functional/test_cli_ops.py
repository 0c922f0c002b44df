"""Operator commands for mail and bulk work: bulk resend over many readers, mail status, dead letters,
`--json` for scripts and `--help` everywhere; real database, Redis and SMTP server."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from meter import create_app
from meter.accounts.models import Reader
from meter.dev.redis_server import free_port
from meter.platform import clock, mail
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.platform.models import OutboxMail
from tests.conftest import Api, make_site
from tests.functional.test_cli import fails, ok, one_line_error


def add_unverified(app, slug: str, count: int, mailed_at=None) -> None:
    """Many unverified readers in one INSERT (registration's Argon2 per reader would cost minutes)."""
    with app.app_context():
        site_id = _site_id(slug)
        rows = [
            {
                "site_id": site_id,
                "email": f"reader{n:04d}@example.com",
                "email_key": f"reader{n:04d}@example.com",
                "password_hash": "$argon2id$not-a-real-hash",
                "locale": "id",
                "created_at": utcnow(),
                "last_activation_sent_at": mailed_at,
            }
            for n in range(count)
        ]
        db.session.execute(insert(Reader), rows)
        db.session.commit()


def _site_id(slug: str) -> int:
    from meter.sites.models import Site

    return db.session.scalar(select(Site.id).filter_by(slug=slug))


def deliver_all(app) -> int:
    sent = 0
    with app.app_context():
        while True:
            done, failed = mail.deliver_due()
            assert failed == 0
            if not done:
                return sent
            sent += done


@pytest.mark.parametrize("count", [40, pytest.param(500, marks=pytest.mark.soak)])  # 500: 1,500 commits, 500 mails
def test_bulk_resend_to_many_unverified_readers_queues_each_once(app, runner, api, mailbox, count):
    add_unverified(app, "tempo", count, mailed_at=utcnow() - timedelta(days=2))
    started = time.monotonic()
    first = ok(runner, "readers", "resend-activation", "tempo", "--all-unverified")
    assert first[-1] == f"queued: {count}, skipped (sent within the hour): 0, failed: 0"
    second = ok(runner, "readers", "resend-activation", "tempo", "--all-unverified")
    assert second[-1] == f"queued: 0, skipped (sent within the hour): {count}, failed: 0"
    as_json = json.loads(ok(runner, "readers", "resend-activation", "tempo", "--all-unverified", "--json")[-1])
    assert as_json == {"dry_run": False, "queued": 0, "skipped": count, "failed": 0}

    assert deliver_all(app) == count
    received = sorted(rcpt for m in mailbox.messages for rcpt in m["to"])
    assert received == sorted(f"reader{n:04d}@example.com" for n in range(count))  # each exactly once
    assert all("/tempo/activate/" in m["msg"].get_body(("plain",)).get_content() for m in mailbox.messages)
    assert time.monotonic() - started < 20 + count * 0.2  # linear: a pass over many readers must not crawl

    clock.travel(timedelta(hours=1, minutes=1))  # an hour later they may have one more
    dry = ok(runner, "readers", "resend-activation", "tempo", "--all-unverified", "--dry-run")
    assert dry[-1].startswith(f"would queue: {count}, skipped (sent within the hour): 0")
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(OutboxMail)) == count


def test_bulk_resend_skips_readers_mailed_within_the_hour_and_the_verified(app, runner, api, register):
    register("fresh@example.com")  # just got its activation mail
    add_unverified(app, "tempo", 3)  # never mailed
    with app.app_context():
        verified = db.session.scalar(select(Reader).filter_by(email="reader0000@example.com"))
        verified.verified_at = utcnow()
        db.session.commit()
    lines = ok(runner, "readers", "resend-activation", "tempo", "--all-unverified")
    assert lines[-1] == "queued: 2, skipped (sent within the hour): 1, failed: 0"


def test_bulk_resend_counts_a_reader_that_cannot_be_mailed_as_failed(app, runner, api):
    add_unverified(app, "tempo", 2)
    with app.app_context():
        bad = db.session.scalar(select(Reader).filter_by(email="reader0001@example.com"))
        bad.email = "bad\r\nBcc: x@example.com"  # refused by the outbox, never mangled into another address
        db.session.commit()
    assert ok(runner, "readers", "resend-activation", "tempo", "--all-unverified")[-1] == (
        "queued: 1, skipped (sent within the hour): 0, failed: 1"
    )


def test_mail_status_retry_and_dead_letters(app, runner, api, mailbox):
    closed = create_app({**app.config, "MAIL_PORT": free_port(), "MAIL_MAX_ATTEMPTS": 1})  # nothing listens
    api.post("/v1/readers", json={"email": "one@example.com", "password": "rahasia-sekali"})
    api.post("/v1/readers", json={"email": "two@example.com", "password": "rahasia-sekali"})
    status = json.loads(ok(runner, "mail", "status", "--json")[0])
    assert (status["queued"], status["failing"], status["dead"], status["sent"]) == (2, 0, 0, 0)
    assert status["oldest_waiting_seconds"] >= 0

    with closed.app_context():
        assert mail.deliver_due() == (0, 1)  # the server is down: the first fails, the rest waits
        assert mail.deliver_due() == (0, 1)
    text = ok(runner, "mail", "status")
    assert text[:3] == [
        "queued:  0",
        "failing: 0  (retrying with back-off)",
        "dead:    2  (gave up; flask mail retry --all puts them back)",
    ]
    assert text[-1].startswith("last error: ConnectionRefusedError")
    dead = json.loads(ok(runner, "mail", "dead", "--json")[0])
    assert sorted(row["to"] for row in dead) == ["one@example.com", "two@example.com"]
    first_id = min(row["id"] for row in dead)

    one_line_error(fails(runner, "mail", "retry", "999", reason="not dead letters"))
    fails(runner, "mail", "retry")  # neither ids nor --all
    assert ok(runner, "mail", "retry", str(first_id)) == [
        "requeued 1 dead letters; the worker sends them on its next pass"
    ]
    one_line_error(
        fails(runner, "mail", "retry", str(first_id), reason=f"not dead letters (unknown, waiting or sent): {first_id}")
    )
    assert deliver_all(app) == 1
    assert [m["to"] for m in mailbox.messages] == [["one@example.com"]]
    assert ok(runner, "mail", "retry", "--all")[0].startswith("requeued 1 ")
    assert deliver_all(app) == 1
    final = json.loads(ok(runner, "mail", "status", "--json")[0])
    assert (final["queued"], final["failing"], final["dead"], final["sent"], final["oldest_waiting_seconds"]) == (
        0,
        0,
        0,
        2,
        None,
    )


def test_worker_logs_each_delivery_and_failure_with_the_outbox_id(app, api, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="meter.platform.mail")
    api.post("/v1/readers", json={"email": "log@example.com", "password": "rahasia-sekali"})
    with app.app_context():
        row_id = db.session.scalar(select(OutboxMail.id))
    closed = create_app({**app.config, "MAIL_PORT": free_port()})
    with closed.app_context():
        mail.deliver_due()
    deliver_all(app)
    records = [r for r in caplog.records if r.name == "meter.platform.mail" and getattr(r, "outbox_id", None) == row_id]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    assert f"mail {row_id} failed" in records[0].getMessage() and f"mail {row_id} sent" in records[1].getMessage()


def test_keys_list_json_and_read_commands_for_scripts(app, runner, api):
    keys = json.loads(ok(runner, "sites", "keys", "list", "tempo", "--json")[0])
    assert [k["state"] for k in keys] == ["live"] and api.key.startswith(keys[0]["prefix"])
    sites_json = json.loads(ok(runner, "sites", "list", "--json")[0])
    assert [s["slug"] for s in sites_json] == ["tempo"]
    one_line_error(fails(runner, "sites", "keys", "list", "nowhere", "--json", reason="unknown site"))


@pytest.mark.parametrize(
    "command",
    [
        (),
        ("sites",),
        ("sites", "keys"),
        ("readers",),
        ("meter",),
        ("mail",),
        ("readers", "resend-activation"),
        ("mail", "status"),
        ("mail", "retry"),
        ("mail", "dead"),
        ("sites", "policy"),
    ],
)
def test_every_group_and_command_explains_itself(runner, command):
    lines = ok(runner, *command, "--help")
    assert lines[0].startswith("Usage:")
    assert len(" ".join(lines)) > 80


def test_the_site_of_the_bulk_resend_must_exist(runner):
    one_line_error(fails(runner, "readers", "resend-activation", "nowhere", "--all-unverified", reason="unknown site"))


def test_rotating_a_key_over_http(app, runner, client):
    key = make_site(app, "rot")
    new_key = ok(runner, "sites", "keys", "create", "rot")[-1]
    for k in (key, new_key):
        assert Api(client, k, "rot").access("rot:news", cls="free")["allowed"]
    ok(runner, "sites", "keys", "revoke", "rot", key[:12])
    assert (
        client.post("/v1/access", json={"article": {"id": "x"}}, headers={"Authorization": f"Bearer {key}"}).status_code
        == 401
    )
    assert Api(client, new_key, "rot").access("rot:news", cls="free")["allowed"]
