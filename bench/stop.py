"""How long gunicorn, as deployed (deploy/gunicorn.conf.py), takes to stop: idle, and right after
a burst of requests. The master waits for its workers before it exits, and systemd waits for the
master; a restart (an upgrade) stalls requests at least that long.

    .venv/bin/python -m bench.stop [--rounds 5]

Prints each round's seconds from SIGTERM to the master's exit, and their median. The stall of a
HUP and of a restart under load is measured by tests/e2e/test_reload.py (it prints "slowest … ms").
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from meter.dev.redis_server import RedisProcess, free_port  # noqa: E402
from tests.servers import DEPLOY_CONFIG, server_env  # noqa: E402


def wait_up(url: str) -> None:
    for _ in range(600):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="meter-bench-stop-")
    redis = RedisProcess(f"{folder}/redis").start()
    try:
        env = server_env(f"sqlite:///{folder}/meter.sqlite3", redis.url)
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                       capture_output=True, check=True)  # fmt: skip
        took = []
        for n in range(args.rounds):
            port = free_port()
            command = [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY_CONFIG), "-b", f"127.0.0.1:{port}",
                       "-w", str(args.workers), "wsgi:app"]  # fmt: skip
            server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_up(f"http://127.0.0.1:{port}/healthz")
            for _ in range(200 if n % 2 else 0):  # every other round right after a burst
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
            time.sleep(1.0)
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.wait(60)
            took.append(time.monotonic() - started)
            print(
                f"round {n + 1}: {'after 200 requests' if n % 2 else 'idle'}: stopped in {took[-1]:.2f} s", flush=True
            )
        print(f"median {statistics.median(took):.2f} s, max {max(took):.2f} s over {len(took)} rounds")
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
