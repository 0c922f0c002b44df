"""Webhooks end to end: the actions over HTTP and the command line, the worker's pass, and a real receiver
on loopback (tests/webhook_receiver.py) that verifies every delivery with the `standardwebhooks` package
from PyPI, as a publisher's CRM would. The worker is driven pass by pass, with meter's clock moved for
retries (each move kept under the 5 minutes `standardwebhooks` tolerates between a signature's time and now).
"""

from __future__ import annotations

import base64
import re
import socket
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from meter import worker
from meter.console.models import AuditEntry
from meter.platform import clock
from meter.platform.db import db
from meter.webhooks.models import WebhookDelivery, WebhookEndpoint
from meter.webhooks.rules import delivery, transport
from tests.conftest import links_in, token_of
from tests.console_helpers import csrf_of, staff_client
from tests.functional.test_gifts import set_policy
from tests.webhook_receiver import Receiver

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


# --- not a way into the network ------------------------------------------------------------------


@pytest.mark.config(WEBHOOK_ALLOW_PRIVATE=False)
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:{port}/hooks", "https"),
        ("https://127.0.0.1:{port}/hooks", "private network"),
        ("https://localhost/hooks", "private network"),
        ("https://169.254.169.254/latest/meta-data", "private network"),
        ("https://[::ffff:10.0.0.1]/hooks", "private network"),
        ("https://2130706433/hooks", "no valid host name"),
        ("https://user:pass@crm.tempo.co/hooks", "user name"),
    ],
)
def test_a_private_or_plain_url_is_refused_without_webhook_allow_private(app, api, runner, receiver, url, why):
    result = runner.invoke(args=["sites", "webhooks", "add", "tempo", url.format(port=receiver.port)])
    assert result.exit_code == 1 and why in result.output, result.output
    assert runner.invoke(args=["sites", "webhooks", "list", "tempo"]).output == ""


@pytest.fixture
def resolves_to(monkeypatch):
    """The system resolver answering `address` for every name: a public-looking name that points inside
    (as a DNS rebinding attack does at delivery time), without a DNS server of our own."""

    def point(address: str) -> None:
        def fake(host, port, *args, **kwargs):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        monkeypatch.setattr(transport.socket, "getaddrinfo", fake)

    return point


def test_a_name_that_resolves_inside_at_delivery_is_refused(app, api, runner, receiver, resolves_to):
    """Added while public (nothing to refuse then), resolved to loopback at delivery: nothing is sent."""
    endpoint_id = add_endpoint(runner, receiver, url=f"https://hooks.tempo.co:{receiver.port}/hooks/meter")
    runner.invoke(args=["sites", "webhooks", "test", "tempo", str(endpoint_id)])
    resolves_to("127.0.0.1")
    with app.app_context():
        app.config["WEBHOOK_ALLOW_PRIVATE"] = False
        delivery.deliver_due()
    [row] = rows(app)
    assert row.delivered_at is None and row.attempts == 1
    assert "refused: hooks.tempo.co resolves to an address of a private network (127.0.0.1)" in row.last_error
    assert receiver.requests == 0


def test_the_connection_goes_to_the_address_checked_with_the_original_host(app, api, runner, receiver, resolves_to):
    endpoint_id = add_endpoint(runner, receiver, url=f"http://hooks.tempo.co:{receiver.port}/hooks/meter")
    runner.invoke(args=["sites", "webhooks", "test", "tempo", str(endpoint_id)])
    resolves_to("127.0.0.1")
    assert work(app) == 1
    [ping] = receiver.verified
    assert ping.headers["host"] == f"hooks.tempo.co:{receiver.port}" and ping.path == "/hooks/meter"


def test_redirects_are_not_followed(app, api, runner, receiver):
    endpoint_id = add_endpoint(runner, receiver)
    receiver.answers = [302]
    runner.invoke(args=["sites", "webhooks", "test", "tempo", str(endpoint_id)])
    assert work(app) == 0
    [row] = rows(app)
    assert (row.last_status, row.delivered_at, receiver.requests) == (302, None, 1)


