"""The systemd units and the command helper of deploy/, checked as far as a machine without a running
systemd allows: `systemd-analyze verify` on the units (the socket's hand-over is tests/e2e/test_reload.py), their ExecStartPre shell lines run for real,
the worker's graceful stop, and deploy/meter-flask running a command with an environment file."""

from __future__ import annotations

import importlib.util
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import ROOT, server_env

UNITS = ("meter-web.service", "meter-worker.service", "meter-web.socket")
TIMERS = ("meter-backup.service", "meter-backup.timer", "meter-crawlers.service", "meter-crawlers.timer")
VENV = Path(sys.executable).parent.parent


def rendered_units(tmp_path: Path) -> list[Path]:
    """The units with /opt/meter pointing at this checkout and its venv (verify checks that the
    programs exist)."""
    paths = []
    for name in UNITS + TIMERS:
        text = (ROOT / "deploy" / "systemd" / name).read_text()
        text = text.replace("/opt/meter/venv", str(VENV)).replace("/opt/meter", str(ROOT))
        path = tmp_path / name
        path.write_text(text)
        paths.append(path)
    return paths


def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    if shutil.which("systemd-analyze") is None:
        reason = "systemd-analyze is not installed (no systemd on this machine): the units are not verified"
        print(f"\nSKIPPED: {reason}")
        pytest.skip(reason)
    out = subprocess.run(
        ["systemd-analyze", "verify", *map(str, rendered_units(tmp_path))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout + out.stderr == "", out.stdout + out.stderr  # an unknown key is only a warning


def analyze_security(unit: Path) -> float:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True, text=True, timeout=60
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout + out.stderr)
    assert found, out.stdout + out.stderr
    return float(found.group(1))


@pytest.mark.parametrize(
    "unit", ["meter-web.service", "meter-worker.service", "meter-backup.service", "meter-crawlers.service"]
)
def test_each_service_is_hardened_to_an_exposure_of_at_most_3(tmp_path, unit):
    """`systemd-analyze security` scored both units 7.6 EXPOSED; each is at most 3.0 now."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (no systemd on this machine): the score is not measured")
    [path] = [p for p in rendered_units(tmp_path) if p.name == unit]
    assert analyze_security(path) <= 3.0


def directive(unit: str, key: str) -> list[str]:
    text = (ROOT / "deploy" / "systemd" / unit).read_text()
    return re.findall(rf"^{key}=(.*)$", text, re.MULTILINE)


def test_both_services_read_the_environment_file_and_restart_on_failure():
    for unit in UNITS[:2]:
        assert directive(unit, "EnvironmentFile") == ["/etc/meter/meter.env"]
        assert directive(unit, "Restart") == ["on-failure"]
    assert directive("meter-worker.service", "ExecStart") == ["/opt/meter/venv/bin/flask worker"]
    assert directive("meter-web.service", "ExecReload") == ["/bin/kill -s HUP $MAINPID"]
    assert directive("meter-web.socket", "ListenStream") == ["127.0.0.1:8000"]  # gunicorn.conf.py's bind
    assert 'bind = "127.0.0.1:8000"' in (ROOT / "deploy" / "gunicorn.conf.py").read_text()


def exec_start_pre(unit: str) -> str:
    """The shell line of the unit's ExecStartPre, as systemd hands it to /bin/sh ($$ becomes $)."""
    [line] = directive(unit, "ExecStartPre")
    prefix = "/bin/sh -c '"
    assert line.startswith(prefix) and line.endswith("'")
    return line[len(prefix) : -1].replace("$$", "$")


def test_the_web_unit_makes_the_metrics_directory_and_refuses_an_unset_one(tmp_path):
    metrics = tmp_path / "run" / "metrics"
    script = exec_start_pre("meter-web.service")
    ran = subprocess.run(["/bin/sh", "-c", script], env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)}, timeout=10)
    assert ran.returncode == 0 and metrics.is_dir()
    unset = subprocess.run(["/bin/sh", "-c", script], cwd=tmp_path, env={}, capture_output=True, timeout=10)
    assert unset.returncode != 0


