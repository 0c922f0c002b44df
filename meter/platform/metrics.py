"""Prometheus metrics: the counters meter keeps, and their text exposition (served at `GET /metrics`).

Counters and the latency histogram live in the process that observes them. Under gunicorn (several
worker processes) and with a separate `flask mail worker`, set PROMETHEUS_MULTIPROC_DIR to one empty
directory shared by all of them (wiped before each start): prometheus-client then keeps each
process's values in files there and a scrape of any worker adds them up. Without it, each process
answers with its own values only (fine for one process, as in the tests).

The outbox backlog is not counted as it happens: it is read from the database at scrape time, so it
is right whichever process queued or sent the mail. Nothing here touches Redis or SQL on the hot path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# In multiprocess mode every observation asks the kernel for the process id (`os.getpid`), to notice a
# fork and open the new process's own files: six times per access check, 1.5-2 µs of its CPU. The id
# is kept here instead, and set again in a forked child before any of its code runs (an at-fork
# hook); prometheus-client takes it through MultiProcessValue's `process_identifier`, its documented
# way to name the process, which must be given before the first metric exists (these below are).
_pid = os.getpid()


def _this_process() -> int:
    return _pid


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if values.ValueClass is not values.MutexValue:  # multiprocess mode (PROMETHEUS_MULTIPROC_DIR)
    os.register_at_fork(after_in_child=_forked)
    values.ValueClass = values.MultiProcessValue(_this_process)

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
SIGNINS = Counter(
    "meter_signins",
    "Readers signed in, by site and method: password, or the name of a sign-in provider.",
    ["site", "method"],
)
SOCIAL_REGISTRATIONS = Counter(
    "meter_social_registrations",
    "New reader accounts made by a sign-in with another account, by site and provider.",
    ["site", "provider"],
)
SOCIAL_FAILURES = Counter(
    "meter_social_failures",
    "Sign-ins with another account that failed, by site, provider and kind: cancelled, state, "
    "provider_error, id_token, unreachable, unavailable.",
    ["site", "provider", "kind"],
)
GIFTS_MADE = Counter("meter_gifts_made", "Articles subscribers gave (new gift links), by site.", ["site"])
GIFT_READS = Counter(
    "meter_gift_reads",
    "Access checks that carried a gift link, by site and outcome: new_device (a device opened the gift for the "
    "first time: the count of distinct devices), again (a device that had opened it), asked (record false), "
    "expired, revoked, device_limit, invalid.",
    ["site", "outcome"],
)
MAILS = Counter(
    "meter_mails",
    "Delivery attempts of the mail worker by outcome: sent, failed (will retry), dead (gave up).",
    ["outcome"],
)


HTTP_REQUESTS = Counter(
    "meter_http_requests",
    "Answers of every route, by route pattern (never the path), method and status class (2xx, 4xx, 5xx…).",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "meter_http_request_duration_seconds",
    "Time to answer inside the app, by route pattern and method.",
    ["route", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
# The label values a client can choose are bounded: any other method is "other"; a path that matches
# no route is "(no route)" (the caller passes it), so a scan cannot make a series per path.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_access_children: dict[tuple[str, str, bool], tuple] = {}
_request_children: dict[tuple[str, str, int], tuple] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answer of any route (both entries call it through meter.platform.http: one home)."""
    key = (route, method, status // 100)
    children = _request_children.get(key)
    if children is None:
        shown = method if method in METHODS else "other"
        if len(_request_children) > 10_000:  # routes times methods times classes is small; bound it anyway
            _request_children.clear()
        children = _request_children[key] = (
            HTTP_REQUESTS.labels(route, shown, f"{status // 100}xx"),
            HTTP_LATENCY.labels(route, shown),
        )
    children[0].inc()
    children[1].observe(seconds)


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


def signed_in(site_slug: str, method: str, created: bool) -> None:
    SIGNINS.labels(site_slug, method).inc()
    if created and method != "password":
        SOCIAL_REGISTRATIONS.labels(site_slug, method).inc()


def social_failure(site_slug: str, provider: str, kind: str) -> None:
    SOCIAL_FAILURES.labels(site_slug, provider, kind).inc()


def gift_made(site_slug: str) -> None:
    GIFTS_MADE.labels(site_slug).inc()


def gift_read(site_slug: str, outcome: str) -> None:
    GIFT_READS.labels(site_slug, outcome).inc()


def mail_outcome(outcome: str) -> None:
    MAILS.labels(outcome).inc()


class _Default(Collector):
    """This process's own metrics (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape(*extra: Collector) -> bytes:
    """The text exposition of every process's metrics (multiprocess mode when configured), plus `extra`."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Default())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


# --- webhooks (meter.webhooks.rules.delivery) ------------------------------------------------------

WEBHOOKS = Counter(
    "meter_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, failed (will retry), dead (gave up); "
    "disabled counts endpoints switched off (410 Gone, or failing for days).",
    ["outcome"],
)


def webhook_outcome(outcome: str) -> None:
    WEBHOOKS.labels(outcome).inc()


class WebhookBacklog(Collector):
    """The webhook outbox's backlog, read from the database when Prometheus scrapes (`read` returns
    waiting, dead and oldest_waiting_seconds: meter.webhooks.rules.delivery.backlog)."""

    def __init__(self, read) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            status = self.read()
        except Exception:  # noqa: BLE001 - the database away: the other metrics are still served
            log.warning("webhook backlog not scraped: the database is unreachable")
            return
        waiting = GaugeMetricFamily(
            "meter_webhook_deliveries_waiting", "Webhook deliveries not delivered yet, by state.", labels=["state"]
        )
        waiting.add_metric(["waiting"], status["waiting"])
        waiting.add_metric(["dead"], status["dead"])
        yield waiting
        yield GaugeMetricFamily(
            "meter_webhook_oldest_waiting_seconds",
            "Age of the oldest webhook delivery waiting (0 when none waits).",
            value=status["oldest_waiting_seconds"],
        )
