"""Webhooks end to end: the actions over HTTP and the command line, the worker's pass, and a real receiver
on loopback (tests/webhook_receiver.py) that verifies every delivery with the `standardwebhooks` package
from PyPI, as a publisher's CRM would. The worker is driven pass by pass, with meter's clock moved for
retries (each move kept under the 5 minutes `standardwebhooks` tolerates between a signature's time and now).
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from meter.domain.webhooks import delivery
from meter.infra import clock
from meter.infra.db import db
from meter.infra.models import AuditEntry, WebhookDelivery, WebhookEndpoint

from .conftest import links_in, token_of
from .test_gifts import set_policy
from .webhook_receiver import Receiver

pytestmark = pytest.mark.config(WEBHOOK_ALLOW_PRIVATE=True)

EMAIL, PASSWORD = "pembaca@example.com", "rahasia-sekali"


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def add_endpoint(runner, receiver: Receiver, *events: str, url: str | None = None) -> int:
    args = ["sites", "webhooks", "add", "tempo", url or receiver.url, *(f"--events={e}" for e in events)]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    receiver.secret = result.output.strip().splitlines()[-1]
    return int(re.search(r"endpoint (\d+)", result.output).group(1))


def work(app) -> int:
    """One pass of the worker's webhook duty."""
    with app.app_context():
        return delivery.deliver_due()


def rows(app, **where) -> list[WebhookDelivery]:
    with app.app_context():
        found = db.session.scalars(select(WebhookDelivery).filter_by(**where).order_by(WebhookDelivery.id)).all()
        db.session.expunge_all()
        return list(found)


def as_reader(token: str) -> dict:
    return {"X-Reader-Token": token}


def test_the_secret_is_whsec_and_32_random_bytes_sealed_at_rest(app, api, runner, receiver):
    endpoint_id = add_endpoint(runner, receiver)
    assert receiver.secret.startswith("whsec_")
    assert len(base64.b64decode(receiver.secret.removeprefix("whsec_"))) == 32
    with app.app_context():
        stored = db.session.get(WebhookEndpoint, endpoint_id).secret
    assert receiver.secret not in stored and receiver.secret.removeprefix("whsec_") not in stored
    listed = runner.invoke(args=["sites", "webhooks", "list", "tempo"]).output
    assert receiver.url in listed and "whsec_" not in listed
    with app.app_context():
        details = [str(e.detail) for e in db.session.scalars(select(AuditEntry))]
    assert any(e == "cli.sites.webhooks.add" for e in _actions(app)) and not any("whsec_" in d for d in details)


