"""The migrations in migrations/ build exactly the models' schema, and go down cleanly."""

from __future__ import annotations

import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from meter import create_app
from meter.platform.db import db
from tests.conftest import _config_dict


def _fresh_url(tmp_path, postgres_url) -> str:
    if not postgres_url:
        return f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
        conn.execute(sqlalchemy.text("CREATE SCHEMA migration_check"))
    engine.dispose()
    return postgres_url


def test_upgrade_matches_models_and_downgrade_removes_everything(tmp_path, redis_url, postgres_url):
    url = _fresh_url(tmp_path, postgres_url)
    options = {"connect_args": {"options": "-csearch_path=migration_check"}} if postgres_url else {}
    app = create_app(
        {**_config_dict(), "SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": options, "REDIS_URL": redis_url}
    )
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == []
        downgrade(revision="base")
        tables = set(sqlalchemy.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        upgrade()
        assert "unlocks" in sqlalchemy.inspect(db.engine).get_table_names()
        db.engine.dispose()