@pytest.mark.config(WEBHOOK_TIMEOUT=1.0)
def test_a_receiver_that_hangs_costs_the_timeout_and_is_retried(app, api, runner, receiver):
    endpoint_id = add_endpoint(runner, receiver)
    receiver.delay = 3.0
    runner.invoke(args=["sites", "webhooks", "test", "tempo", str(endpoint_id)])
    with app.app_context():
        started = clock.monotonic()
        delivery.deliver_due()
        assert clock.monotonic() - started < 2.5
    [row] = rows(app)
    assert row.delivered_at is None and "timed out" in row.last_error.lower()


# --- secrets, disabling, the owner told ------------------------------------------------------------


def test_during_a_rotation_both_signatures_are_sent_then_only_the_new_one(app, api, runner, receiver):
    endpoint_id = add_endpoint(runner, receiver)
    old = receiver.secret
    result = runner.invoke(args=["sites", "webhooks", "rotate-secret", "tempo", str(endpoint_id)])
    assert result.exit_code == 0, result.output
    new = result.output.strip().splitlines()[-1]
    assert new.startswith("whsec_") and new != old
    runner.invoke(args=["sites", "webhooks", "test", "tempo", str(endpoint_id)])
    assert work(app) == 1  # verified with the old secret, as the receiver still has it
    headers = receiver.verified[0].headers
    assert len(headers["webhook-signature"].split(" ")) == 2
    body = _body_of(app, headers["webhook-id"])
    Webhook(new).verify(body, headers)  # and with the new one
    clock.travel(timedelta(hours=24, seconds=1))
    runner.invoke(args=["sites", "webhooks", "test", "tempo", str(endpoint_id)])
    receiver.secret = new
    work(app)
    assert len(receiver.attempts) == 1 and len(receiver.refused) == 1  # signed 24 h ahead of the receiver's clock…
    sent = receiver.refused[-1][1]
    stamp = datetime.fromtimestamp(int(sent["webhook-timestamp"]), UTC)
    signature, expected = (
        sent["webhook-signature"],
        Webhook(new).sign(sent["webhook-id"], stamp, _body_of(app, sent["webhook-id"])),
    )
    assert signature == expected  # …but the one signature is the new secret's alone


def _body_of(app, msg_id: str) -> bytes:
    with app.app_context():
        return db.session.scalar(select(WebhookDelivery.body).filter_by(msg_id=msg_id)).encode()


def test_an_endpoint_answering_410_is_disabled_and_the_owner_mailed(app, api, runner, receiver, mailbox, deliver):
    create = runner.invoke(args=["staff", "create", "owner@tempo.co", "--site", "tempo", "--role", "owner"])
    assert create.exit_code == 0, create.output
    endpoint_id = add_endpoint(runner, receiver)
    receiver.default = 410
    for n in range(3):
        api.post("/v1/readers", json={"email": f"r{n}@example.com", "password": PASSWORD})
    work(app)
    assert receiver.requests == 1  # the first answer disabled it: the others were not sent
    assert {(row.delivered_at, row.dead_at is not None) for row in rows(app)} == {(None, True)}
    listed = runner.invoke(args=["sites", "webhooks", "list", "tempo"]).output
    assert "disabled" in listed
    api.post("/v1/readers", json={"email": "later@example.com", "password": PASSWORD})
    assert not [row for row in rows(app) if row.dead_at is None]  # a disabled endpoint gets no new event
    deliver()
    [mail] = mailbox.to("owner@tempo.co")
    assert "webhook" in mail["msg"]["Subject"].lower()
    receiver.default = 200
    assert runner.invoke(args=["sites", "webhooks", "enable", "tempo", str(endpoint_id)]).exit_code == 0
    first = rows(app)[0].id
    assert runner.invoke(args=["sites", "webhooks", "send-again", "tempo", str(first)]).exit_code == 0
    assert work(app) == 1
    assert receiver.verified[0].msg_id == rows(app)[0].msg_id


@pytest.mark.config(WEBHOOK_RETRY_SECONDS=600, WEBHOOK_RETRY_BASE=60.0, WEBHOOK_RETRY_MAX=120.0)
def test_an_endpoint_failing_for_the_whole_window_is_disabled_and_its_rows_dead(app, api, runner, receiver):
    add_endpoint(runner, receiver)
    receiver.default = 503
    api.post("/v1/readers", json={"email": EMAIL, "password": PASSWORD})
    for _ in range(8):
        work(app)
        clock.travel(timedelta(seconds=150))
    with app.app_context():
        endpoint = db.session.scalars(select(WebhookEndpoint)).one()
        assert endpoint.disabled_at is not None and endpoint.disabled_reason == "failing"
    [row] = rows(app)
    assert row.dead_at is not None and row.attempts >= 4