def _actions(app) -> list[str]:
    with app.app_context():
        return [e.action for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_every_event_arrives_signed_after_its_action(app, api, runner, receiver, verified_reader, mailbox, deliver):
    set_policy(app, "tempo", gifts__per_period="3")
    endpoint_id = add_endpoint(runner, receiver)
    reader_id, token = verified_reader(EMAIL, PASSWORD)  # reader.registered, reader.activated
    until = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    assert api.put(f"/v1/readers/{reader_id}/subscription", json={"until": until.isoformat()}).status_code == 200
    article = {"id": "tempo:koran:a", "class": "metered", "url": "https://tempo.co/a"}
    assert api.post("/v1/gifts", json={"reader_token": token, "article": article}).status_code == 201
    moved = api.post(
        "/v1/readers/me/email", json={"password": PASSWORD, "email": "baru@example.com"}, headers=as_reader(token)
    )
    assert moved.status_code == 202
    deliver()
    link = next(link for link in links_in(mailbox.to("baru@example.com")[-1]["msg"]) if "/account/email/" in link)
    assert api.post("/v1/email-changes/confirm", json={"token": token_of(link)}).status_code == 200
    gone = api.delete("/v1/readers/me", json={"password": PASSWORD}, headers=as_reader(token))
    assert gone.status_code == 204
    assert runner.invoke(args=["sites", "webhooks", "test", "tempo", str(endpoint_id)]).exit_code == 0

    assert work(app) == 7
    assert receiver.refused == []
    got = {d.payload["type"]: d.payload for d in receiver.verified}
    assert [d.payload["type"] for d in receiver.verified] == [
        "reader.registered",
        "reader.activated",
        "reader.subscription_changed",
        "gift.created",
        "reader.email_changed",
        "reader.deleted",
        "ping",
    ]
    assert got["reader.registered"]["data"]["reader"] == {
        "id": reader_id,
        "email": EMAIL,
        "locale": "id",
        "method": "password",
        "verified": False,
        "created_at": got["reader.registered"]["data"]["reader"]["created_at"],
    }
    assert got["reader.subscription_changed"]["data"]["subscription"]["until"] == until.isoformat().replace(
        "+00:00", "Z"
    )
    assert got["reader.subscription_changed"]["data"]["subscription"]["active"] is True
    assert got["gift.created"]["data"]["gift"]["article_id"] == "tempo:koran:a"
    assert "url" not in got["gift.created"]["data"]["gift"]  # the link is the giver's to share
    assert got["reader.email_changed"]["data"] == {
        "reader": {"id": reader_id, "email": "baru@example.com"},
        "previous_email": EMAIL,
    }
    assert got["reader.deleted"]["data"] == {
        "reader": {"id": reader_id, "email": "baru@example.com"},
        "reason": "reader",
    }
    for payload in got.values():
        assert set(payload) == {"type", "timestamp", "data"} and payload["timestamp"].endswith("Z")
    headers = receiver.verified[0].headers
    assert headers["content-type"] == "application/json" and headers["webhook-signature"].startswith("v1,")


def test_a_receiver_that_fails_twice_gets_the_same_webhook_id_three_times(app, api, runner, receiver, verified_reader):
    add_endpoint(runner, receiver, "reader.registered")
    receiver.answers = [500, 500, 200]
    receiver.body = b"x" * 100_000  # read up to 64 kB, stored up to 1 kB
    api.post("/v1/readers", json={"email": EMAIL, "password": PASSWORD})
    assert work(app) == 0
    [row] = rows(app)
    assert (row.attempts, row.last_status, row.delivered_at) == (1, 500, None)
    assert len(row.last_response) <= 1024
    assert work(app) == 0  # not due yet: no second attempt within the backoff
    clock.travel(timedelta(seconds=40))  # the first wait: 30 s ± 20%
    assert work(app) == 0
    clock.travel(timedelta(seconds=75))  # the second: 60 s ± 20%
    assert work(app) == 1
    ids = [d.msg_id for d, _status in receiver.attempts]
    assert [status for _d, status in receiver.attempts] == [500, 500, 200]
    assert len(ids) == 3 and len(set(ids)) == 1 and ids[0] == row.msg_id
    assert len({d.headers["webhook-timestamp"] for d, _ in receiver.attempts}) == 3  # each attempt signed anew
    [row] = rows(app)
    assert (row.attempts, row.last_status) == (3, 200) and row.delivered_at is not None
    listed = runner.invoke(args=["sites", "webhooks", "deliveries", "tempo"]).output
    assert "reader.registered\tdelivered\t3\t200" in listed


def test_a_receiver_down_while_readers_register_gets_every_event_once_back(app, api, runner, receiver):
    add_endpoint(runner, receiver, "reader.registered")
    receiver.stop()
    for n in range(5):
        assert api.post("/v1/readers", json={"email": f"r{n}@example.com", "password": PASSWORD}).status_code == 202
    assert work(app) == 0
    attempts = [row.attempts for row in rows(app)]
    assert attempts.count(1) == 1 and attempts.count(0) == 4  # one refused connection; the others wait with it
    receiver.start()  # back, on the same port
    for _ in range(4):
        clock.travel(timedelta(seconds=40))
        work(app)
    assert sorted(d.payload["data"]["reader"]["email"] for d in receiver.verified) == [
        f"r{n}@example.com" for n in range(5)
    ]
    assert len(set(receiver.ids())) == 5 and receiver.refused == []
    assert all(row.delivered_at is not None for row in rows(app))


def test_an_operators_deletion_sends_reader_deleted(app, api, runner, receiver, verified_reader):
    reader_id, _token = verified_reader(EMAIL, PASSWORD)
    add_endpoint(runner, receiver, "reader.deleted")
    result = runner.invoke(args=["readers", "delete", "tempo", EMAIL, "--yes"])
    assert result.exit_code == 0, result.output
    work(app)
    [deleted] = receiver.of_type("reader.deleted")
    assert deleted["data"] == {"reader": {"id": reader_id, "email": EMAIL}, "reason": "operator"}


def test_a_deletion_takes_the_readers_past_deliveries_with_it(app, api, runner, receiver, verified_reader):
    """They hold its address: once sent they go with the reader; reader.deleted stays until sent (and
    is pruned with sent mail, SENT_MAIL_RETENTION_DAYS later)."""
    add_endpoint(runner, receiver)
    verified_reader("lain@example.com", "sandi-orang-lain")
    _reader_id, token = verified_reader(EMAIL, PASSWORD)
    assert work(app) == 4
    assert api.delete("/v1/readers/me", json={"password": PASSWORD}, headers=as_reader(token)).status_code == 204
    left = [(row.event_type, EMAIL in row.body) for row in rows(app)]
    assert left == [("reader.registered", False), ("reader.activated", False), ("reader.deleted", True)]
    assert work(app) == 1
    clock.travel(timedelta(days=31))
    with app.app_context():
        assert delivery.prune() == 3
    assert rows(app) == []
