"""A bounded soak: mixed traffic against gunicorn on loopback; zero 5xx, the mail worker's memory flat.

`make soak` (or `python -m tests.soak --seconds 60`). Everything runs on loopback and is stopped at
the end: its own redis-server, an aiosmtpd SMTP server in this process, a SQLite database in a
temporary directory (or DATABASE_URL), gunicorn (2 workers x 4 threads) and one `flask mail worker`.
Clients are threads of this process with persistent connections; each simulated visitor has its own
address in X-Forwarded-For (gunicorn trusts one proxy here), as behind a real load balancer.

The mix: access checks (anonymous and logged-in readers, metered, free and premium), registrations,
activations (links taken from the real mail), logins. Exit status 1 if any 5xx was seen or the mail
worker's RSS grew by more than 10% between the end of the warm-up and the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from aiosmtpd.controller import Controller

from meter.dev.redis_server import RedisProcess, free_port
from tests.servers import ROOT, Gunicorn, server_env

LINK_RE = re.compile(r"https?://[^\s\"'<>]+/activate/([A-Za-z0-9._-]+)")


class Catcher:
    """The SMTP server's handler: counts mail and hands activation tokens to the clients."""

    def __init__(self) -> None:
        self.count = 0
        self.tokens: queue.Queue[str] = queue.Queue()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd hook
        self.count += 1
        text = envelope.content.decode("utf-8", "replace").replace("=\r\n", "")
        for token in dict.fromkeys(LINK_RE.findall(text)):  # the text and HTML parts carry the same link
            self.tokens.put(token)
        return "250 OK"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Client(threading.Thread):
    def __init__(self, n: int, port: int, key: str, catcher: Catcher, stop: threading.Event, stats: dict) -> None:
        super().__init__(daemon=True)
        self.n, self.port, self.key, self.catcher, self.stop, self.stats = n, port, key, catcher, stop, stats
        self.random = random.Random(n)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.tokens: list[str] = []
        self.readers: list[tuple[str, str]] = []

    def call(self, kind: str, method: str, path: str, body: dict, ip: str) -> dict:
        headers = {
            "Authorization": f"Bearer {self.key}",
            "Content-Type": "application/json",
            "X-Forwarded-For": ip,
        }
        start = time.perf_counter()
        try:
            self.conn.request(method, path, json.dumps(body), headers)
            response = self.conn.getresponse()
            data = response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            status, data = 599, b"{}"  # a connection failure counts as a server error
        elapsed = time.perf_counter() - start
        with self.stats["lock"]:
            self.stats["status"][(kind, status)] += 1
            self.stats["latency"].setdefault(kind, []).append(elapsed)
        try:
            return json.loads(data or b"{}")
        except ValueError:
            return {}

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            ip = f"10.{self.n}.{(i // 50) % 250}.{i % 250 + 1}"
            roll = self.random.random()
            article = {"id": f"soak:koran:{self.random.randrange(200)}", "class": "metered"}
            if roll < 0.03:
                email = f"soak-{self.n}-{i}@example.com"
                self.call("register", "POST", "/v1/readers", {"email": email, "password": "rahasia-sekali"}, ip)
                self.readers.append((email, ""))
            elif roll < 0.06:
                try:
                    token = self.catcher.tokens.get_nowait()
                except queue.Empty:
                    continue
                answer = self.call("activate", "POST", "/v1/activations", {"token": token}, ip)
                if answer.get("reader_token"):
                    self.tokens.append(answer["reader_token"])
            elif roll < 0.08 and self.readers:
                email, _ = self.random.choice(self.readers)
                self.call("login", "POST", "/v1/sessions", {"email": email, "password": "rahasia-sekali"}, ip)
            elif roll < 0.55 and self.tokens:
                token = self.random.choice(self.tokens)
                cls = self.random.choice(["metered", "metered", "free", "premium"])
                body = {"reader_token": token, "article": {**article, "class": cls}}
                self.call("access", "POST", "/v1/access", body, ip)
            else:
                visitor = f"visitor-{self.n}-{self.random.randrange(500)}"
                self.call("access", "POST", "/v1/access", {"anonymous_id": visitor, "article": article}, ip)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--max-rss-growth", type=float, default=0.10, help="allowed growth of the worker's RSS")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="meter-soak-"))
    redis_server = RedisProcess(str(tmp / "redis")).start()
    catcher = Catcher()
    smtp = Controller(catcher, hostname="127.0.0.1", port=free_port())
    smtp.start()
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'meter.sqlite3'}"
    env = server_env(
        database_url,
        redis_server.url,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp.port),
        TRUSTED_PROXIES="1",
        FLASK_APP="wsgi",
        # Argon2id at a soak-friendly cost (8 MiB, one pass): the soak is about stability, not hashing.
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_COST="8192",
        ARGON2_PARALLELISM="1",
    )
    server = Gunicorn(env, workers=2, threads=4, log=tmp / "gunicorn.log")
    worker = None
    try:
        flask = [sys.executable, "-m", "flask"]
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
        out = subprocess.run(
            [*flask, "sites", "create", "soak", "--name", "Soak", "--origin", "https://soak.example"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        key = out.stdout.strip().splitlines()[-1]
        server.start()
        log = open(tmp / "worker.log", "ab")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [*flask, "mail", "worker", "--interval", "0.2"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        stats = {"lock": threading.Lock(), "status": Counter(), "latency": {}}
        stop = threading.Event()
        clients = [Client(n, server.port, key, catcher, stop, stats) for n in range(args.clients)]
        started = time.monotonic()
        for c in clients:
            c.start()
        warmup = min(10.0, args.seconds / 4)
        samples: list[tuple[float, int]] = []
        while (elapsed := time.monotonic() - started) < args.seconds:
            samples.append((elapsed, rss_kib(worker.pid)))
            time.sleep(1.0)
        stop.set()
        for c in clients:
            c.join(timeout=40)
        duration = time.monotonic() - started
        time.sleep(1.0)
        samples.append((time.monotonic() - started, rss_kib(worker.pid)))
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=15)
        server.stop()
        smtp.stop()
        redis_server.stop()

    by_status = stats["status"]
    total = sum(by_status.values())
    errors = sum(n for (_kind, status), n in by_status.items() if status >= 500)
    print(
        f"soak: {duration:.1f} s, {args.clients} clients, {total} requests ({total / duration:.0f}/s), database {database_url.split(':')[0]}"
    )
    for kind in sorted({k for k, _ in by_status}):
        counts = ", ".join(f"{s}: {n}" for (k, s), n in sorted(by_status.items()) if k == kind)
        lat = sorted(stats["latency"][kind])
        p50, p99 = statistics.median(lat) * 1000, lat[int(len(lat) * 0.99) - 1] * 1000
        print(f"  {kind:9s} {counts}   p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"  mail delivered over SMTP: {catcher.count}")
    print(f"  5xx (and connection failures): {errors}")
    after_warmup = [rss for t, rss in samples if t >= warmup]
    base, end = after_warmup[0], after_warmup[-1]
    growth = (end - base) / base
    print(
        f"  mail worker RSS: {base / 1024:.1f} MiB after {warmup:.0f} s warm-up, {end / 1024:.1f} MiB at the end "
        f"(min {min(after_warmup) / 1024:.1f}, max {max(after_warmup) / 1024:.1f}), growth {growth:+.1%}"
    )
    ok = errors == 0 and growth <= args.max_rss_growth
    print(
        "  RSS samples (s: MiB): "
        + ", ".join(f"{t:.0f}: {rss / 1024:.1f}" for t, rss in samples[:: max(1, len(samples) // 12)])
    )
    print("soak: PASS" if ok else "soak: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
