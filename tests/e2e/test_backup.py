"""The backup of docs/operations.md, run as the timer runs it (deploy/meter-backup), and the restore
drill: dump, drop, restore into a fresh database, the reader journey goes on, every table's count
equal. On the PostgreSQL pass only: pg_dump and pg_restore are PostgreSQL's tools (the SQLite pass
skips it and says so)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time

import pytest
import sqlalchemy

from meter.platform.db import db
from tests.conftest import flush_redis, rebuilt
from tests.servers import ROOT

BACKUP = ROOT / "deploy" / "meter-backup"
pytestmark = pytest.mark.servers  # pg_dump and pg_restore run as processes of their own


def libpq_url(sqlalchemy_url: str) -> str:
    """The suite's SQLAlchemy URL as pg_dump takes it (postgresql://, no driver)."""
    return sqlalchemy.engine.make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture
def postgres_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the backup drill runs on the PostgreSQL pass of make test (pg_dump, pg_restore)")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore are not installed (Debian's postgresql-client)")
    return database_url


def run_backup(tmp_path, database: str, keep: int = 30) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "METER_BACKUP_DIR": str(tmp_path / "backups"),
        "METER_BACKUP_KEEP": str(keep),
        "METER_BACKUP_DATABASE": database,
        "METER_BACKUP_USER": "",  # the suite's PostgreSQL is reached over TCP, not by peer authentication
        "BACKUP_STATUS_FILE": str(tmp_path / "state" / "last-success"),
    }
    return subprocess.run([str(BACKUP)], env=env, capture_output=True, text=True, timeout=120)


def table_counts(url: str) -> dict[str, int]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sqlalchemy.inspect(conn).get_table_names()
            return {name: conn.scalar(sqlalchemy.text(f'SELECT count(*) FROM "{name}"')) for name in names}
    finally:
        engine.dispose()


def fresh_database(url: str, name: str) -> str:
    base = sqlalchemy.engine.make_url(url)
    admin = sqlalchemy.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def test_a_dump_is_private_kept_30_deep_and_dated_for_the_metric(app, postgres_only, tmp_path):
    (tmp_path / "state").mkdir()
    for _ in range(3):
        done = run_backup(tmp_path, libpq_url(postgres_only), keep=2)
        assert done.returncode == 0, done.stderr
        time.sleep(1.1)  # the names carry the second
    folder = tmp_path / "backups"
    dumps = sorted(folder.iterdir())
    assert len(dumps) == 2 and all(p.name.startswith("meter-") and p.name.endswith(".dump") for p in dumps)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in dumps)
    written = int((tmp_path / "state" / "last-success").read_text())
    assert abs(written - time.time()) < 60


def test_a_failed_dump_fails_leaves_nothing_and_keeps_the_last_success(app, postgres_only, tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "last-success").write_text("1000\n")
    bad = libpq_url(postgres_only).rsplit("/", 1)[0] + "/no_such_database"
    done = run_backup(tmp_path, bad)
    assert done.returncode != 0  # systemd marks the unit failed: `systemctl --failed` lists it
    assert list((tmp_path / "backups").iterdir()) == []
    assert (tmp_path / "state" / "last-success").read_text() == "1000\n"


def test_the_restore_drill_brings_back_every_row_and_the_journey_goes_on(
    app, api, verified_reader, postgres_only, redis_url, tmp_path
):
    _reader_id, token = verified_reader()
    assert api.access("laput-1", reader_token=token)["reason"] == "unlocked_now"
    before = table_counts(postgres_only)
    done = run_backup(tmp_path, libpq_url(postgres_only))
    assert done.returncode == 0, done.stderr
    [dump] = (tmp_path / "backups").iterdir()

    # The database lost (dropped), a fresh one made, the dump restored into it: docs/operations.md's steps.
    restored_url = fresh_database(postgres_only, f"{sqlalchemy.engine.make_url(postgres_only).database}_restored")
    with app.app_context():
        db.engine.dispose()
    restore = subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", "-d", libpq_url(restored_url), str(dump)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert restore.returncode == 0, restore.stderr
    assert table_counts(restored_url) == before

    flush_redis(redis_url)  # "after a restore, empty meter's Redis database"
    served = rebuilt(app, SQLALCHEMY_DATABASE_URI=restored_url)
    client = served.test_client()
    headers = {"Authorization": f"Bearer {api.key}"}
    login = client.post(
        "/v1/sessions", json={"email": "pembaca@example.com", "password": "rahasia-sekali"}, headers=headers
    )
    assert login.status_code == 200, login.get_data(as_text=True)
    again = client.post(
        "/v1/access", json={"article": {"id": "laput-1", "class": "metered"}, "reader_token": token}, headers=headers
    )
    assert again.status_code == 200 and again.get_json()["reason"] == "already_unlocked", again.get_json()
    second = client.post(
        "/v1/access", json={"article": {"id": "laput-2", "class": "metered"}, "reader_token": token}, headers=headers
    )
    assert second.get_json()["reason"] == "unlocked_now" and second.get_json()["meter"]["used"] == 2, second.get_json()
    with served.app_context():
        db.engine.dispose()
