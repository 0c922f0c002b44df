"""Prometheus metrics at `GET /metrics`.

Counters and the latency histogram live in the process that observes them. Under gunicorn (several
worker processes) and with a separate `flask mail worker`, set PROMETHEUS_MULTIPROC_DIR to one empty
directory shared by all of them (wiped before each start): prometheus-client then keeps each
process's values in files there and a scrape of any worker adds them up. Without it, each process
answers with its own values only (fine for one process, as in the tests).

The outbox backlog is not counted as it happens: it is read from the database at scrape time, so it
is right whichever process queued or sent the mail. Nothing here touches Redis or SQL on the hot path.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from . import signals
from .extensions import db
from .models import Site
from .problems import Problem

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

ACCESS_DECISIONS = Counter(
    "meter_access_decisions",
    "Answers of the access check, by site, reason and whether it was allowed.",
    ["site", "reason", "allowed"],
)
ACCESS_LATENCY = Histogram(
    "meter_access_check_seconds",
    "Time to answer POST /v1/access inside the app (validation, token, Redis, ledger write).",
    ["site"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DEGRADED = Counter(
    "meter_degraded_answers",
    "Access answers given without Redis (degraded: true), by site and reason.",
    ["site", "reason"],
)
REDIS_ERRORS = Counter("meter_redis_errors", "Redis calls that failed (connection, timeout, cluster down).")
REGISTRATIONS = Counter("meter_registrations", "New reader accounts, by site.", ["site"])
ACTIVATIONS = Counter("meter_activations", "Readers who confirmed their address, by site.", ["site"])
MAILS = Counter(
    "meter_mails",
    "Delivery attempts of the mail worker by outcome: sent, failed (will retry), dead (gave up).",
    ["outcome"],
)


_access_children: dict[tuple[str, str, bool], tuple] = {}


def observe_access(site_slug: str, reason: str, allowed: bool, degraded: bool, seconds: float) -> None:
    """Count one access answer (in-process only: no Redis, no SQL).

    The labelled children are looked up once per (site, reason, allowed) and kept: `labels()` on
    every access check was a measurable share of its CPU.
    """
    children = _access_children.get((site_slug, reason, allowed))
    if children is None:
        if len(_access_children) > 10_000:  # sites times reasons is small; bound it anyway
            _access_children.clear()
        children = _access_children[(site_slug, reason, allowed)] = (
            ACCESS_DECISIONS.labels(site_slug, reason, "true" if allowed else "false"),
            ACCESS_LATENCY.labels(site_slug),
        )
    children[0].inc()
    children[1].observe(seconds)
    if degraded:
        DEGRADED.labels(site_slug, reason).inc()


def redis_error() -> None:
    REDIS_ERRORS.inc()


def mail_outcome(outcome: str) -> None:
    MAILS.labels(outcome).inc()


class OutboxCollector(Collector):
    """The mail backlog, read from the outbox table when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        from .mail import outbox_status  # mail imports this module

        try:
            status = outbox_status()
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


class _Default(Collector):
    """This process's own metrics (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Default())
    registry.register(OutboxCollector())
    return generate_latest(registry)


def _scraper_allowed() -> bool:
    """With METRICS_TOKEN set, only a scraper that sends it (`Authorization: Bearer <token>`) may read."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    if not token:
        return True  # open, as Prometheus expects by default: restrict /metrics at the proxy
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@bp.get("/metrics")
def metrics() -> Response:
    if not _scraper_allowed():
        raise Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "METRICS_TOKEN is set: send Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": 'Bearer realm="meter-metrics"'},
        )
    try:
        body = scrape()
    finally:
        db.session.remove()
    return Response(body, mimetype=None, content_type=PROMETHEUS_TEXT)


def _on_registered(app: Flask, reader, **_: object) -> None:
    REGISTRATIONS.labels(_slug(reader.site_id)).inc()


def _on_activated(app: Flask, reader, **_: object) -> None:
    ACTIVATIONS.labels(_slug(reader.site_id)).inc()


def _slug(site_id: int) -> str:
    site = getattr(g, "site", None)
    if site is not None and site.id == site_id:
        return site.slug
    row = db.session.get(Site, site_id)
    return row.slug if row else str(site_id)


def init_app(app: Flask) -> None:
    signals.reader_registered.connect(_on_registered, weak=False)
    signals.reader_activated.connect(_on_activated, weak=False)
    app.register_blueprint(bp)
