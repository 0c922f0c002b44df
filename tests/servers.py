"""Real gunicorn servers for the tests that need separate processes (races, faults, soak)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from meter.dev.redis_server import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "test-secret-key"  # TestConfig's: tokens made in-process work on the servers


def server_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METER_", "FLASK_"))}
    env.update(
        METER_ENV="testing",
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        LOG_LEVEL="WARNING",
        PUBLIC_BASE_URL="http://meter.test",
        **extra,
    )
    return env


DEPLOY_CONFIG = ROOT / "deploy" / "gunicorn.conf.py"


class Gunicorn:
    """`gunicorn wsgi:app` on a free loopback port; `stop()` ends it (SIGTERM, then SIGKILL).

    With `config` (deploy/gunicorn.conf.py) the served settings come from that file, as in
    production; only the port and the number of workers are given on the command line.
    """

    def __init__(
        self,
        env: dict[str, str],
        workers: int = 2,
        threads: int = 4,
        log: Path | None = None,
        config: Path | None = None,
    ) -> None:
        self.env, self.workers, self.threads, self.config = env, workers, threads, config
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Gunicorn:
        args = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers)]
        if self.config is not None:
            args += ["-c", str(self.config), "wsgi:app"]
        else:
            args += ["-k", "gthread", "--threads", str(self.threads), "--graceful-timeout", "5", "wsgi:app"]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not answer in time")

    def reload(self) -> None:
        """A graceful reload (HUP), as `systemctl reload meter-web` sends."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGHUP)

    def stop(self) -> None:
        stop_process(self.process, timeout=15)
        self.process = None
