"""meter's served settings: `gunicorn -c deploy/gunicorn.conf.py wsgi:app` (deploy/systemd/meter-web.service).

Why each choice (docs/operations.md tells the operator what to do with them):

- `preload_app`: the master imports and builds the app once; a worker is a fork of it, ready in
  milliseconds. Without it a reload (HUP) starts workers that spend a second or more importing
  while the old ones are already told to stop, and requests wait in the socket's backlog.
- A reload (HUP, `systemctl reload meter-web`) also applies a changed environment file without a
  restart: `on_reload` reads METER_ENV_FILE again and builds the app again in the master (about
  25 ms, while the old workers still serve), then gunicorn forks the new workers from it. If the new
  settings cannot make an app (a missing SECRET_KEY, say), the error is logged and the running
  settings are kept. Code and installed packages are not reloaded: an upgrade is a restart.
- Every new worker reads the key files again (`meter.after_fork`), so a rotation of
  SECRET_KEY_FILE / SECRET_KEY_FALLBACKS_FILE is: edit the files, reload.
- Prometheus multiprocess mode (PROMETHEUS_MULTIPROC_DIR): the files of processes that are gone are
  removed when gunicorn starts (the counts of a previous run would be added in; the worker's, which
  shares the folder, stay while it runs), and `child_exit` marks each dead worker
  so that its live gauges leave the sums.
- Under systemd the listening socket is systemd's (deploy/systemd/meter-web.socket) and gunicorn
  inherits it (`bind` below is then unused): a restart, which an upgrade needs, queues connections
  instead of refusing them.
- `worker_tmp_dir` on tmpfs: each worker's heartbeat file is touched constantly; on a disk-backed
  /tmp a slow disk can make the master think a healthy worker hung.

Settings given on gunicorn's command line (`-b`, `-w`) win over those below.
"""

from __future__ import annotations

import gc
import glob
import importlib
import os

bind = "127.0.0.1:8000"  # loopback: nginx (deploy/nginx/meter.conf) is the one way in; = meter-web.socket
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
worker_class = "gthread"
threads = 4
preload_app = True
timeout = 30  # a worker silent this long is killed and replaced (nginx's proxy_read_timeout matches)
graceful_timeout = 30  # on a reload or stop, in-flight requests get this long to finish
keepalive = 5
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - tmpfs on purpose
accesslog = None  # meter writes one JSON line per request itself (request id, route, never the path)
errorlog = "-"
# gunicorn's own lines (boot, workers, reload errors and their tracebacks) in meter's format, so that
# every line on stderr is one JSON object a log shipper can read (LOG_FORMAT=text: meter's text lines).
_formatter = "TextFormatter" if os.environ.get("LOG_FORMAT", "json") == "text" else "JsonFormatter"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"meter": {"()": f"meter.platform.logs.{_formatter}"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "meter", "stream": "ext://sys.stderr"},
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False, "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False, "qualname": "gunicorn.access"},
    },
}
control_socket_disable = True  # gunicorn 27's control socket would live in ~/.gunicorn; nothing uses it
proc_name = "meter-web"

_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir:
    os.makedirs(_metrics_dir, mode=0o700, exist_ok=True)  # prometheus-client writes there on import


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments, blank lines, quotes)."""
    values = {}
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            name, value = (part.strip() for part in line.split("=", 1))
            if name.startswith("export "):
                name = name.removeprefix("export ").strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[name] = value
    return values


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def remove_dead_metrics(directory: str) -> None:
    """The files of processes that are gone (a previous run's, whose counts would be added in); a live
    process's stay, whatever started first: the worker (meter-worker.service) shares the folder, and
    after USR2 the old master's workers still write there. prometheus-client names each file
    `<kind>_<pid>.db`."""
    for path in glob.glob(os.path.join(directory, "*.db")):
        pid = os.path.basename(path)[: -len(".db")].rpartition("_")[2]
        if not pid.isdigit() or not _alive(int(pid)):
            os.unlink(path)


def on_starting(server):
    if _metrics_dir:
        remove_dead_metrics(_metrics_dir)
    env_file = os.environ.get("METER_ENV_FILE")
    server.meter_env_names = set(read_env_file(env_file)) if env_file else set()


def on_reload(server):
    """HUP: the environment file read again, the app made again from it; the old app kept on failure."""
    env_file = os.environ.get("METER_ENV_FILE")
    saved = dict(os.environ)
    try:
        if env_file:
            values = read_env_file(env_file)
            for name in getattr(server, "meter_env_names", set()) - set(values):
                os.environ.pop(name, None)  # removed from the file: back to its default
            os.environ.update(values)
        import config
        import meter

        importlib.reload(config)
        app = meter.create_app()
    except Exception:
        os.environ.clear()
        os.environ.update(saved)
        import config

        importlib.reload(config)  # config.Config as the running app was made
        server.log.exception("reload: the new settings do not make an app; the running settings are kept")
        return
    if env_file:
        server.meter_env_names = set(values)
    server.app.callable = app
    server.log.info("reload: app made again from the current environment")


def pre_fork(server, worker):
    """The app built in the master (and every object it made) moved out of the garbage collector's
    reach before each fork: a worker's collections then never walk it, so they neither spend CPU on it
    nor touch its pages (which copy-on-write would copy into every worker)."""
    gc.collect()
    gc.freeze()


def worker_exit(server, worker):
    """A worker that has finished leaves at once, without the interpreter's teardown. That teardown
    ran a full collection over the whole forked heap and took 3 to 10 seconds on a loaded 2-core host,
    during which the master waited before it could exit or replace the worker: every stop and restart
    stalled that long. The log is flushed first; nothing else needs the teardown (connections close
    with the process; the metrics' files are shared memory, already written)."""
    import logging
    import sys

    failure = sys.exc_info()[1]
    code = failure.code if isinstance(failure, SystemExit) else (1 if failure else 0)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


def post_fork(server, worker):
    import meter

    meter.after_fork(server.app.wsgi())


def child_exit(server, worker):
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
