"""Registration latency with a fast and with a slow (2 s per message) SMTP server: p50 and p90.

The mail worker runs alongside (a thread calling meter.mail.deliver_due, as `flask mail worker`
does), so the slow server really is busy while readers register. Production Argon2 cost.

    .venv/bin/python -m bench.mail [--registrations 30] [--json bench/mail.json]
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

from meter.embedded import RedisProcess, free_port


class Counting:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received = 0

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        self.received += 1
        return "250 OK"


def run_case(delay: float, registrations: int, redis_url: str, workdir: Path) -> dict:
    from flask_migrate import upgrade

    from meter import create_app, mail, sites
    from meter.extensions import db

    handler = Counting(delay)
    smtp = Controller(handler, hostname="127.0.0.1", port=free_port())
    smtp.start()
    db_url = f"sqlite:///{workdir / f'mail-{delay}.sqlite3'}"
    app = create_app(
        {
            "SECRET_KEY": secrets.token_urlsafe(32),
            "SQLALCHEMY_DATABASE_URI": db_url,
            "REDIS_URL": redis_url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp.port,
            "MAIL_TIMEOUT": 30.0,
        }
    )
    with app.app_context():
        upgrade()
        _site, key = sites.create_site("mailbench", "Mail bench", ["https://bench.example"])
    stop = threading.Event()

    def worker() -> None:
        with app.app_context():
            while not stop.is_set():
                sent, _ = mail.deliver_due()
                db.session.remove()
                if not sent:
                    time.sleep(0.05)

    thread = threading.Thread(target=worker)
    thread.start()
    client = app.test_client()
    took = []
    try:
        for n in range(registrations):
            started = time.perf_counter()
            response = client.post(
                "/v1/readers",
                json={"email": f"r{n}@example.com", "password": "rahasia-sekali"},
                headers={"Authorization": f"Bearer {key}"},
            )
            took.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 202, response.get_data(as_text=True)
    finally:
        stop.set()
        thread.join(120)
        smtp.stop()
        with app.app_context():
            db.engine.dispose()
    took.sort()
    return {
        "smtp_delay_s": delay,
        "registrations": registrations,
        "p50_ms": round(statistics.median(took), 1),
        "p90_ms": round(took[int(0.9 * (len(took) - 1))], 1),
        "max_ms": round(took[-1], 1),
        "mails_delivered_by_the_end": handler.received,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=30)
    parser.add_argument("--json", default="bench/mail.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisProcess(str(Path(tmp) / "redis")).start()
        try:
            fast = run_case(0.0, args.registrations, redis_server.url, Path(tmp))
            slow = run_case(2.0, args.registrations, redis_server.url, Path(tmp))
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
