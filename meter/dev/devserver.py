"""`make run`: meter and everything it needs, on http://127.0.0.1:5000, for development.

Run as `python -m meter.dev.devserver [--port 5000]`. Under `instance/` (or METER_INSTANCE_DIR) it keeps
the SQLite database, the embedded Redis's append-only file, the secret key and the demo site's API
key, so a second run carries on where the first stopped. It starts, as needed:

- a redis-server (`meter.dev.redis_server.RedisProcess`, unix socket under instance/) when REDIS_URL is unset;
- the mail catcher (`meter.dev.mail_catcher`, 127.0.0.1:1025 or a free port) when MAIL_SERVER is unset, and
  its inbox in the browser (`meter.dev.mail_inbox`, http://127.0.0.1:8025/ or a free port);
- `flask db upgrade`, then the `demo` site when it is missing (named Tempo, with gifts on);
- the demo OpenID provider, "Akun Demo" (`meter.dev.demo_provider`), when Node is there;
- gunicorn on 127.0.0.1:PORT with production's settings (deploy/gunicorn.conf.py: gthread workers, the
  app preloaded, no access log beside meter's own line per request), then `flask mail worker`, as child
  processes, their output prefixed. Both share PROMETHEUS_MULTIPROC_DIR (instance/prometheus, emptied
  at each start), so /metrics adds up every process, as in production.

Ctrl-C (SIGINT), SIGTERM or SIGHUP stops everything it started; from a script, signal the pid in
instance/devserver.pid (`make` does not pass a signal on).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request

from config import MAKE_RUN_ENV
from meter.dev import console_owner, demo_provider, mail_catcher, mail_inbox, redis_server
from meter.dev.banner import DEMO_SLUG, KEY_FILE, banner, masked
from meter.dev.processes import (
    HOST,
    REPO,
    STOP_TIMEOUT,
    Child,
    Stop,
    check,
    checkpoint,
    flask_command,
    lock_instance,
    on_signal,
    port_is_free,
    say,
    spawn,
    state,
    stop_child,
    unlock_instance,
    write,
)

GUNICORN_CONFIG = REPO / "deploy" / "gunicorn.conf.py"
DEMO_NAME = "Tempo"  # the publisher the demo site plays: "Kembali ke Tempo", "hadiah dari pelanggan Tempo"
DEMO_GIFTS = {"per_period": 3, "days": 14, "devices": 10}  # a subscriber of the demo may give 3 articles a month


def remember_address(instance: str, base_url: str) -> None:
    """Write PUBLIC_BASE_URL where config.py reads it in development (instance/make-run.env): the
    operator's commands on this data then print this run's address, such as a redirect URI."""
    path = os.path.join(instance, MAKE_RUN_ENV)
    with open(f"{path}.tmp", "w") as f:
        f.write("# written by `make run` at each start: what the operator's commands read in development\n")
        f.write(f"PUBLIC_BASE_URL={base_url}\n")
    os.replace(f"{path}.tmp", path)


UPGRADE_RE = re.compile(r"^INFO\s+\[alembic\.runtime\.migration\] Running upgrade (\S*) -> (\S+), (.*)$")


def migration_chain() -> list[str]:
    """The revisions from the first to the head, in the order they run."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(REPO / "migrations"))
    return [script.revision for script in scripts.walk_revisions()][::-1]


def migration_log(output: str, chain: list[str]) -> str:
    """`flask db upgrade`'s log with each migration as "step N of M: ID what it does". A revision's
    id is fixed once a database has it (renaming one would strand every database that ran it), and
    some ids were given out of their numbers' order (0014 → 0017 → 0016 → 0018 → 0015), so the step,
    its place in the chain, is what reads in order; other lines pass unchanged."""
    steps = {revision: n for n, revision in enumerate(chain, 1)}
    lines = []
    for line in output.splitlines():
        match = UPGRADE_RE.match(line)
        if match and match.group(2) in steps:
            revision, what = match.group(2), match.group(3)
            lines.append(f"migration step {steps[revision]:>2} of {len(chain)}: {revision}  {what}")
        else:
            lines.append(line)
    return "\n".join(lines)


def start_redis(instance: str) -> redis_server.RedisProcess:
    sock = redis_server.socket_path(instance)
    if os.path.exists(sock):
        _shutdown_stray_redis(sock)
    data_dir = os.path.join(instance, "redis")
    try:
        say(f"starting redis-server ({redis_server.redis_server_binary()}), data in {data_dir}")
        return redis_server.RedisProcess(data_dir=data_dir, unix_socket=sock, persist=True).start()
    except RuntimeError as exc:  # no binary, or it would not start: say why, in one line
        say(f"redis-server could not start: {exc} (its log: {os.path.join(data_dir, 'redis.log')})")
        raise SystemExit(1) from None