def load_gunicorn_conf():
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", ROOT / "deploy" / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gunicorns_start_removes_gone_processes_metrics_and_keeps_a_live_workers(tmp_path):
    """Any order of restarts: the worker (another unit) may be running when the web starts, and its
    files must stay; a previous run's files go (their counts would be added in)."""
    live = subprocess.Popen(["sleep", "30"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    try:
        for name in (f"counter_{live.pid}.db", f"gauge_livesum_{live.pid}.db", f"counter_{gone.pid}.db", "junk.db"):
            (tmp_path / name).write_bytes(b"x")
        load_gunicorn_conf().remove_dead_metrics(str(tmp_path))
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [f"counter_{live.pid}.db", f"gauge_livesum_{live.pid}.db"]
        )
    finally:
        live.kill()
        live.wait()


def test_the_worker_unit_makes_the_shared_directory_and_empties_nothing(tmp_path):
    metrics = tmp_path / "run" / "metrics"
    script = exec_start_pre("meter-worker.service")
    assert subprocess.run(["/bin/sh", "-c", script], env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)}).returncode == 0
    (metrics / "counter_1.db").write_bytes(b"a live web worker's")
    assert subprocess.run(["/bin/sh", "-c", script], env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)}).returncode == 0
    assert (metrics / "counter_1.db").exists()


@pytest.mark.servers  # a Python process of its own
def test_meter_flask_runs_a_command_with_the_environment_files(api, database_url, redis_url, tmp_path):
    """The main file, then a second one whose DATABASE_URL wins (the migrations' owner role)."""
    env_file, migrate_file = tmp_path / "meter.env", tmp_path / "migrate.env"
    env_file.write_text(
        f"# as /etc/meter/meter.env\nSECRET_KEY='{'k' * 32}'\nREDIS_URL={redis_url}\n"
        f"DATABASE_URL=sqlite:///{tmp_path / 'not-this-one.sqlite3'}\n"
        'MAIL_DEFAULT_SENDER="Tempo <no-reply@tempo.co>"\nPUBLIC_BASE_URL=https://meter.example.org\n'
    )
    migrate_file.write_text(f"DATABASE_URL={database_url}\n")
    env = {"PATH": "/usr/bin:/bin", "METER_HOME": str(ROOT), "METER_VENV": str(VENV)}
    env["METER_ENV_FILE"] = f"{env_file}:{migrate_file}"
    out = subprocess.run(
        [str(ROOT / "deploy" / "meter-flask"), "sites", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "tempo" in out.stdout


@pytest.mark.servers
def test_the_worker_stops_on_sigterm_between_passes(app, database_url, redis_url, tmp_path):
    env = server_env(database_url, redis_url, FLASK_APP="wsgi", LOG_LEVEL="INFO")
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "worker", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115 - closed with the process
    )
    try:
        deadline = time.monotonic() + 30
        while "worker started" not in log.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert "worker stopped (SIGTERM) between two passes" in log.read_text()


def test_a_finished_worker_leaves_at_once_with_its_exit_status(tmp_path):
    """Each gunicorn worker used to run the interpreter's teardown, a full collection of the forked
    heap, for 3 to 10 s before the master could exit: a stop or restart stalled that long
    (`python -m bench.stop`: median 2.7 s before, 0.33 s after, on a loaded 2-core host). The worker
    now leaves with os._exit from `worker_exit`: no atexit handler runs, the status is kept, and the
    log line written just before is not lost."""
    script = (
        "import atexit, importlib.util, logging, sys\n"
        f"spec = importlib.util.spec_from_file_location('conf', {str(ROOT / 'deploy' / 'gunicorn.conf.py')!r})\n"
        "conf = importlib.util.module_from_spec(spec); spec.loader.exec_module(conf)\n"
        "atexit.register(lambda: print('teardown ran', flush=True))\n"
        "logging.basicConfig(stream=sys.stderr, level=logging.INFO)\n"
        "try:\n"
        "    logging.getLogger('w').info('last words')\n"
        "    raise SystemExit(3)\n"
        "finally:\n"
        "    conf.worker_exit(None, None)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 3 and "teardown ran" not in done.stdout and "last words" in done.stderr, done


def test_the_app_is_out_of_the_collectors_reach_before_each_fork():
    import gc

    conf = load_gunicorn_conf()
    try:
        conf.pre_fork(None, None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
