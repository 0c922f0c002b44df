"""meter: metered access (a paywall's meter) for news publishers.

The package shows its layers, each importing only those below it (kept by import-linter, `make lint`;
docs/architecture.md has the picture and where to find what):

    meter.dev         development tooling: `make run`'s server, mail catcher, Redis and demo site
    meter.cli, meter.worker, meter.ops, meter.mail_commands
                      the entry points that see every feature: the command line, the background loop,
                      health and metrics, the mail outbox's commands
    meter.access, meter.accounts, meter.social, meter.gifts, meter.reader_data, meter.sites,
    meter.console, meter.stats, meter.webhooks
                      the features: each holds its views, commands, rules and models
    meter.platform    what every feature runs on: the database, Redis, mail, logs, metrics, the clock,
                      the page shell and its error pages, CSRF, rate counting, the API's description

`create_app` below is the one place that knows them all: it builds the app and wires them together.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Mapping
from typing import Any

from flask import Flask

# The release, as CHANGELOG.md names it (and pyproject.toml); `bin/meter --version` and
# `deploy/meter-flask --version` print it, /healthz does not (it would tell attackers what runs).
__version__ = "0.2.0"


def create_app(test_config: Mapping[str, Any] | type | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("METER_INSTANCE_DIR") or None, instance_relative_config=True)
    from config import Config

    app.config.from_object(Config)
    if isinstance(test_config, type):
        app.config.from_object(test_config)
    elif test_config is not None:
        app.config.from_mapping(test_config)
    _template_cache(app)
    _check_settings(app)
    if _uses_instance_dir(app):
        os.makedirs(app.instance_path, exist_ok=True)
    _secret_key(app)
    level = os.environ.get("LOG_LEVEL", "INFO")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if "LOG_LEVEL" in os.environ:  # also when a reload (deploy/gunicorn.conf.py) makes the app again
        logging.getLogger().setLevel(level)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    from meter import cli as commands
    from meter import ops
    from meter.access import views as access
    from meter.access.views import embed_script as embed
    from meter.accounts import rate_limits as ratelimit
    from meter.accounts import views as pages
    from meter.accounts.views import api as accounts_api
    from meter.accounts.views import api_me as me_api
    from meter.accounts.views import api_readers as readers_api
    from meter.console import views as console
    from meter.gifts.views import api as gifts_api
    from meter.gifts.views import embed as gifts_embed
    from meter.platform import (
        body_limit,
        csrf,
        db,
        http,
        i18n,
        logs,
        mail,
        metrics,
        openapi,
        problems,
        query_bytes,
        redis_conn,
    )
    from meter.sites.views import jwks
    from meter.social.views import pages as social
    from meter.stats import rules as stats
    from meter.stats import views as stats_api

    _init_database(app, db.db)
    db.migrate.init_app(
        app,
        db.db,
        render_as_batch=True,
        directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"),
    )
    logs.init_app(app)
    mail.init_app(app)
    stats.init_app(app)
    redis_conn.init_app(app, on_error=metrics.redis_error)
    csrf.csrf.init_app(app)
    i18n.init_app(app)
    ratelimit.init_app(app)
    http.init_app(app)
    problems.init_app(app)
    ops.init_app(app)
    for part in (accounts_api, gifts_api, readers_api, me_api, stats_api):  # the JSON API under /v1, in this order
        app.register_blueprint(part.bp)
    pages.init_app(app)
    social.init_app(app)
    console.init_app(app)
    access.init_app(app)
    embed.init_app(app)
    app.register_blueprint(gifts_embed.bp)  # the embed's gift button
    jwks.init_app(app)
    openapi.init_app(app)
    commands.init_app(app)
    if app.config.get("DEMO_SITE") or app.config.get("ENV_NAME") == "development":
        from meter.dev import demo

        demo.init_app(app)
    app.wsgi_app = body_limit.DrainOversized(app, app.wsgi_app)  # type: ignore[method-assign]  (in front of all)
    app.wsgi_app = query_bytes.EscapeRawQueryBytes(app.wsgi_app)  # type: ignore[method-assign]  (before anything reads the query)
    _proxy_fix(app)
    return app


def app_or_exit() -> Flask:
    """`create_app()` for the entry points (wsgi.py: gunicorn and the `flask` command; bin/meter).

    A configuration error is one line on stderr, naming the setting and the fix, and exit status 4,
    never a traceback. 4 is what gunicorn's master reads as "App failed to load" when a worker exits
    with it: it stops, instead of booting workers that fail again and again.
    """
    from meter.platform.settings import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        print(f"meter: configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(4) from None


DATABASE_EXAMPLE = "postgresql+psycopg://meter@/meter"


def _check_settings(app: Flask) -> None:
    """Outside development, meter needs its database, its Redis and a signing key given: a fallback
    (SQLite under instance/, a local Redis socket) would look like it works, then lose the data or
    with `degraded_mode: allow` let everyone read. In production the addresses it hands out (the
    public base URL of every mailed link, the sender's domain of every Message-ID) must be given too.
    Every problem is named at once, on one line."""
    from meter.platform.settings import ConfigError, public_address_problems

    config = app.config
    problems = list(config.get("UNREADABLE_SETTINGS") or [])
    if config.get("ENV_NAME") != "development":
        fixes = {
            "DATABASE_URL": f"DATABASE_URL to the database's URL, such as {DATABASE_EXAMPLE}",
            "REDIS_URL": "REDIS_URL, such as redis://127.0.0.1:6379/0",
            "SECRET_KEY": "SECRET_KEY_FILE to a file holding one key (or SECRET_KEY)",
            "PUBLIC_BASE_URL": "PUBLIC_BASE_URL to the public https:// address, such as https://meter.example.org",
        }
        given = {
            "DATABASE_URL": config.get("SQLALCHEMY_DATABASE_URI"),
            "REDIS_URL": config.get("REDIS_URL"),
            "SECRET_KEY": config.get("SECRET_KEY") or config.get("SECRET_KEY_FILE"),
        }
        if config.get("ENV_NAME") != "testing":  # the suite's servers run as "testing", on loopback
            given["PUBLIC_BASE_URL"] = config.get("PUBLIC_BASE_URL")
        missing = [name for name, value in given.items() if not value]
        if missing:
            names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
            verb = "is" if len(missing) == 1 else "are"
            problems.append(
                f"{names} {verb} not set: set {'; '.join(fixes[name] for name in missing)} (docs/operations.md). "
                "On a developer's machine, METER_ENV=development keeps them under instance/ instead"
            )
        if config.get("ENV_NAME") != "testing":
            problems += public_address_problems(config.get("PUBLIC_BASE_URL") or "", config.get("MAIL_DEFAULT_SENDER"))
    if problems:
        raise ConfigError("; ".join(problems))


def _init_database(app: Flask, database: Any) -> None:
    """A DATABASE_URL that SQLAlchemy cannot use (a typo, a driver not installed) stops the start in one line."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from meter.platform.settings import ConfigError

    try:
        database.init_app(app)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"DATABASE_URL cannot be used ({exc}): give one such as {DATABASE_EXAMPLE}") from None


