"""A publisher's webhook receiver on loopback: a real HTTP server (threading http.server) that verifies
every delivery with the `standardwebhooks` package from PyPI, as a receiver would, and answers what
the test scripts (a status per request, or a function of the request).

`attempts` holds each delivery whose signature checked out, with the status answered; `verified` those
of them answered 2xx (webhook-id, the parsed body, headers); `refused` each one whose signature did not
check out (with why). `port` stays the same across `stop()` and `start()`, so a
test can take the receiver down and bring it back where the endpoint points.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Delivery:
    msg_id: str
    payload: dict
    headers: dict
    path: str


@dataclass
class Receiver:
    secret: str | None = None
    answers: list[int] = field(default_factory=list)  # statuses to answer in order; then `default`
    default: int = 200
    answer: Callable[[Delivery | None], int] | None = None  # when set, decides the status instead
    body: bytes = b"ok"
    delay: float = 0.0
    verified: list[Delivery] = field(default_factory=list)  # signed right and answered 2xx
    attempts: list[tuple[Delivery, int]] = field(default_factory=list)  # signed right, with the status answered
    refused: list[tuple[str, dict]] = field(default_factory=list)
    requests: int = 0
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/meter"

    def ids(self, event_type: str | None = None) -> list[str]:
        return [d.msg_id for d in self.verified if event_type is None or d.payload["type"] == event_type]

    def of_type(self, event_type: str) -> list[dict]:
        return [d.payload for d in self.verified if d.payload["type"] == event_type]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                delivery = None
                try:
                    payload = Webhook(receiver.secret).verify(raw, headers)
                except (WebhookVerificationError, ValueError, TypeError) as exc:
                    with receiver._lock:
                        receiver.refused.append((str(exc), headers))
                else:
                    delivery = Delivery(headers["webhook-id"], payload, headers, self.path)
                with receiver._lock:
                    receiver.requests += 1
                    if receiver.answer is not None:
                        status = receiver.answer(delivery)
                    else:
                        status = receiver.answers.pop(0) if receiver.answers else receiver.default
                    if delivery is not None:
                        receiver.attempts.append((delivery, status))
                        if 200 <= status < 300:
                            receiver.verified.append(delivery)
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(receiver.body)))
                    self.end_headers()
                    self.wfile.write(receiver.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # meter gave up first (its 5 s limit, a test's short one): nothing to tell it

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