def test_metrics_count_deliveries_by_outcome_and_the_oldest_waiting(app, api, runner, receiver, client):
    endpoint_id = add_endpoint(runner, receiver)
    receiver.answers = [500]
    runner.invoke(args=["sites", "webhooks", "test", "tempo", str(endpoint_id)])
    work(app)
    clock.travel(timedelta(seconds=20))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'meter_webhook_deliveries_total{outcome="failed"}' in text
    waiting = re.search(r"^meter_webhook_oldest_waiting_seconds (\S+)$", text, re.M)
    assert waiting and float(waiting.group(1)) >= 20
    clock.travel(timedelta(seconds=40))
    work(app)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'meter_webhook_deliveries_total{outcome="delivered"}' in text
    assert re.search(r"^meter_webhook_oldest_waiting_seconds 0\.0$", text, re.M)


def test_the_worker_loop_delivers(app, api, runner, receiver):
    add_endpoint(runner, receiver)
    api.post("/v1/readers", json={"email": EMAIL, "password": PASSWORD})
    with app.app_context():
        worker.run_once()
    assert receiver.ids("reader.registered")


# --- the console (owners) ----------------------------------------------------------------------------


def test_the_console_adds_lists_pings_and_sends_again_for_owners_only(app, api, runner, receiver):
    owner = staff_client(app, runner, "own@tempo.co", "tempo", "owner")
    editor = staff_client(app, runner, "ed@tempo.co", "tempo", "editor")
    assert editor.get("/console/tempo/webhooks").status_code == 403
    page = owner.get("/console/tempo/webhooks")
    assert page.status_code == 200
    csrf = csrf_of(page.get_data(as_text=True))
    refused = owner.post("/console/tempo/webhooks", data={"csrf_token": csrf, "url": "ftp://crm.tempo.co/x"})
    assert refused.status_code == 422 and "https://" in refused.get_data(as_text=True)
    made = owner.post(
        "/console/tempo/webhooks",
        data={"csrf_token": csrf, "url": receiver.url, "events": ["reader.registered", "reader.deleted"]},
    )
    assert made.status_code == 201
    html = made.get_data(as_text=True)
    receiver.secret = re.search(r'id="new-secret" class="key">([^<]+)<', html).group(1)
    assert owner.get("/console/tempo/webhooks").get_data(as_text=True).count(receiver.secret) == 0  # shown once
    with app.app_context():
        endpoint = db.session.scalars(select(WebhookEndpoint)).one()
        assert endpoint.events == ["reader.registered", "reader.deleted"]
        endpoint_id = endpoint.id
    assert (
        owner.post("/console/tempo/webhooks/test", data={"csrf_token": csrf, "endpoint": endpoint_id}).status_code
        == 303
    )
    assert owner.post("/console/tempo/webhooks/test", data={"endpoint": endpoint_id}).status_code == 400  # no CSRF
    assert work(app) == 1
    [ping] = rows(app)
    listed = owner.get("/console/tempo/webhooks").get_data(as_text=True)
    assert f'data-delivery="{ping.id}"' in listed and ping.msg_id in listed
    again = owner.post("/console/tempo/webhooks/send-again", data={"csrf_token": csrf, "delivery": ping.id})
    assert again.status_code == 303
    assert work(app) == 1
    assert receiver.ids() == [ping.msg_id, ping.msg_id]  # the same webhook-id, sent again
    missing = owner.post("/console/tempo/webhooks/send-again", data={"csrf_token": csrf, "delivery": 999})
    assert missing.status_code == 303 and len(receiver.ids()) == 2  # nothing else sent
    assert (
        owner.post("/console/tempo/webhooks/remove", data={"csrf_token": csrf, "endpoint": endpoint_id}).status_code
        == 303
    )
    assert _actions(app)[-4:] == ["webhook.add", "webhook.test", "webhook.send_again", "webhook.remove"]
    with app.app_context():
        assert not any("whsec_" in str(e.detail) for e in db.session.scalars(select(AuditEntry)))
