"""No request waits on SMTP: mail goes to the outbox in the request, and to SMTP only in the worker.

Registration latency must not grow when the SMTP server is slow. Here that is
asserted at the root: a request never opens an SMTP connection at all, and requests made while the
worker is held inside an SMTP exchange all finish while it is still there. `python -m bench.mail`
measures the p50s.
"""

from __future__ import annotations

import asyncio
import threading
import time

from aiosmtpd.controller import Controller

from meter.dev.redis_server import free_port
from meter.platform import mail
from tests.conftest import Mailbox
from tests.functional.test_mail import HangingServer, build_app, outbox, site_api  # noqa: F401  (build_app is a fixture)


def test_no_request_opens_an_smtp_connection(build_app):  # noqa: F811 (the fixture)
    with HangingServer() as hanging:  # any SMTP attempt would connect here and hang until MAIL_TIMEOUT
        # one address is mailed several times within a minute: the mail budget is not what is tested
        app = build_app(MAIL_PORT=hanging.port, RATELIMIT_RESEND_EMAIL="100/minute")
        api = site_api(app)
        calls = [
            ("/v1/readers", {"email": "a@example.com", "password": "rahasia-sekali"}),
            ("/v1/readers", {"email": "b@example.com", "password": "rahasia-sekali", "locale": "en"}),
            ("/v1/readers", {"email": "a@example.com", "password": "rahasia-sekali"}),  # again: a second mail
            ("/v1/readers/resend-activation", {"email": "b@example.com"}),
            ("/v1/password-resets", {"email": "a@example.com"}),
        ]
        took = []
        for path, body in calls:
            started = time.perf_counter()
            assert api.post(path, json=body).status_code == 202
            took.append(time.perf_counter() - started)
        assert hanging.accepted == []  # not one connection to the SMTP server from a request
        assert max(took) < app.config["MAIL_TIMEOUT"]
        assert len(outbox(app)) == 5  # every mail waits in the outbox for the worker


class HeldHandler(Mailbox):
    """An SMTP server that holds each message until the test lets it go: the worker is inside its SMTP
    exchange for exactly as long as the test needs, however busy the machine is."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.entered.set()
        while not self.release.is_set():
            await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


def test_registrations_finish_while_the_worker_waits_on_a_slow_smtp_server(build_app):  # noqa: F811
    handler = HeldHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        app = build_app(MAIL_PORT=controller.port, MAIL_TIMEOUT=30.0)
        api = site_api(app)
        assert api.post("/v1/readers", json={"email": "first@example.com", "password": "rahasia-sekali"}).status_code
        result: list = []

        def worker() -> None:
            with app.app_context():
                result.append(mail.deliver_due())

        thread = threading.Thread(target=worker)
        thread.start()
        assert handler.entered.wait(20), "the worker never reached the SMTP server"
        for n in range(3):  # while the worker is inside its SMTP exchange, held there
            response = api.post("/v1/readers", json={"email": f"r{n}@example.com", "password": "rahasia-sekali"})
            assert response.status_code == 202
        assert thread.is_alive() and not handler.to("first@example.com")  # the requests did not wait for it
        assert len(outbox(app)) == 4
        handler.release.set()
        thread.join(30)
        assert result and result[0][0] >= 1  # the held server got the first mail once let go
        assert handler.to("first@example.com")
    finally:
        handler.release.set()
        controller.stop()