def _shutdown_stray_redis(sock: str) -> None:
    """A redis-server left running by an earlier run that was killed hard still owns our data: end it
    (it saves first) rather than start a second one on the same append-only file."""
    import redis

    client = redis.Redis(unix_socket_path=sock, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return  # a stale socket file; RedisProcess removes it
    say(f"a redis-server from an earlier run still listens on {sock}; shutting it down")
    with contextlib.suppress(redis.RedisError, OSError):
        client.shutdown()
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return
        time.sleep(0.1)


INBOX_PORT = 8025  # the caught mails in the browser; another free port when it is taken


def start_inbox(box: mail_inbox.Mailbox) -> mail_inbox.Inbox:
    try:
        return mail_inbox.Inbox(box, HOST, INBOX_PORT)
    except OSError:  # taken (another make run, a test's): any free port, which the banner prints
        return mail_inbox.Inbox(box, HOST, 0)


def start_catcher(port: int, box: mail_inbox.Mailbox | None = None):
    if not port:
        port = redis_server.free_port()
    elif not port_is_free(port):
        free = redis_server.free_port()
        say(f"port {port} is taken; the mail catcher uses {free} instead")
        port = free
    try:
        controller = mail_catcher.start(HOST, port, write=write, mailbox=box)
    except OSError as exc:
        say(f"the mail catcher could not start on {HOST}:{port}: {exc}")
        raise SystemExit(1) from None
    return controller, port


def metrics_dir(instance: str) -> str:
    """PROMETHEUS_MULTIPROC_DIR for every process of this run, emptied: the counts of an earlier run
    must not be added in (deploy/gunicorn.conf.py empties it too when gunicorn starts)."""
    path = os.path.join(instance, "prometheus")
    os.makedirs(path, mode=0o700, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.unlink(stale)
    return path


def read_key(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def keep_key(path: str, key: str) -> None:
    """Keys are shown once by `flask sites create`; in development we keep the demo key (mode 600)."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key + "\n")
    os.replace(tmp, path)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def ensure_demo_site(env: dict[str, str], instance: str, origins: list[str]) -> tuple[str, bool]:
    """The demo site's API key, creating the site (or a key) when needed; (key, created_now)."""
    listed = check(flask_command(env, "sites", "list", "--json"), "flask sites list")
    slugs = {site["slug"] for site in json.loads(last_line(listed.stdout) or "[]")}
    path = os.path.join(instance, KEY_FILE)
    if DEMO_SLUG not in slugs:
        say(f"creating the {DEMO_SLUG} site (flask sites create), gifts on (flask sites policy)")
        args = ["sites", "create", DEMO_SLUG, "--name", DEMO_NAME]
        for origin in origins:
            args += ["--origin", origin]
        key = last_line(check(flask_command(env, *args), "flask sites create").stdout)
        keep_key(path, key)
        gifts = [f"--set=gifts.{name}={value}" for name, value in DEMO_GIFTS.items()]
        check(flask_command(env, "sites", "policy", DEMO_SLUG, *gifts), "flask sites policy")
        return key, True
    key = read_key(path)
    if key is None:
        return new_demo_key(env, path, "no demo key is kept in instance/"), True
    return key, False


def new_demo_key(env: dict[str, str], path: str, why: str) -> str:
    say(f"{why}; making a new API key for {DEMO_SLUG} (flask sites keys create)")
    key = last_line(check(flask_command(env, "sites", "keys", "create", DEMO_SLUG), "flask sites keys create").stdout)
    keep_key(path, key)
    return key


def http(method: str, url: str, body: dict | None = None, key: str | None = None, timeout: float = 2.0):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - our own http:// URL
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_up(base: str, web: Child, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        checkpoint()
        if web.process.poll() is not None:
            say(f"gunicorn exited with code {web.process.returncode} before it served; see its output above")
            raise SystemExit(1)
        try:
            if http("GET", f"{base}/healthz", timeout=0.5)[0] == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    say(f"{base}/healthz did not answer in {timeout:.0f}s")
    raise SystemExit(1)


def key_works(base: str, key: str) -> bool:
    probe = {"article": {"id": "demo:probe", "class": "free"}, "record": False}
    return http("POST", f"{base}/v1/access", probe, key)[0] == 200


def gunicorn_args(port: int, workers: int) -> list[str]:
    """Production's settings (deploy/gunicorn.conf.py), on loopback, with a short graceful stop."""
    return [
        *(sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "-b", f"{HOST}:{port}"),
        *("-w", str(workers), "--graceful-timeout", "5", "wsgi:app"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meter.dev.devserver", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("METER_PORT") or 5000))
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    args = parser.parse_args(argv)

    with contextlib.suppress(ImportError):  # settings in .env count as set, exactly as for the app
        from dotenv import load_dotenv

        load_dotenv(REPO / ".env")

    instance = os.path.abspath(os.environ.get("METER_INSTANCE_DIR") or REPO / "instance")
    os.makedirs(instance, exist_ok=True)
    base = f"http://{HOST}:{args.port}"
    env = dict(os.environ)
    env.update(
        METER_ENV="development",  # a SECRET_KEY is made once and kept in instance/secret_key
        METER_INSTANCE_DIR=instance,
        FLASK_APP="wsgi",
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("PUBLIC_BASE_URL", base)
    env["PUBLIC_BASE_URL"] = env["PUBLIC_BASE_URL"].rstrip("/")
    env.pop("FLASK_RUN_FROM_CLI", None)
    env.pop("METER_ENV_FILE", None)  # deploy/gunicorn.conf.py reads it on a reload: production's, not ours

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    lock = None
    redis_proc: redis_server.RedisProcess | None = None
    mail_controller = None
    inbox: mail_inbox.Inbox | None = None
    children: list[Child] = []
    code = 0
    try:
        lock = lock_instance(instance)
        remember_address(instance, env["PUBLIC_BASE_URL"])
        if not port_is_free(args.port):
            say(f"port {args.port} on {HOST} is in use; stop what runs there, or `make run PORT=5001`")
            raise SystemExit(1)
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir(instance))
        lines = []
        if not os.environ.get("REDIS_URL"):
            redis_proc = start_redis(instance)
            env["REDIS_URL"] = redis_proc.url
            lines.append(f"  {'redis':<12} embedded redis-server, {redis_proc.url} (pid {redis_proc.process.pid})")
        else:
            lines.append(f"  {'redis':<12} REDIS_URL={masked(os.environ['REDIS_URL'])}")
        checkpoint()
        if not os.environ.get("MAIL_SERVER"):
            box = mail_inbox.Mailbox()
            mail_controller, mail_port = start_catcher(int(os.environ.get("MAIL_PORT") or 1025), box)
            env.update(MAIL_SERVER=HOST, MAIL_PORT=str(mail_port), MAIL_USE_TLS="0", MAIL_USE_SSL="0")
            lines.append(f"  {'mail':<12} catcher on {HOST}:{mail_port}: every mail is printed here, with its links")
            inbox = start_inbox(box)
            lines.append(f"  {'inbox':<12} {inbox.url} : the caught mails in the browser (HTML, text, source)")
        else:
            lines.append(f"  {'mail':<12} MAIL_SERVER={env['MAIL_SERVER']}:{env.get('MAIL_PORT', '1025')}")
        database = os.environ.get("DATABASE_URL") or f"sqlite:///{os.path.join(instance, 'meter.sqlite3')}"
        lines.append(f"  {'database':<12} {masked(database)}")
        lines.append(f"  {'metrics':<12} {base}/metrics, all processes added up ({env['PROMETHEUS_MULTIPROC_DIR']})")

        say("flask db upgrade")
        upgraded = check(flask_command(env, "db", "upgrade"), "flask db upgrade")
        say(migration_log((upgraded.stdout + upgraded.stderr).rstrip(), migration_chain()))
        checkpoint()
        key, created = ensure_demo_site(env, instance, [base, f"http://localhost:{args.port}"])
        lines += console_owner.banner_lines(flask_command, env, base)
        checkpoint()
        provider, provider_lines = demo_provider.start(instance, [env["PUBLIC_BASE_URL"]], DEMO_SLUG, env)
        if provider is not None:
            children.append(provider)
        lines += provider_lines
        checkpoint()

        # gunicorn first: its start empties the metrics directory, which the mail worker then writes to
        web = spawn("web", gunicorn_args(args.port, args.workers), env, "36")
        children.append(web)
        wait_until_up(base, web)
        worker = spawn("worker", [sys.executable, "-m", "flask", "mail", "worker"], env, "33")
        children.append(worker)
        if not key_works(base, key):
            if created:
                say("the demo API key does not work; see the output above")
                raise SystemExit(1)
            key = new_demo_key(env, os.path.join(instance, KEY_FILE), "the kept demo key no longer works")
        lines[:0] = [
            f"  {'web':<12} gunicorn, {args.workers} workers, {base} (pid {web.process.pid})",
            f"  {'mail worker':<12} flask mail worker (pid {worker.process.pid})",
        ]
        checkpoint()
        write(banner(base, key, lines, instance))

        while True:
            checkpoint()
            for child in children:
                if child.process.poll() is not None:
                    say(f"{child.name} exited with code {child.process.returncode}; stopping everything")
                    raise SystemExit(1)
            redis_gone = redis_proc and redis_proc.process and redis_proc.process.poll() is not None
            if redis_gone and not state.stopping:  # (a terminal's Ctrl-C reaches redis-server too)
                log = os.path.join(instance, "redis", "redis.log")
                say(f"redis-server exited (see {log}); the access check now answers in degraded mode")
                redis_proc = None
            time.sleep(0.2)
    except Stop as stop:
        write("\n")
        say(f"{stop} received: stopping everything (press Ctrl-C again to kill instead)")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        state.stopping = state.stopping or "exit"
        for child in sorted(children, key=lambda child: child.name != "web"):  # web first, so no request
            # meets a stopped worker, provider or Redis
            stop_child(child)
        if redis_proc is not None:
            redis_proc.stop()
        if mail_controller is not None:
            mail_controller.stop()
        if inbox is not None:
            inbox.stop()
        if lock is not None:
            unlock_instance(instance, lock)
        if children or redis_proc or mail_controller:
            say(f"stopped. The data stays in {instance}; `make run` carries on from it.")
    return code


if __name__ == "__main__":
    sys.exit(main())