def _template_cache(app: Flask) -> None:
    """JINJA_BYTECODE_CACHE, a `jinja2.BytecodeCache` given in code (never from the environment): a
    process that makes many apps, as the test suite does (hundreds a run), then compiles each template
    once instead of once per app. Set before anything reads `app.jinja_env`, which is made from
    `jinja_options` when first read."""
    cache = app.config.get("JINJA_BYTECODE_CACHE")
    if cache is not None:
        app.jinja_options = {**app.jinja_options, "bytecode_cache": cache}


def _proxy_fix(app: Flask) -> None:
    """Behind TRUSTED_PROXIES proxies, take the client address, scheme and host from X-Forwarded-*."""
    hops = app.config.get("TRUSTED_PROXIES") or 0
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def _uses_instance_dir(app: Flask) -> bool:
    """instance/ holds development's data (its secret key, Redis) and the default SQLite file; a
    production checkout, with DATABASE_URL set, never gets an empty one."""
    default_sqlite = app.config.get("SQLALCHEMY_DATABASE_URI", "").startswith(f"sqlite:///{app.instance_path}")
    return app.config.get("ENV_NAME") == "development" or default_sqlite


def after_fork(app: Flask) -> None:
    """What a process forked from the one that made `app` does first (gunicorn's workers, with
    `preload_app`): read the key files again, so that a reload picks up a rotated key, and drop the
    database connections of the parent, which two processes must never share. A key file that
    cannot be read is logged and the parent's keys are kept: a typo must not take the site down.
    """
    from meter.platform import keyfiles
    from meter.platform.db import db

    try:
        if keyfiles.load(app.config):
            logging.getLogger(__name__).info("signing keys read again from their files")
    except keyfiles.KeyFileError as exc:
        logging.getLogger(__name__).error("signing keys kept as they were: %s", exc)
    with app.app_context():
        db.engine.dispose(close=False)


def _secret_key(app: Flask) -> None:
    """Required outside development: SECRET_KEY or SECRET_KEY_FILE (meter.platform.keyfiles); in
    development one is made once and kept under instance/."""
    from meter.platform import keyfiles

    keyfiles.check_exclusive(app.config)
    keyfiles.load(app.config)
    if app.config.get("SECRET_KEY"):
        return
    if app.config.get("ENV_NAME") != "development":
        from meter.platform.settings import ConfigError

        raise ConfigError(
            "SECRET_KEY is not set: set SECRET_KEY_FILE or SECRET_KEY (or METER_ENV=development to have one made)"
        )
    os.makedirs(app.instance_path, exist_ok=True)
    path = os.path.join(app.instance_path, "secret_key")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)  # atomic: of two processes starting at once, the first wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    with open(path) as f:
        app.config["SECRET_KEY"] = f.read().strip()
