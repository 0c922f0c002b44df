"""The mail path end to end: the durable outbox, the worker against real (and misbehaving) SMTP servers,
the activation mail's wording and link, the generic answers of the account calls, and header safety.

Every SMTP server here is real: the session's aiosmtpd server, aiosmtpd servers started by a test, or a
plain socket server that accepts and never answers. Every server a test starts is stopped by it.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
from datetime import timedelta

import pytest
import redis as redis_lib
from aiosmtpd.controller import Controller
from sqlalchemy import select

from meter import create_app
from meter.dev.redis_server import free_port
from meter.platform import clock, mail
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.sites.rules import sites
from tests.conftest import (
    Api,
    Mailbox,
    _config_dict,
    html_of,
    links_in,
    make_site,
    past_the_mail_budget,
    text_of,
    token_of,
)

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def build_app(redis_url, smtp_server, database_url):
    """Make the test's app with its own config (on the test's fresh database); undone at teardown."""
    controller, mailbox = smtp_server
    made = []
    redis_lib.Redis.from_url(redis_url).flushall()
    mailbox.clear()
    clock.reset()
    sites.forget_cached()

    def build(**overrides):
        assert not made, "one app per test: they would share the test's database"
        app = create_app(
            {
                **_config_dict(),
                "SQLALCHEMY_DATABASE_URI": database_url,
                "REDIS_URL": redis_url,
                "MAIL_SERVER": "127.0.0.1",
                "MAIL_PORT": controller.port,
                **overrides,
            }
        )
        made.append(app)
        return app

    yield build
    for app in made:
        with app.app_context():
            db.engine.dispose()
    clock.reset()
    sites.forget_cached()


def site_api(app) -> Api:
    return Api(app.test_client(), make_site(app), "tempo")


def outbox(app) -> list[OutboxMail]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)).all()
        db.session.expunge_all()
        return rows


def deliver_with(app) -> tuple[int, int]:
    with app.app_context():
        return mail.deliver_due()


def queue_direct(app, to: str, kind: str = "password_reset", **extra) -> None:
    """`meter.mail.queue` called as code would, outside any request."""
    with app.test_request_context():
        site = sites.info(sites.by_slug("tempo"))
        context = {"site": site, "quota": 2, "link": "http://meter.test/x", "email": to, **extra}
        mail.queue(kind, to, "id", site.id, **context)
        db.session.commit()


@dataclasses.dataclass
class Smtp:
    """An aiosmtpd server of a test's own, with its own mailbox."""

    controller: Controller
    mailbox: Mailbox

    @property
    def port(self) -> int:
        return self.controller.port


@pytest.fixture
def start_smtp():
    started: list[Controller] = []

    def start(handler=None, port: int | None = None) -> Smtp:
        box = handler or Mailbox()
        controller = Controller(box, hostname="127.0.0.1", port=port or free_port())
        controller.start()
        started.append(controller)
        return Smtp(controller, box)

    yield start
    for controller in started:
        controller.stop()


class RefusingMailbox(Mailbox):
    """Answers `code` to RCPT or DATA for one address; takes mail for everyone else."""

    def __init__(self, verb: str, code: str, victim: str) -> None:
        super().__init__()
        self.verb, self.code, self.victim = verb, code, victim
        self.tries = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.victim:
            with self.lock:
                self.tries += 1
            if self.verb == "RCPT":
                return self.code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.verb == "DATA" and self.victim in envelope.rcpt_tos:
            return self.code
        return await super().handle_DATA(server, session, envelope)


