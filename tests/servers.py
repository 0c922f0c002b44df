"""Real gunicorn servers for the tests that need separate processes (races, faults, soak)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from meter.dev.redis_server import free_port, stop_process
from tests.paths import ROOT_DIR

ROOT = ROOT_DIR
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
        SOCIAL_PRIVATE_ISSUERS="1",  # as TestConfig: the suite's OpenID provider runs on loopback
    )
    env.update(extra)  # the caller's settings win
    return env


DEPLOY_CONFIG = ROOT / "deploy" / "gunicorn.conf.py"

# Starts gunicorn as systemd's socket activation does (deploy/systemd/meter-web.socket): the listening
# socket, passed in as argv[1], becomes fd 3, and LISTEN_FDS/LISTEN_PID name it for this very process.
SOCKET_ACTIVATION = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); "
    "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid())); "
    "os.execv(sys.executable, [sys.executable, '-m', 'gunicorn', *sys.argv[2:]])"
)


def listening_socket() -> socket.socket:
    """A loopback socket that listens, as systemd holds one for a .socket unit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    return sock


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
        listener: socket.socket | None = None,
        worker_class: str = "gthread",
    ) -> None:
        self.env, self.workers, self.threads, self.config = env, workers, threads, config
        self.worker_class = worker_class
        self.listener = listener  # given: gunicorn inherits it, as from systemd, and binds nothing
        self.port = listener.getsockname()[1] if listener is not None else free_port()
        self.log = log
        self.process: subprocess.Popen | None = None
        self._replaced: set[int] = set()  # the workers the last reload replaces

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> Gunicorn:  # under load, 12 s and more to its first answer
        args = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers)]
        if self.config is not None:
            args += ["-c", str(self.config), "wsgi:app"]
        else:
            # --preload as deployed (deploy/gunicorn.conf.py): the app is made once in the master and each
            # worker is a fork, instead of every worker importing and making it again
            args += ["-k", self.worker_class, "--threads", str(self.threads), "--graceful-timeout", "5", "--preload"]
            args += ["--no-control-socket", "wsgi:app"]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
        fds: tuple[int, ...] = ()
        if self.listener is not None:
            fds = (self.listener.fileno(),)
            args = [sys.executable, "-c", SOCKET_ACTIVATION, str(fds[0]), *args[3:]]
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, pass_fds=fds
        )
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
        """A graceful reload (HUP), as `systemctl reload meter-web` sends; it returns at once, as
        systemctl does. `reloaded()` waits until the workers forked before it have all gone."""
        assert self.process is not None
        self._replaced = self.worker_pids()
        os.kill(self.process.pid, signal.SIGHUP)

    def worker_pids(self) -> set[int]:
        """The master's children now (read from /proc)."""
        assert self.process is not None
        master, children = self.process.pid, set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master and fields[0] != "Z":
                children.add(int(entry))
        return children

    def reloaded(self, timeout: float = 60.0) -> None:
        """Wait until the last reload is over: no worker from before it is left, and all new ones run.
        Until then a request may still reach an old worker, with the old settings."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.worker_pids()
            if not now & self._replaced and len(now) >= self.workers:
                return
            time.sleep(0.05)
        raise AssertionError(f"the reload did not end in {timeout} s: workers {self.worker_pids()}")

    def stop(self) -> None:
        stop_process(self.process, timeout=15)
        self.process = None


NGINX = "/usr/sbin/nginx"
NGINX_CONFIG = ROOT / "deploy" / "nginx" / "meter.conf"


class Nginx:
    """Debian's nginx running deploy/nginx/meter.conf, rendered for a test: loopback on free ports,
    a self-signed certificate, gunicorn at `upstream_port`, logs and temporary files under `root`.

    `render` fails when a line it rewrites is no longer in the file, so the test follows the file.
    """

    def __init__(self, root: Path, upstream_port: int) -> None:
        self.root, self.upstream_port = root, upstream_port
        self.https_port, self.http_port = free_port(), free_port()
        self.logs = root / "logs"
        self.cert, self.key = root / "cert.pem", root / "key.pem"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def make_certificate(self) -> None:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(self.key), "-out", str(self.cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def render(self) -> str:
        text = NGINX_CONFIG.read_text()
        replacements = [
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{self.https_port} ssl http2;"),
            ("listen 80;", f"listen 127.0.0.1:{self.http_port};"),
            ("server 127.0.0.1:8000;", f"server 127.0.0.1:{self.upstream_port};"),
            ("/etc/letsencrypt/live/meter.example.org/fullchain.pem", str(self.cert)),
            ("/etc/letsencrypt/live/meter.example.org/privkey.pem", str(self.key)),
            ("/var/log/nginx/", f"{self.logs}/"),
            ("/var/www/letsencrypt", str(self.root / "acme")),
            ("server_name meter.example.org;", "server_name 127.0.0.1;"),
            ('set $meter_https_port "";', f'set $meter_https_port ":{self.https_port}";'),
        ]
        for old, new in replacements:
            assert old in text, f"{old!r} is no longer in {NGINX_CONFIG}"
            text = text.replace(old, new)
        # No IPv6 listeners: a test machine may have no ::1.
        return "\n".join(line for line in text.splitlines() if "listen [::]" not in line) + "\n"

    def start(self, timeout: float = 15.0) -> Nginx:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.make_certificate()
        (self.root / "meter.conf").write_text(self.render())
        user = "user root root;\n" if os.geteuid() == 0 else ""  # as root, workers would be "nobody"
        temp = " ".join(
            f"{kind}_temp_path {self.root / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.root / "nginx.conf").write_text(
            f"worker_processes 1;\npid {self.root / 'nginx.pid'};\nerror_log {self.logs / 'error.log'} warn;\n{user}"
            f"events {{ worker_connections 128; }}\n"
            f"http {{\n  {temp}\n  include {self.root / 'meter.conf'};\n}}\n"
        )
        base = [NGINX, "-p", str(self.root), "-c", str(self.root / "nginx.conf"), "-e", str(self.logs / "error.log")]
        checked = subprocess.run([*base, "-t"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(
            [*base, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.logs / "stderr.log", "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nginx exited with {self.process.returncode}: {(self.logs / 'error.log').read_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not listen in time")

    def access_log(self) -> list[dict]:
        path = self.logs / "meter.access.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def stop(self) -> None:
        stop_process(self.process, sig=signal.SIGQUIT, timeout=10)  # QUIT: nginx's graceful stop
        self.process = None


POSTGRES_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))


class Postgres:
    """A PostgreSQL server of the test's own: initdb into a fresh directory, on a free loopback port.

    For a test that stops the database and starts it again: the machine's shared server (the suite's
    PostgreSQL pass, other users) must never be stopped. PostgreSQL refuses to run as root, so as root
    every command runs as the `postgres` user (`runuser`). `unavailable()` says why it cannot start here.
    """

    def __init__(self) -> None:
        self.bin = POSTGRES_BINARIES[-1] if POSTGRES_BINARIES else None
        self.port = free_port()
        self.root: Path | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def unavailable(self) -> str:
        if self.bin is None or not (self.bin / "initdb").exists():
            return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no postgres user to run PostgreSQL as"
        return ""

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as_owner(), *args], capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def init(self) -> Postgres:
        self.root = Path(tempfile.mkdtemp(prefix="meter-pg-"))  # not under pytest's root-only tmp_path
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.root / "data"), "-U", "postgres", "-A", "trust", "-N")
        return self

    def start(self) -> Postgres:
        assert self.root is not None
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=40"
        )
        pg_ctl = str(self.bin / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-o", options, "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast`: open connections are ended, new ones refused, until `start()`."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        if self.root is None:
            return
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
