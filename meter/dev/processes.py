"""What `make run` (meter.dev.devserver) does with processes: its console, its stop signals, and the
children it starts, each in its own session, their output printed with a `name |` prefix.

Every line goes through `write`, a whole block at a time, so the lines of two processes never mix
(the mail catcher prints whole mails this way).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"  # development only: nothing listens beyond loopback
STOP_TIMEOUT = 10.0
PID_FILE = "devserver.pid"  # under the instance directory: how a script stops `make run`


class Stop(Exception):
    """Raised at the next checkpoint once SIGINT, SIGTERM or SIGHUP has arrived."""


@dataclass
class _State:
    stopping: str | None = None  # the name of the signal that asked us to stop
    force: bool = False  # a second signal: kill what is left instead of waiting


state = _State()


def checkpoint() -> None:
    if state.stopping:
        raise Stop(state.stopping)


def on_signal(signum, _frame) -> None:
    """Only flags: the main thread stops at its next checkpoint, at most about a second later."""
    if state.stopping:
        state.force = True
    else:
        state.stopping = signal.Signals(signum).name


# --- the console --------------------------------------------------------------------------------

_out_lock = threading.RLock()


def colour(code: str):
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return lambda text: text
    return lambda text: f"\033[{code}m{text}\033[0m"


def write(text: str) -> None:
    """All output goes through here, a whole block at a time, so lines of processes never mix."""
    with _out_lock, contextlib.suppress(OSError):  # stdout gone: keep draining the children anyway
        sys.stdout.write(text)
        sys.stdout.flush()


_meter_prefix = colour("1;34")("meter  | ")


def say(message: str) -> None:
    write("".join(f"{_meter_prefix}{line}\n" for line in message.splitlines() or [""]))


# --- child processes ----------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    pump: threading.Thread | None = field(default=None)


def _pump(stream, prefix: str) -> None:
    for line in iter(stream.readline, ""):
        write(f"{prefix}{line if line.endswith(chr(10)) else line + chr(10)}")
    stream.close()


def spawn(name: str, args: list[str], env: dict[str, str], colour_code: str) -> Child:
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
    prefix = colour(colour_code)(f"{name:<6} | ")
    pump = threading.Thread(target=_pump, args=(process.stdout, prefix), name=f"pump-{name}", daemon=True)
    pump.start()
    return Child(name, process, pump)


def _wait(process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not state.force:
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


def check(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        say(f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}".rstrip())
        raise SystemExit(1)
    return result


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def lock_instance(instance: str):
    """One devserver per instance directory: two would share (and fight over) one Redis and database.

    The devserver's pid goes to instance/devserver.pid, for a script to stop it: `make` does not pass
    a signal on to the devserver, the devserver's own pid does.
    """
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
    with open(os.path.join(instance, PID_FILE), "w") as f:
        f.write(f"{os.getpid()}\n")
    return handle


def unlock_instance(instance: str, handle) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(instance, PID_FILE))
    handle.close()