class HangingServer:
    """Accepts TCP connections and then says nothing at all, not even the SMTP greeting."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:  # socket.timeout, or closed
                continue
            self.accepted.append(conn)  # and never a byte back

    def __enter__(self) -> HangingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


# --- the outbox survives an outage -------------------------------------------------------------


def test_outage_keeps_the_mail_backs_off_and_delivers_once_when_smtp_returns(build_app, start_smtp, mailbox):
    port = free_port()  # nothing listens here (yet)
    app = build_app(MAIL_PORT=port, MAIL_RETRY_BASE=10.0, MAIL_RETRY_MAX=3600.0)
    api = site_api(app)

    response = api.post("/v1/readers", json={"email": "pembaca@example.com", "password": "rahasia-sekali"})
    assert response.status_code == 202
    assert response.get_json() == {"status": "activation_sent"}
    [row] = outbox(app)
    assert (row.to_addr, row.kind, row.attempts, row.sent_at) == ("pembaca@example.com", "activation", 0, None)

    assert deliver_with(app) == (0, 1)
    [row] = outbox(app)
    first_delay = (row.next_attempt_at - utcnow()).total_seconds()
    assert row.attempts == 1 and row.sent_at is None and row.dead_at is None and row.locked_until is None
    assert "Connection" in row.last_error or "refused" in row.last_error.lower(), row.last_error
    assert 8 <= first_delay <= 10.5

    assert deliver_with(app) == (0, 0)  # not due yet: nothing tried
    assert outbox(app)[0].attempts == 1

    clock.travel(timedelta(seconds=first_delay + 1))
    assert deliver_with(app) == (0, 1)
    [row] = outbox(app)
    second_delay = (row.next_attempt_at - utcnow()).total_seconds()
    assert row.attempts == 2 and row.last_error
    assert second_delay > first_delay + 5  # the back-off grows (10 s, then 20 s)

    smtp = start_smtp(port=port)  # SMTP is back, on the same port
    assert deliver_with(app) == (0, 0)  # still waiting for its time
    clock.travel(timedelta(seconds=second_delay + 1))
    assert deliver_with(app) == (1, 0)
    assert deliver_with(app) == (0, 0)
    clock.travel(timedelta(days=1))
    assert deliver_with(app) == (0, 0)

    assert [m["to"] for m in smtp.mailbox.messages] == [["pembaca@example.com"]]
    assert mailbox.messages == []  # the session's server was never involved
    [row] = outbox(app)
    assert row.sent_at is not None and row.attempts == 3 and row.dead_at is None


# Without the SMTP timeout this would hang: fail well before the suite's 120 s instead. The limit counts
# the fixtures too: run first under load, their start (Redis, the SMTP server, the database) took 8 s.
@pytest.mark.timeout(60)
def test_a_server_that_never_answers_cannot_stall_the_worker(build_app):
    with HangingServer() as hanging:
        app = build_app(MAIL_PORT=hanging.port, MAIL_TIMEOUT=1.0)
        site_api(app)
        queue_direct(app, "pembaca@example.com")

        started = time.monotonic()
        assert deliver_with(app) == (0, 1)
        elapsed = time.monotonic() - started
        assert 0.8 <= elapsed < 2.0, elapsed  # the timeout was applied: it waited, and not for long
        assert hanging.accepted  # it really connected to the silent server

        [row] = outbox(app)
        assert row.attempts == 1 and row.sent_at is None and row.dead_at is None and row.locked_until is None
        assert "timed out" in row.last_error.lower(), row.last_error
        assert row.next_attempt_at <= utcnow()  # MAIL_RETRY_BASE is 0 here: due again at once

        assert deliver_with(app) == (0, 1)  # the next pass tries it again
        assert outbox(app)[0].attempts == 2


def test_a_hanging_server_costs_one_timeout_per_pass_not_one_per_mail(build_app):
    with HangingServer() as hanging:
        app = build_app(MAIL_PORT=hanging.port, MAIL_TIMEOUT=0.5)
        site_api(app)
        for n in range(3):
            queue_direct(app, f"pembaca{n}@example.com")

        started = time.monotonic()
        sent, failed = deliver_with(app)
        elapsed = time.monotonic() - started

        rows = outbox(app)
        assert sent == 0 and failed >= 1
        assert all(r.sent_at is None and r.dead_at is None and r.locked_until is None for r in rows)
        # With MAIL_TIMEOUT 10 s and a batch of 100, one pass would otherwise hang for 1000 s.
        assert elapsed < 1.0, elapsed


@pytest.mark.parametrize(
    ("verb", "code"),
    [("RCPT", "554 5.7.1 Recipient refused"), ("DATA", "451 4.3.0 Try again later")],
)
def test_smtp_refusals_are_retried_then_become_dead_letters(build_app, start_smtp, verb, code):
    smtp = start_smtp(RefusingMailbox(verb, code, "bounce@example.com"))
    app = build_app(MAIL_PORT=smtp.port, MAIL_MAX_ATTEMPTS=3)
    site_api(app)
    queue_direct(app, "bounce@example.com")
    queue_direct(app, "pembaca@example.com")

    assert deliver_with(app) == (1, 1)  # one refusal does not stop the rest of the batch
    assert [m["to"] for m in smtp.mailbox.messages] == [["pembaca@example.com"]]
    bounce = outbox(app)[0]
    assert bounce.attempts == 1 and bounce.dead_at is None and bounce.sent_at is None
    assert code.split()[0] in bounce.last_error, bounce.last_error

    assert deliver_with(app) == (0, 1)
    assert outbox(app)[0].dead_at is None  # still retried after 2 attempts
    assert deliver_with(app) == (0, 1)
    bounce = outbox(app)[0]
    assert bounce.attempts == 3 and bounce.dead_at is not None and bounce.sent_at is None
    assert smtp.mailbox.tries == 3

    clock.travel(timedelta(days=30))
    assert deliver_with(app) == (0, 0)  # a dead letter is never tried again
    assert smtp.mailbox.tries == 3
    assert outbox(app)[0].attempts == 3
    assert len(smtp.mailbox.messages) == 1


@pytest.mark.timeout(30)
def test_two_workers_racing_send_each_mail_once(app, mailbox):
    make_site(app)
    addresses = [f"pembaca{n}@example.com" for n in range(20)]
    for address in addresses:
        queue_direct(app, address)

    barrier = threading.Barrier(2)
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=5)
                results.append(mail.deliver_due())
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert sum(sent for sent, _ in results) == 20
    assert sum(failed for _, failed in results) == 0

    received = sorted(rcpt for m in mailbox.messages for rcpt in m["to"])
    assert received == sorted(addresses)  # each exactly once
    assert all(row.sent_at is not None and row.attempts == 1 for row in outbox(app))
    assert deliver_with(app) == (0, 0)


def test_a_mail_smtplib_cannot_send_is_a_counted_failure_not_a_crash(app, api, mailbox):
    # Registration refuses SMTPUTF8 local parts (Flask-Mail cannot send to them) ...
    response = api.post("/v1/readers", json={"email": "pémbaca@example.com", "password": "rahasia-sekali"})
    assert response.status_code == 422
    # ... but a row that cannot be sent (here, queued directly) must not poison the worker.
    queue_direct(app, "pémbaca@example.com")
    queue_direct(app, "pembaca@example.com")

    with app.app_context():
        assert mail.deliver_due() == (1, 1)  # did not raise; the next row still went out
    assert [m["to"] for m in mailbox.messages] == [["pembaca@example.com"]]
    bad = outbox(app)[0]
    assert bad.to_addr == "pémbaca@example.com" and bad.sent_at is None and bad.dead_at is None
    assert bad.attempts == 1 and bad.last_error and bad.locked_until is None  # counted, released, retried


# --- the activation mail -----------------------------------------------------------------------


def _only_mail(mailbox, address):
    mails = mailbox.to(address)
    assert len(mails) == 1, [m["msg"]["Subject"] for m in mails]
    return mails[0]


def test_activation_mail_default_is_indonesian(api, mailbox, deliver, client):
    response = api.post("/v1/readers", json={"email": "pembaca@example.com", "password": "rahasia-sekali"})
    assert response.status_code == 202
    assert deliver() == (1, 0)
    envelope = _only_mail(mailbox, "pembaca@example.com")
    msg = envelope["msg"]
    assert envelope["to"] == ["pembaca@example.com"]
    assert msg["To"] == "pembaca@example.com"
    assert msg["Subject"] == "Aktifkan akun Tempo Anda"
    assert msg["From"] == "Tempo <no-reply@localhost>"  # the site's name, MAIL_DEFAULT_SENDER's address

    text, html = text_of(msg), html_of(msg)
    assert msg.get_body(preferencelist=("plain",)).get_content_type() == "text/plain"
    assert msg.get_body(preferencelist=("html",)).get_content_type() == "text/html"
    assert "Terima kasih telah mendaftar di Tempo" in text and "2 artikel gratis" in text
    assert "2 artikel gratis" in html and "Aktifkan Akun" in html

    [link] = [link for link in links_in(msg) if "/activate/" in link]
    assert link.startswith("http://meter.test/tempo/activate/")
    assert f'href="{link}"' in html

    path = link.removeprefix("http://meter.test")
    page = client.get(path)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    form = re.search(r'<form[^>]*method="post"[^>]*action="([^"]+)"', body)
    assert form, body
    assert form.group(1).split("?")[0] == path.split("?")[0]  # the page posts to itself
    # a GET (a mail scanner following the link) activates nothing
    login = api.post("/v1/sessions", json={"email": "pembaca@example.com", "password": "rahasia-sekali"})
    assert login.get_json()["reader"]["state"] == "registered"


def test_activation_mail_follows_the_site_quota(api, runner, mailbox, deliver):
    result = runner.invoke(args=["sites", "policy", "tempo", "--set", "quota.verified=3"])
    assert result.exit_code == 0, result.output
    assert api.post("/v1/readers", json={"email": "pembaca@example.com", "password": "rahasia-sekali"}).status_code
    assert deliver() == (1, 0)
    msg = _only_mail(mailbox, "pembaca@example.com")["msg"]
    assert "3 artikel gratis" in text_of(msg) and "3 artikel gratis" in html_of(msg)
    assert "2 artikel" not in text_of(msg)


def test_activation_mail_in_english_for_an_english_reader(api, mailbox, deliver):
    body = {"email": "reader@example.com", "password": "rahasia-sekali", "locale": "en"}
    assert api.post("/v1/readers", json=body).status_code == 202
    assert deliver() == (1, 0)
    msg = _only_mail(mailbox, "reader@example.com")["msg"]
    assert msg["Subject"] == "Activate your Tempo account"
    text, html = text_of(msg), html_of(msg)
    assert "Thank you for registering with Tempo" in text and "2 free articles" in text
    assert "2 free articles" in html and "Activate account" in html
    assert "artikel" not in text
    [link] = [link for link in links_in(msg) if "/activate/" in link]
    assert link.startswith("http://meter.test/tempo/activate/")


# --- generic answers, and what each one sends --------------------------------------------------


def test_registering_a_verified_address_again_sends_already_registered(api, mailbox, deliver, verified_reader):
    verified_reader("pembaca@example.com")
    mailbox.clear()
    past_the_mail_budget()
    response = api.post("/v1/readers", json={"email": "PEMBACA@Example.com", "password": "another-password"})
    assert response.status_code == 202
    assert response.get_json() == {"status": "activation_sent"}  # the very same answer as a new address
    assert deliver() == (1, 0)
    [envelope] = mailbox.messages
    assert envelope["to"] == ["pembaca@example.com"]  # the stored address, not the one typed
    msg = envelope["msg"]
    assert msg["Subject"] == "Anda sudah memiliki akun Tempo"
    text = text_of(msg)
    assert "sudah memiliki akun" in text and "http://meter.test/tempo/login" in text
    assert "http://meter.test/tempo/forgot-password" in text
    assert not [link for link in links_in(msg) if "/activate/" in link]
    assert "/activate/" not in html_of(msg)
    # and the password was not changed by the second registration
    login = api.post("/v1/sessions", json={"email": "pembaca@example.com", "password": "another-password"})
    assert login.status_code == 401


def test_registering_an_unverified_address_again_sends_a_new_activation(api, mailbox, deliver, register):
    first = register("pembaca@example.com")
    mailbox.clear()
    past_the_mail_budget()
    response = api.post("/v1/readers", json={"email": "pembaca@example.com", "password": "rahasia-sekali"})
    assert response.status_code == 202 and response.get_json() == {"status": "activation_sent"}
    assert deliver() == (1, 0)
    msg = _only_mail(mailbox, "pembaca@example.com")["msg"]
    assert msg["Subject"] == "Aktifkan akun Tempo Anda"
    [second] = [link for link in links_in(msg) if "/activate/" in link]
    assert second.startswith("http://meter.test/tempo/activate/")
    activated = api.post("/v1/activations", json={"token": token_of(second)})
    assert activated.status_code == 200 and activated.get_json()["state"] == "verified"
    assert first  # the first link was a real one too


@pytest.mark.parametrize("path", ["/v1/readers/resend-activation", "/v1/password-resets"])
def test_unknown_address_gets_202_and_no_mail(app, api, mailbox, deliver, path):
    response = api.post(path, json={"email": "nobody@example.com"})
    assert response.status_code == 202
    assert outbox(app) == []
    assert deliver() == (0, 0)
    assert mailbox.messages == []


def test_resend_activation_for_a_known_unverified_address_sends_one_mail(app, api, mailbox, deliver, register):
    register("pembaca@example.com")
    mailbox.clear()
    past_the_mail_budget()
    response = api.post("/v1/readers/resend-activation", json={"email": "Pembaca@EXAMPLE.com"})
    assert response.status_code == 202 and response.get_json() == {"status": "activation_sent"}
    assert deliver() == (1, 0)
    msg = _only_mail(mailbox, "pembaca@example.com")["msg"]
    assert [link for link in links_in(msg) if link.startswith("http://meter.test/tempo/activate/")]
    assert len(mailbox.messages) == 1


def test_resend_activation_for_a_verified_address_sends_nothing(api, mailbox, deliver, verified_reader):
    verified_reader("pembaca@example.com")
    mailbox.clear()
    past_the_mail_budget()
    response = api.post("/v1/readers/resend-activation", json={"email": "pembaca@example.com"})
    assert response.status_code == 202 and response.get_json() == {"status": "activation_sent"}
    assert deliver() == (0, 0)
    assert mailbox.messages == []


def test_password_reset_for_a_known_address_sends_one_mail(api, mailbox, deliver, verified_reader):
    verified_reader("pembaca@example.com")
    mailbox.clear()
    response = api.post("/v1/password-resets", json={"email": "pembaca@example.com"})
    assert response.status_code == 202
    assert deliver() == (1, 0)
    [envelope] = mailbox.messages
    assert envelope["to"] == ["pembaca@example.com"]
    assert envelope["msg"]["Subject"] == "Atur ulang kata sandi Tempo"
    assert [link for link in links_in(envelope["msg"]) if link.startswith("http://meter.test/tempo/reset-password/")]


# --- header safety -----------------------------------------------------------------------------

HOSTILE_EMAILS = [
    "pembaca@example.com\r\nBcc: evil@example.com",
    "pembaca@example.com\nCc: evil@example.com",
    "pembaca@example.com\rBcc: evil@example.com",
    "pembaca@example.com\r\n\r\nbody",
    "pembaca@example.com, evil@example.com",
    "pembaca@example.com\u2028Bcc: evil@example.com",
    "Pembaca <pembaca@example.com>\r\nBcc: evil@example.com",
    '"pem\r\nbaca"@example.com',
]


@pytest.mark.parametrize("hostile", HOSTILE_EMAILS)
def test_an_address_with_line_breaks_is_refused_and_mails_nobody(app, api, mailbox, deliver, hostile):
    response = api.post("/v1/readers", json={"email": hostile, "password": "rahasia-sekali"})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "email" in response.get_json()["errors"]
    for path in ("/v1/readers/resend-activation", "/v1/password-resets"):
        assert api.post(path, json={"email": hostile}).status_code == 202
    assert outbox(app) == []
    assert deliver() == (0, 0)
    assert mailbox.messages == []


def test_a_site_name_with_line_breaks_is_refused(app):
    with app.app_context(), pytest.raises(ValueError, match="printable"):
        sites.create_site("tempo", "Tempo\r\nBcc: evil@example.com", ["https://tempo.co"])
    assert make_site(app)  # the slug was not half-taken


def test_queue_refuses_hostile_recipients_and_strips_control_characters_from_the_subject(app, mailbox, deliver):
    make_site(app)
    with app.test_request_context():
        site = sites.info(sites.by_slug("tempo"))
        hostile_site = dataclasses.replace(site, name="Tempo\r\nBcc: evil@example.com\x00\x7f\t")
        context = {"site": hostile_site, "link": "http://meter.test/x", "email": "x"}
        for recipient in ("pembaca@example.com\r\nBcc: evil@example.com", "pembaca@example.com\x00"):
            with pytest.raises(ValueError):  # an address is never mangled into another one
                mail.queue("password_reset", recipient, "id", site.id, **context)
        mail.queue("password_reset", "pembaca@example.com", "id", site.id, **context)
        db.session.commit()

    [row] = outbox(app)
    assert row.to_addr == "pembaca@example.com"
    assert not CONTROL.search(row.subject), repr(row.subject)
    assert row.subject == "Atur ulang kata sandi TempoBcc: evil@example.com"

    deliver()
    [envelope] = mailbox.messages
    assert envelope["to"] == ["pembaca@example.com"]
    msg = envelope["msg"]
    assert msg["Bcc"] is None and msg["Cc"] is None
    assert len(msg.get_all("To")) == 1 and len(msg.get_all("Subject")) == 1
