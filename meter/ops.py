"""Operations: liveness and readiness, Prometheus metrics (`GET /metrics`) and what they count from events.

The counters live in `meter.platform.metrics`; this module serves them, adds the outbox backlog and
the last backup's time read at scrape time, and counts registrations, activations and sign-ins from the account flows' signals.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from meter.platform import mail, metrics, signals
from meter.platform import responses as out
from meter.platform.db import db
from meter.platform.openapi import Answer, describe, problem
from meter.platform.problems import Problem
from meter.platform.redis_conn import RedisUnavailable, conn
from meter.sites.models import Site
from meter.webhooks.rules import delivery as webhook_delivery

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)


@describe("Liveness: the process is up.", {200: Answer("Up.", out.Health)}, secured=False, unavailable=False)
@bp.get("/healthz")
def healthz():
    return out.Health(status="ok")


@describe(
    "Readiness: the database and Redis answer. Which one does not is said only to the host itself (loopback) "
    "and to a caller with METRICS_TOKEN; anyone else reads ready or unavailable.",
    {200: Answer("Ready.", out.Ready), 503: problem("The database or Redis is unreachable.")},
    secured=False,
)
@bp.get("/readyz")
def readyz():
    checks = {"database": "ok", "redis": "ok"}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means not ready
        db.session.rollback()
        checks["database"] = "unreachable"
    try:
        redis = conn()
        redis.mark_up()  # readiness asks Redis itself, not the circuit breaker
        redis.call(redis.client.ping)
    except RedisUnavailable:
        checks["redis"] = "unreachable"
    insider = _insider()
    if any(v != "ok" for v in checks.values()):
        failed = ", ".join(k for k, v in checks.items() if v != "ok")
        raise Problem(503, "not-ready", "Not ready", f"Unreachable: {failed}." if insider else "Unavailable.")
    return out.Ready(status="ready", checks=checks) if insider else out.Ready(status="ready")


def _insider() -> bool:
    """Who may learn which of meter's servers is unreachable: the host itself (systemd, a check on
    loopback) and a scraper that sends METRICS_TOKEN. Anyone else on the internet learns only ready
    or not: what is down, and when, helps an attacker time an attack."""
    try:
        if ipaddress.ip_address(request.remote_addr or "").is_loopback:
            return True
    except ValueError:
        pass
    return bool(current_app.config.get("METRICS_TOKEN")) and _scraper_allowed()


class OutboxCollector(Collector):
    """The mail backlog, read from the outbox table when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:

        try:
            status = mail.outbox_status()
        except SQLAlchemyError:
            db.session.rollback()
            log.warning("outbox backlog not scraped: the database is unreachable")
            yield GaugeMetricFamily("meter_outbox_readable", "1 when the outbox could be read at this scrape.", 0)
            return
        yield GaugeMetricFamily("meter_outbox_readable", "1 when the outbox could be read at this scrape.", 1)
        backlog = GaugeMetricFamily(
            "meter_outbox_mails",
            "Mails in the outbox not sent yet: queued (never tried), failing (retrying), dead (gave up).",
            labels=["state"],
        )
        for state in ("queued", "failing", "dead"):
            backlog.add_metric([state], status[state])
        yield backlog
        age = status["oldest_waiting_seconds"] or 0.0
        yield GaugeMetricFamily(
            "meter_outbox_oldest_waiting_seconds",
            "Age of the oldest mail waiting to be sent (0 when none waits).",
            value=age,
        )


class BackupCollector(Collector):
    """The time of the last good database dump, which deploy/meter-backup writes to BACKUP_STATUS_FILE:
    the alert on its age (deploy/prometheus/meter-rules.yml) catches a timer that stopped running as
    well as dumps that fail. 0 when the file is missing or unreadable, so the alert fires then too;
    nothing when BACKUP_STATUS_FILE is not set (backups made some other way)."""

    def collect(self) -> Iterator[Metric]:
        path = current_app.config.get("BACKUP_STATUS_FILE") or ""
        if not path:
            return
        try:
            with open(path, encoding="ascii") as f:
                when = float(f.read(32).strip())
        except (OSError, ValueError):
            when = 0.0
        yield GaugeMetricFamily(
            "meter_backup_last_success_timestamp_seconds",
            "When the last database dump succeeded (Unix time; 0: none found).",
            value=when,
        )


def _webhook_backlog() -> dict:
    try:
        return webhook_delivery.backlog()
    except SQLAlchemyError:
        db.session.rollback()
        raise


def _scraper_allowed() -> bool:
    """With METRICS_TOKEN set, only a scraper that sends it (`Authorization: Bearer <token>`) may read."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    if not token:
        return True  # open, as Prometheus expects by default: restrict /metrics at the proxy
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@describe(
    "Prometheus metrics (text exposition format); see docs/operations.md.",
    {
        200: Answer("Metrics.", media="text/plain"),
        401: problem("METRICS_TOKEN is set and the request does not carry it as a Bearer token."),
    },
    secured=False,
)
@bp.get("/metrics")
def prometheus() -> Response:
    if not _scraper_allowed():
        raise Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "METRICS_TOKEN is set: send Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": 'Bearer realm="meter-metrics"'},
        )
    try:
        body = metrics.scrape(OutboxCollector(), BackupCollector(), metrics.WebhookBacklog(_webhook_backlog))
    finally:
        db.session.remove()
    return Response(body, mimetype=None, content_type=metrics.PROMETHEUS_TEXT)


def _on_registered(app: Flask, reader, **_: object) -> None:
    metrics.REGISTRATIONS.labels(_slug(reader.site_id)).inc()


def _on_activated(app: Flask, reader, **_: object) -> None:
    metrics.ACTIVATIONS.labels(_slug(reader.site_id)).inc()


def _on_signed_in(app: Flask, reader, method: str, created: bool = False, **_: object) -> None:
    metrics.signed_in(_slug(reader.site_id), method, created)


def _slug(site_id: int) -> str:
    site = getattr(g, "site", None)
    if site is not None and site.id == site_id:
        return site.slug
    row = db.session.get(Site, site_id)
    return row.slug if row else str(site_id)


def init_app(app: Flask) -> None:
    signals.reader_registered.connect(_on_registered, weak=False)
    signals.reader_activated.connect(_on_activated, weak=False)
    signals.reader_signed_in.connect(_on_signed_in, weak=False)
    app.register_blueprint(bp)
