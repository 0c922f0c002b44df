"""A configuration error, of any command or of the app's start, is one line that names the setting
and its fix, and a non-zero exit: never a traceback. Outside development meter needs its database,
its Redis and a signing key given; it never falls back to development's under instance/.

The entry points (bin/meter, `flask --app wsgi`, gunicorn as deployed) run as processes of their own;
what each setting's line says is checked in-process on `create_app`, which they all call.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from meter import create_app
from meter.platform.settings import ConfigError
from tests.conftest import _config_dict
from tests.paths import ROOT_DIR
from tests.servers import DEPLOY_CONFIG, free_port

ROOT = ROOT_DIR
GIVEN = {
    "SECRET_KEY": "k" * 32,
    "DATABASE_URL": "sqlite:////nonexistent/meter.sqlite3",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "PUBLIC_BASE_URL": "https://meter.example.org",
    "MAIL_DEFAULT_SENDER": "Tempo <no-reply@tempo.co>",
}


def production_env(**settings: str) -> dict[str, str]:
    """The environment of a production process: none of the suite's or the developer's settings."""
    names = ("METER_", "FLASK_", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MAIL_", "RATELIMIT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(names)}
    return {**env, "METER_ENV": "production", **settings}


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 4, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("meter: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.servers  # a Python process of its own
def test_the_command_line_and_the_flask_command_stop_with_one_line(tmp_path):
    """bin/meter with nothing set names all three settings and the fix; a malformed value read from the
    environment (`flask --app wsgi`) is named the same way. Both at once: each is a Python start."""
    bare = subprocess.Popen(
        [str(ROOT / "bin" / "meter"), "sites", "list"], cwd=tmp_path, env=production_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    typo = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "sites", "list"], cwd=ROOT,
        env=production_env(**GIVEN, MAIL_PORT="twenty-five", REDIS_SOCKET_TIMEOUT="fast"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    results = [subprocess.CompletedProcess(p.args, p.wait(60), *p.communicate()) for p in (bare, typo)]
    line = one_line(results[0])
    assert line.startswith(
        "meter: configuration error: DATABASE_URL, REDIS_URL, SECRET_KEY and PUBLIC_BASE_URL are not set"
    ), line
    assert "postgresql+psycopg://" in line and "redis://" in line and "SECRET_KEY_FILE" in line, line
    assert "https://meter.example.org" in line and "MAIL_DEFAULT_SENDER is on localhost" in line, line
    assert "METER_ENV=development" in line, line
    assert not (tmp_path / "instance").exists()
    line = one_line(results[1])
    assert "MAIL_PORT must be a whole number, not 'twenty-five'" in line, line
    assert "REDIS_SOCKET_TIMEOUT must be a number of seconds" in line, line


PRODUCTION = {
    "ENV_NAME": "production",
    "SECRET_KEY": "k" * 32,
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "PUBLIC_BASE_URL": "https://meter.example.org",
    "MAIL_DEFAULT_SENDER": "Tempo <no-reply@tempo.co>",
}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SQLALCHEMY_DATABASE_URI": ""}, "DATABASE_URL is not set: set DATABASE_URL to the database's URL"),
        ({"REDIS_URL": ""}, "REDIS_URL is not set: set REDIS_URL, such as redis://"),
        ({"SECRET_KEY": None}, "SECRET_KEY is not set: set SECRET_KEY_FILE"),
        ({"SQLALCHEMY_DATABASE_URI": "", "REDIS_URL": ""}, "DATABASE_URL and REDIS_URL are not set"),
        ({"SQLALCHEMY_DATABASE_URI": "postgres://db/meter"}, "DATABASE_URL cannot be used"),
        ({"REDIS_URL": "http://user:pw@cache:6379"}, "REDIS_URL cannot be used"),
        ({"RATELIMIT_REGISTER_IP": "lots"}, "RATELIMIT_REGISTER_IP is not a limit: 'lots'"),
        ({"RATELIMIT_STRATEGY": "leaky"}, "RATELIMIT_STRATEGY must be one of"),
        ({"SECRET_KEY": None, "SECRET_KEY_FILE": "/nonexistent/key"}, "cannot read key file /nonexistent/key"),
        ({"PUBLIC_BASE_URL": ""}, "PUBLIC_BASE_URL is not set: set PUBLIC_BASE_URL to the public https:// address"),
        ({"PUBLIC_BASE_URL": "http://meter.example.org"}, "PUBLIC_BASE_URL must be https:// outside development"),
        ({"PUBLIC_BASE_URL": "meter.example.org"}, "PUBLIC_BASE_URL must be the public https:// address"),
        ({"MAIL_DEFAULT_SENDER": "meter <no-reply@localhost>"}, "MAIL_DEFAULT_SENDER is on localhost"),
        ({"MAIL_DEFAULT_SENDER": "no-reply@mail.localhost"}, "MAIL_DEFAULT_SENDER is on mail.localhost"),
        ({"MAIL_DEFAULT_SENDER": "meter <x@127.0.0.1>"}, "MAIL_DEFAULT_SENDER is on 127.0.0.1"),
    ],
)
def test_each_setting_is_named_with_its_fix_and_nothing_falls_back(tmp_path, change, named):
    database = f"sqlite:///{tmp_path / 'meter.sqlite3'}"
    with pytest.raises(ConfigError) as refused:
        create_app({**_config_dict(), "SQLALCHEMY_DATABASE_URI": database, **PRODUCTION, **change})
    message = str(refused.value)
    assert named in message and "\n" not in message, message
    assert "user:pw" not in message  # a URL is never echoed: it may hold a password
    assert not (tmp_path / "meter.sqlite3").exists()


@pytest.mark.parametrize(
    "base", ["https://meter.example.org", "https://meter.example.org:8443", "http://127.0.0.1:8080"]
)
def test_a_public_https_address_or_a_loopback_http_one_starts(tmp_path, base):
    """http:// is refused only off loopback: a proxy on the same host (the deployment test's nginx) may use it."""
    database = f"sqlite:///{tmp_path / 'meter.sqlite3'}"
    app = create_app({**_config_dict(), "SQLALCHEMY_DATABASE_URI": database, **PRODUCTION, "PUBLIC_BASE_URL": base})
    assert app.config["PUBLIC_BASE_URL"] == base


@pytest.mark.servers  # a Python process of its own
def test_production_with_only_the_three_secrets_does_not_start_with_links_to_loopback(tmp_path):
    """The operator's report: SECRET_KEY, DATABASE_URL and REDIS_URL set, nothing else; it used to start
    with PUBLIC_BASE_URL http://127.0.0.1:5000 and a sender on localhost."""
    three = {name: GIVEN[name] for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "sites", "list"], cwd=ROOT, env=production_env(**three),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    line = one_line(result)
    assert line.startswith("meter: configuration error: PUBLIC_BASE_URL is not set"), line
    assert "MAIL_DEFAULT_SENDER is on localhost" in line, line


@pytest.mark.servers
def test_gunicorn_as_deployed_stops_at_once_with_the_line(tmp_path):
    """deploy/gunicorn.conf.py (preload_app) makes the app in the master: one line, exit 4, no worker booted."""
    env = production_env(**{**GIVEN, "DATABASE_URL": ""})
    args = [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY_CONFIG), "-b", f"127.0.0.1:{free_port()}", "-w", "2"]
    result = subprocess.run([*args, "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 4, result.stderr
    assert result.stderr.strip().splitlines() == [one_line(result)]
    assert one_line(result).startswith("meter: configuration error: DATABASE_URL is not set")
