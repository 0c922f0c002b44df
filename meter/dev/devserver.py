"""`make run`: meter and everything it needs, on http://127.0.0.1:5000, for development.

Run as `python -m meter.dev.devserver [--port 5000]`. Under `instance/` (or METER_INSTANCE_DIR) it keeps
the SQLite database, the embedded Redis's append-only file, the secret key and the demo site's API
key, so a second run carries on where the first stopped. It starts, as needed:

- a redis-server (`meter.dev.redis_server.RedisProcess`, unix socket under instance/) when REDIS_URL is unset;
- the mail catcher (`meter.dev.mail_catcher`, 127.0.0.1:1025 or a free port) when MAIL_SERVER is unset;
- `flask db upgrade`, then the `demo` site when it is missing;
- `flask mail worker` and gunicorn on 127.0.0.1:PORT as child processes, their output prefixed.

Ctrl-C (SIGINT), SIGTERM or SIGHUP stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from meter.dev import console_owner, mail_catcher, redis_server

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"  # development only: nothing listens beyond loopback
DEMO_SLUG = "demo"
KEY_FILE = "demo-api-key"
STOP_TIMEOUT = 10.0


class _Stop(Exception):
    """Raised at the next checkpoint once SIGINT, SIGTERM or SIGHUP has arrived."""


@dataclass
class _State:
    stopping: str | None = None  # the name of the signal that asked us to stop
    force: bool = False  # a second signal: kill what is left instead of waiting


_state = _State()


def checkpoint() -> None:
    if _state.stopping:
        raise _Stop(_state.stopping)


_out_lock = threading.RLock()


def _colour(code: str):
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return lambda text: text
    return lambda text: f"\033[{code}m{text}\033[0m"


def write(text: str) -> None:
    """All output goes through here, a whole block at a time, so lines of processes never mix."""
    with _out_lock, contextlib.suppress(OSError):  # stdout gone: keep draining the children anyway
        sys.stdout.write(text)
        sys.stdout.flush()


_meter_prefix = _colour("1;34")("meter  | ")


def say(message: str) -> None:
    write("".join(f"{_meter_prefix}{line}\n" for line in message.splitlines() or [""]))


# --- child processes ---------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    pump: threading.Thread | None = field(default=None)


def _pump(stream, prefix: str) -> None:
    for line in iter(stream.readline, ""):
        write(f"{prefix}{line if line.endswith(chr(10)) else line + chr(10)}")
    stream.close()


def spawn(name: str, args: list[str], env: dict[str, str], colour: str) -> Child:
    """Start a long-running child in its own session (so a terminal's Ctrl-C reaches only us, and we
    stop the children in order); its stdout and stderr are printed with a `name |` prefix."""
    process = subprocess.Popen(
        args,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    prefix = _colour(colour)(f"{name:<6} | ")
    pump = threading.Thread(target=_pump, args=(process.stdout, prefix), name=f"pump-{name}", daemon=True)
    pump.start()
    return Child(name, process, pump)


def _wait(process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not _state.force:
        if process.poll() is not None:
            return True
        time.sleep(0.05)
    return process.poll() is not None


def stop_child(child: Child) -> None:
    process = child.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        if not _wait(process, STOP_TIMEOUT):
            say(f"killing {child.name} (pid {process.pid})")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Anything the child left behind in its process group (such as a gunicorn worker) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if child.pump is not None:
        child.pump.join(timeout=2)


def flask_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def _check(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        say(f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}".rstrip())
        raise SystemExit(1)
    return result


# --- the pieces --------------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def lock_instance(instance: str):
    """One devserver per instance directory: two would share (and fight over) one Redis and database."""
    handle = open(os.path.join(instance, ".devserver.lock"), "a+")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        say(f"another `make run` is already using {instance}; stop it first (or set METER_INSTANCE_DIR)")
        raise SystemExit(1) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


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


def start_catcher(port: int):
    if not port:
        port = redis_server.free_port()
    elif not port_is_free(port):
        free = redis_server.free_port()
        say(f"port {port} is taken; the mail catcher uses {free} instead")
        port = free
    try:
        controller = mail_catcher.start(HOST, port, write=write)
    except OSError as exc:
        say(f"the mail catcher could not start on {HOST}:{port}: {exc}")
        raise SystemExit(1) from None
    return controller, port


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
    listed = _check(flask_command(env, "sites", "list", "--json"), "flask sites list")
    slugs = {site["slug"] for site in json.loads(last_line(listed.stdout) or "[]")}
    path = os.path.join(instance, KEY_FILE)
    if DEMO_SLUG not in slugs:
        say(f"creating the {DEMO_SLUG} site (flask sites create)")
        args = ["sites", "create", DEMO_SLUG, "--name", "Demo"]
        for origin in origins:
            args += ["--origin", origin]
        key = last_line(_check(flask_command(env, *args), "flask sites create").stdout)
        keep_key(path, key)
        return key, True
    key = read_key(path)
    if key is None:
        return new_demo_key(env, path, "no demo key is kept in instance/"), True
    return key, False


def new_demo_key(env: dict[str, str], path: str, why: str) -> str:
    say(f"{why}; making a new API key for {DEMO_SLUG} (flask sites keys create)")
    key = last_line(_check(flask_command(env, "sites", "keys", "create", DEMO_SLUG), "flask sites keys create").stdout)
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


# --- what a newcomer reads ---------------------------------------------------------------------


def curl(base: str, path: str, key: str, body: str) -> str:
    return (
        f"curl -s -X POST {base}{path} -H {shlex.quote('Authorization: Bearer ' + key)} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}; echo"
    )


def banner(base: str, key: str, lines: list[str], instance: str) -> str:
    bar = "=" * 78
    email, password = "pembaca@example.com", "rahasia-sekali"
    article = '"article": {"id": "demo:koran:2026-01-31:nato", "class": "metered"}'
    register = json.dumps({"email": email, "password": password})
    login = json.dumps({"email": email, "password": password})
    login_cmd = curl(base, "/v1/sessions", key, login).removesuffix("; echo")
    extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"reader_token\"])'"
    reader_body = '{"reader_token": "\'"$READER_TOKEN"\'", ' + article + "}"
    reader_access = (
        f"curl -s -X POST {base}/v1/access -H {shlex.quote('Authorization: Bearer ' + key)} "
        f"-H 'Content-Type: application/json' -d '{reader_body}'; echo"
    )
    anonymous = curl(base, "/v1/access", key, '{"anonymous_id": "visitor-0001", ' + article + "}")
    return "\n".join(
        [
            bar,
            f"meter is ready on {base}   (Ctrl-C stops everything it started)",
            f"Demo publisher site (articles using the embed): {base}/demo-site/",
            "",
            *lines,
            f"  {'data':<12} {instance} (kept between runs; delete it to start afresh)",
            "",
            f"Demo site: {DEMO_SLUG}. Its API key (kept in {os.path.join(instance, KEY_FILE)}):",
            "",
            f"    {key}",
            "",
            "Try it from another terminal:",
            "",
            "# 1. register a reader (202); the activation mail is printed here, open its link",
            curl(base, "/v1/readers", key, register),
            "",
            "# 2. once activated, log in and keep the reader token",
            f"READER_TOKEN=$({login_cmd} | {extract})",
            "",
            "# 3. may this reader read this metered article? (2 free a month once verified)",
            reader_access,
            "",
            "# the same question for an anonymous visitor: refused, registration_required",
            anonymous,
            bar,
            "",
        ]
    )


def _masked(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


# --- main --------------------------------------------------------------------------------------


def _on_signal(signum, _frame) -> None:
    """Only flags: the main thread stops at its next checkpoint, at most about a second later."""
    if _state.stopping:
        _state.force = True
    else:
        _state.stopping = signal.Signals(signum).name


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
    env.pop("FLASK_RUN_FROM_CLI", None)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)

    lock = None
    redis_proc: redis_server.RedisProcess | None = None
    mail_controller = None
    children: list[Child] = []
    code = 0
    try:
        lock = lock_instance(instance)
        if not port_is_free(args.port):
            say(f"port {args.port} on {HOST} is in use; stop what runs there, or `make run PORT=5001`")
            raise SystemExit(1)
        lines = []
        if not os.environ.get("REDIS_URL"):
            redis_proc = start_redis(instance)
            env["REDIS_URL"] = redis_proc.url
            lines.append(f"  {'redis':<12} embedded redis-server, {redis_proc.url} (pid {redis_proc.process.pid})")
        else:
            lines.append(f"  {'redis':<12} REDIS_URL={_masked(os.environ['REDIS_URL'])}")
        checkpoint()
        if not os.environ.get("MAIL_SERVER"):
            mail_controller, mail_port = start_catcher(int(os.environ.get("MAIL_PORT") or 1025))
            env.update(MAIL_SERVER=HOST, MAIL_PORT=str(mail_port), MAIL_USE_TLS="0", MAIL_USE_SSL="0")
            lines.append(f"  {'mail':<12} catcher on {HOST}:{mail_port}: every mail is printed here, with its links")
        else:
            lines.append(f"  {'mail':<12} MAIL_SERVER={env['MAIL_SERVER']}:{env.get('MAIL_PORT', '1025')}")
        database = os.environ.get("DATABASE_URL") or f"sqlite:///{os.path.join(instance, 'meter.sqlite3')}"
        lines.append(f"  {'database':<12} {_masked(database)}")

        say("flask db upgrade")
        upgraded = _check(flask_command(env, "db", "upgrade"), "flask db upgrade")
        say((upgraded.stdout + upgraded.stderr).rstrip())
        checkpoint()
        key, created = ensure_demo_site(env, instance, [base, f"http://localhost:{args.port}"])
        lines += console_owner.banner_lines(flask_command, env, base)
        checkpoint()

        children.append(spawn("worker", [sys.executable, "-m", "flask", "mail", "worker"], env, "33"))
        gunicorn = [sys.executable, "-m", "gunicorn", "-b", f"{HOST}:{args.port}", "-w", str(args.workers)]
        # No control socket: gunicorn 27 would otherwise make one in ~/.gunicorn, shared by every run.
        gunicorn += ["--graceful-timeout", "5", "--access-logfile", "-", "--no-control-socket", "wsgi:app"]
        children.append(spawn("web", gunicorn, env, "36"))
        wait_until_up(base, children[-1])
        if not key_works(base, key):
            if created:
                say("the demo API key does not work; see the output above")
                raise SystemExit(1)
            key = new_demo_key(env, os.path.join(instance, KEY_FILE), "the kept demo key no longer works")
        lines[:0] = [
            f"  {'web':<12} gunicorn, {args.workers} workers, {base} (pid {children[1].process.pid})",
            f"  {'mail worker':<12} flask mail worker (pid {children[0].process.pid})",
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
            if redis_gone and not _state.stopping:  # (a terminal's Ctrl-C reaches redis-server too)
                log = os.path.join(instance, "redis", "redis.log")
                say(f"redis-server exited (see {log}); the access check now answers in degraded mode")
                redis_proc = None
            time.sleep(0.2)
    except _Stop as stop:
        write("\n")
        say(f"{stop} received: stopping everything (press Ctrl-C again to kill instead)")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        _state.stopping = _state.stopping or "exit"
        for child in reversed(children):  # web first, so no request meets a stopped worker or Redis
            stop_child(child)
        if redis_proc is not None:
            redis_proc.stop()
        if mail_controller is not None:
            mail_controller.stop()
        if lock is not None:
            lock.close()
        if children or redis_proc or mail_controller:
            say(f"stopped. The data stays in {instance}; `make run` carries on from it.")
    return code


if __name__ == "__main__":
    sys.exit(main())
