"""Registration latency with a fast and with a slow (2 s per message) SMTP server: p50 and p90.

Both run at once, each app with its own database, SMTP server and mail worker (a thread calling
meter.mail.deliver_due, as `flask mail worker` does), so the slow server really is busy while
readers register; registrations alternate between the two. Production Argon2 cost.

    .venv/bin/python -m bench.mail [--registrations 40] [--json bench/mail.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from meter.dev.redis_server import RedisProcess, free_port


class Counting:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received = 0

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        self.received += 1
        return "250 OK"


class Case:
    """An app on its own database, its SMTP server (answering after `delay` s) and its mail worker thread."""

    def __init__(self, delay: float, redis_url: str, workdir: Path) -> None:
        from flask_migrate import upgrade

        from meter import create_app
        from meter.sites.rules import sites

        self.delay = delay
        self.handler = Counting(delay)
        self.smtp = Controller(self.handler, hostname="127.0.0.1", port=free_port())
        self.smtp.start()
        self.app = create_app(
            {
                "SECRET_KEY": secrets.token_urlsafe(32),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / f'mail-{delay}.sqlite3'}",
                "REDIS_URL": redis_url,
                "MAIL_SERVER": "127.0.0.1",
                "MAIL_PORT": self.smtp.port,
                "MAIL_TIMEOUT": 30.0,
                "RATELIMIT_ENABLED": False,  # 80 registrations from one address in a minute, on purpose
            }
        )
        with self.app.app_context():
            upgrade()
            _site, self.key = sites.create_site("mailbench", "Mail bench", ["https://bench.example"])
        self.client = self.app.test_client()
        self.took: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._worker)
        self.thread.start()

    def _worker(self) -> None:
        from meter.platform import mail
        from meter.platform.db import db

        with self.app.app_context():
            while not self.stop.is_set():
                sent, _ = mail.deliver_due(limit=1)  # one at a time: stops soon after the last registration
                db.session.remove()
                if not sent:
                    time.sleep(0.05)

    def register(self, n: int) -> None:
        started = time.perf_counter()
        response = self.client.post(
            "/v1/readers",
            json={"email": f"r{n}@example.com", "password": "rahasia-sekali"},
            headers={"Authorization": f"Bearer {self.key}"},
        )
        self.took.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 202, response.get_data(as_text=True)

    def close(self) -> dict:
        from meter.platform.db import db

        self.stop.set()
        self.thread.join(300)
        self.smtp.stop()
        with self.app.app_context():
            db.engine.dispose()
        took = sorted(self.took)
        return {
            "smtp_delay_s": self.delay,
            "registrations": len(took),
            "p50_ms": round(statistics.median(took), 1),
            "p90_ms": round(took[int(0.9 * (len(took) - 1))], 1),
            "max_ms": round(took[-1], 1),
            "mails_delivered_by_the_end": self.handler.received,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=40)
    parser.add_argument("--json", default="bench/mail.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisProcess(str(Path(tmp) / "redis")).start()
        try:
            cases = [Case(0.0, redis_server.url, Path(tmp)), Case(2.0, redis_server.url, Path(tmp))]
            try:
                for n in range(args.registrations):  # alternately, so drift of a shared machine hits both,
                    for case in cases if n % 2 else cases[::-1]:  # each going first every other time
                        case.register(n)
            finally:
                fast, slow = (case.close() for case in cases)
        finally:
            redis_server.stop()
    ratio = round(slow["p50_ms"] / fast["p50_ms"], 3)
    for row in (fast, slow):
        print(
            f"SMTP {row['smtp_delay_s']:.0f} s/message: registration p50 {row['p50_ms']} ms, p90 {row['p90_ms']} ms, "
            f"max {row['max_ms']} ms ({row['mails_delivered_by_the_end']} mails delivered meanwhile)"
        )
    print(f"slow/fast p50 = {ratio} (target <= 1.2)")
    Path(args.json).write_text(json.dumps({"fast": fast, "slow": slow, "p50_ratio": ratio}, indent=2) + "\n")


if __name__ == "__main__":
    main()
