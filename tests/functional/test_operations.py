"""Operating meter over HTTP: /metrics, the request log, /openapi.json and ProxyFix."""

from __future__ import annotations

import json
import logging
import re

import pytest
from flask import Response
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from meter import create_app
from meter.dev.redis_server import RedisProcess, free_port
from tests import openapi_check as openapi
from tests.conftest import _config_dict, rebuilt, token_of


def samples(client) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) → value, from a real scrape of /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def decisions(values, site: str) -> dict[str, float]:
    return {
        dict(labels)["reason"]: v
        for (name, labels), v in values.items()
        if name == "meter_access_decisions_total" and dict(labels)["site"] == site
    }


def test_metrics_token_when_set_is_required_in_constant_time_and_never_a_500(app, client):
    assert client.get("/metrics").status_code == 200  # unset: open (the proxy restricts it)
    client = rebuilt(app, METRICS_TOKEN="s3cret-scraper-token").test_client()
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic s3cret-scraper-token"},
        {"Authorization": "Bearer s3cret-scraper-token-and-more"},
        {"Authorization": "Bearer s3cr\u00e9t"},  # non-ASCII: compared as bytes, refused, not a 500
    ):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "meter_" not in response.get_data(as_text=True)
    response = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scraper-token"})
    assert response.status_code == 200 and "meter_outbox_mails" in response.get_data(as_text=True)


def test_every_route_is_counted_by_its_pattern_method_and_status_class(app, client, api):
    """Only /v1/access had request metrics; a scan of random paths or methods must not make a series each."""
    before = samples(client)
    api.access("tempo:1", anonymous_id="visitor-0001")
    client.get("/tempo/login")
    client.get("/tempo/activate/not-a-token")
    for n in range(5):
        client.get(f"/no/such/path/{n}")
    client.open("/healthz", method="BREW")
    after = samples(client)

    def grew(route, method, status):
        key = ("meter_http_requests_total", (("method", method), ("route", route), ("status", status)))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("/v1/access", "POST", "2xx") == 1
    assert grew("/<site_slug>/login", "GET", "2xx") == 1
    assert (
        sum(grew("/<site_slug>/activate/<token>", "GET", c) for c in ("2xx", "4xx")) == 1
    )  # the pattern, not the token
    assert grew("(no route)", "GET", "4xx") == 5
    assert grew("(no route)", "other", "4xx") == 1  # 405: no rule matched that method
    routes = {dict(labels)["route"] for (name, labels) in after if name == "meter_http_requests_total"}
    assert not any("no/such" in route or "not-a-token" in route for route in routes), routes
    latency = ("meter_http_request_duration_seconds_count", (("method", "GET"), ("route", "/<site_slug>/login")))
    assert after[latency] - before.get(latency, 0) == 1


def test_the_last_backups_time_is_a_metric_and_a_missing_one_is_zero(app, client, tmp_path):
    """deploy/meter-backup writes the time of its last good dump; its age drives the MeterBackupTooOld alert."""
    name = "meter_backup_last_success_timestamp_seconds"
    assert (name, ()) not in samples(client)  # BACKUP_STATUS_FILE unset: backups are made some other way
    status = tmp_path / "last-success"
    served = rebuilt(app, BACKUP_STATUS_FILE=str(status)).test_client()
    assert samples(served)[(name, ())] == 0.0  # configured, never written: the alert fires
    status.write_text("1765000000\n")
    assert samples(served)[(name, ())] == 1765000000.0
    status.write_text("garbage")
    assert samples(served)[(name, ())] == 0.0


def test_metrics_after_the_journey_count_decisions_by_reason(app, client, api, mailbox, deliver):
    before = samples(client)
    response = api.post("/v1/readers", json={"email": "m@example.com", "password": "rahasia-sekali"})
    assert response.status_code == 202
    waiting = samples(client)
    assert waiting[("meter_outbox_mails", (("state", "queued"),))] == 1
    assert waiting[("meter_outbox_oldest_waiting_seconds", ())] >= 0
    assert deliver() == (1, 0)
    link = next(
        line for line in mailbox.messages[-1]["msg"].get_body(("plain",)).get_content().split() if "/activate/" in line
    )
    token = api.post("/v1/activations", json={"token": token_of(link)}).get_json()["reader_token"]
    for article in ("a", "b", "a", "c"):
        api.access(f"tempo:koran:{article}", reader_token=token)
    api.access("tempo:news", cls="free")
    api.access("tempo:laput", cls="premium", reader_token=token)
    api.access("tempo:koran:a", anonymous_id="visitor-0001")

    after = samples(client)
    grew = {
        reason: count - decisions(before, "tempo").get(reason, 0) for reason, count in decisions(after, "tempo").items()
    }
    assert {k: v for k, v in grew.items() if v} == {
        "unlocked_now": 2,
        "already_unlocked": 1,
        "quota_exhausted": 1,
        "free_content": 1,
        "subscription_required": 1,
        "registration_required": 1,
    }
    assert after[
        ("meter_access_decisions_total", (("allowed", "false"), ("reason", "quota_exhausted"), ("site", "tempo")))
    ]
    latency = ("meter_access_check_seconds_count", (("site", "tempo"),))
    assert after[latency] - before.get(latency, 0) == 7

    def delta(name, labels=()):
        return after.get((name, labels), 0) - before.get((name, labels), 0)

    assert delta("meter_registrations_total", (("site", "tempo"),)) == 1
    assert delta("meter_activations_total", (("site", "tempo"),)) == 1
    assert delta("meter_mails_total", (("outcome", "sent"),)) == 1
    assert after[("meter_outbox_mails", (("state", "queued"),))] == 0
    assert after[("meter_outbox_oldest_waiting_seconds", ())] == 0


def test_mail_failures_and_dead_letters_are_counted(app):
    from meter.platform import mail
    from tests.conftest import Api, make_site

    closed = create_app({**app.config, "MAIL_PORT": free_port(), "MAIL_MAX_ATTEMPTS": 2})  # nothing listens there
    client = closed.test_client()
    api = Api(client, make_site(closed, "closed"), "closed")
    before = samples(client)
    api.post("/v1/readers", json={"email": "f@example.com", "password": "rahasia-sekali"})
    with closed.app_context():
        assert mail.deliver_due() == (0, 1)
        assert samples(client)[("meter_outbox_mails", (("state", "failing"),))] == 1
        assert mail.deliver_due() == (0, 1)
    after = samples(client)
    assert after[("meter_outbox_mails", (("state", "dead"),))] == 1
    failed = ("meter_mails_total", (("outcome", "failed"),))
    dead = ("meter_mails_total", (("outcome", "dead"),))
    assert after[failed] - before.get(failed, 0) == 1
    assert after[dead] - before.get(dead, 0) == 1


@pytest.fixture
def own_redis_app(app, tmp_path):
    server = RedisProcess(str(tmp_path / "own-redis")).start()
    yield create_app({**app.config, "REDIS_URL": server.url, "REDIS_RETRY_AFTER": 0.0}), server
    server.stop()


def test_degraded_answers_and_redis_errors_are_counted(app, own_redis_app):
    fresh, server = own_redis_app
    client = fresh.test_client()
    from tests.conftest import Api, make_site

    api = Api(client, make_site(fresh, "down"), "down")
    before = samples(client)
    server.stop()
    answer = api.access("down:a", anonymous_id="visitor-0002")
    assert answer["degraded"] is True
    after = samples(client)
    errors = ("meter_redis_errors_total", ())
    assert after[errors] - before.get(errors, 0) >= 1
    degraded = ("meter_degraded_answers_total", (("reason", answer["reason"]), ("site", "down")))
    assert after[degraded] - before.get(degraded, 0) == 1


def test_readyz_names_what_is_down_only_to_the_host_and_the_scraper(app, own_redis_app):
    fresh, server = own_redis_app
    outsider = {"REMOTE_ADDR": "203.0.113.9"}
    client = fresh.test_client()
    assert client.get("/readyz").get_json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}
    assert client.get("/readyz", environ_base=outsider).get_json() == {"status": "ready"}
    server.stop()
    inside = client.get("/readyz")
    assert inside.status_code == 503 and inside.get_json()["detail"] == "Unreachable: redis."
    outside = client.get("/readyz", environ_base=outsider)
    assert outside.status_code == 503 and outside.get_json()["detail"] == "Unavailable."
    assert "redis" not in outside.get_data(as_text=True).lower()
    scraper = rebuilt(fresh, METRICS_TOKEN="s3cret-scraper-token").test_client()
    told = scraper.get("/readyz", environ_base=outsider, headers={"Authorization": "Bearer s3cret-scraper-token"})
    assert told.get_json()["detail"] == "Unreachable: redis."
    wrong = scraper.get("/readyz", environ_base=outsider, headers={"Authorization": "Bearer wrong"})
    assert wrong.get_json()["detail"] == "Unavailable."


class Lines(logging.Handler):
    """The messages one logger writes, whatever pytest's capture does with the root logger."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.DEBUG)
        self.logger, self.messages = logging.getLogger(name), []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())

    def __enter__(self) -> list[str]:
        self.logger.addHandler(self)
        return self.messages

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self)


def test_a_redis_outage_is_logged_once_then_summed_up_not_once_per_request(app, own_redis_app):
    """An operator's drill wrote 1,847 WARNING lines in 12 s of a Redis outage: one a request."""
    fresh, server = own_redis_app
    outage_log = fresh.extensions["meter.redis"].outage
    outage_log.every = 3600.0  # no summary within the test
    client = fresh.test_client()
    from tests.conftest import Api, make_site

    api = Api(client, make_site(fresh, "down"), "down")
    assert api.access("down:a", anonymous_id="visitor-0002")["degraded"] is False
    server.stop()
    with Lines("meter.platform.redis_conn") as outage, Lines("meter") as everything:
        for n in range(60):
            assert api.access(f"down:{n}", anonymous_id="visitor-0002")["degraded"] is True
    assert len(outage) == 1 and outage[0].startswith("Redis unreachable ("), outage
    assert len(everything) == 1, everything  # not a warning per degraded answer as well

    outage_log.every = 0.0  # every failure now due for a summary
    with Lines("meter.platform.redis_conn") as summary:
        api.access("down:x", anonymous_id="visitor-0002")
    assert len(summary) == 1 and summary[0].startswith("Redis still unreachable after "), summary

    server.start()
    with Lines("meter.platform.redis_conn") as back:
        for _ in range(3):
            assert api.access("down:b", anonymous_id="visitor-0002")["degraded"] is False
    assert len(back) == 1 and back[0].startswith("Redis reachable again after "), back


# --- the request log --------------------------------------------------------------------------


def request_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "meter.request"]


def test_one_json_log_line_per_request_with_the_request_id_and_no_secrets(app, client, api, caplog):
    caplog.set_level(logging.INFO, logger="meter.request")
    response = api.post(
        "/v1/readers",
        json={"email": "rahasia.pembaca@example.com", "password": "kata-sandi-rahasia"},
        headers={"X-Request-ID": "req-123.abc"},
    )
    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == "req-123.abc"
    [record] = request_lines(caplog)
    line = json.loads(openapi_free_format(record))
    assert line["request_id"] == "req-123.abc"
    assert (line["site"], line["route"], line["status"], line["method"]) == ("tempo", "/v1/readers", 202, "POST")
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    everything = "\n".join(openapi_free_format(r) for r in caplog.records)
    assert "kata-sandi-rahasia" not in everything
    assert "rahasia.pembaca@example.com" not in everything
    assert api.key not in everything


def openapi_free_format(record: logging.LogRecord) -> str:
    from meter.platform.logs import JsonFormatter

    return JsonFormatter().format(record)


def test_request_ids_are_made_when_missing_or_hostile(client, caplog):
    caplog.set_level(logging.INFO, logger="meter.request")
    made = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{16}", made)
    hostile = client.get("/healthz", headers={"X-Request-ID": 'x" {"admin": true}' + "a" * 200}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{16}", hostile)
    assert [r.request_id for r in request_lines(caplog)] == [made, hostile]


def test_tokens_in_urls_never_reach_the_log(app, client, api, register, caplog):
    link = register()
    caplog.set_level(logging.INFO)
    path = link.removeprefix("http://meter.test")
    assert client.get(path).status_code == 200
    token = token_of(path)
    [record] = request_lines(caplog)
    assert record.route == "/<site_slug>/activate/<token>" and record.site == "tempo"
    assert token not in openapi_free_format(record)


def test_masking_of_emails_keys_and_tokens():
    from meter.platform.logs import mask

    masked = mask(
        "to pembaca@example.com with mk_AbCdEf0123456789xyz and eyJhbGciOiJIUzI1NiJ9.Zm9vYmFy.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    )
    assert masked == "to p***@example.com with mk_AbCdEf… and [token]"


def test_text_log_format(app):
    from meter.platform.logs import TextFormatter

    record = logging.LogRecord("meter.request", logging.INFO, "", 0, "GET %s %s", ("/healthz", 200), None)
    record.request_id = "abc"
    assert TextFormatter().format(record).endswith("GET /healthz 200 [request_id=abc]")


# --- OpenAPI ----------------------------------------------------------------------------------


def test_openapi_describes_every_route_of_the_api(app, client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.get_json()
    assert spec["openapi"] == "3.1.0"
    validate(spec)  # openapi-spec-validator: a valid OpenAPI 3.1 document
    described = {
        (path, method.upper()) for path, item in spec["paths"].items() for method in item if method != "parameters"
    }
    served = {
        (openapi._path_template(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/v1/", "/amp/", "/embed/", "/healthz", "/readyz", "/metrics", "/openapi.json"))
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served <= described, served - described
    access = spec["paths"]["/v1/access"]["post"]
    assert access["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/AccessBody"}
    article = spec["components"]["schemas"]["Article"]
    assert "class" in article["properties"] and article["required"] == ["id"]
    assert access["responses"]["422"]["content"]["application/problem+json"]


def test_a_wrong_answer_is_caught_by_the_description(app):
    with app.test_request_context():
        wrong = Response(json.dumps({"allowed": "yes", "reason": "because"}), 200, mimetype="application/json")
        problem = openapi.violation("POST", "/v1/access", wrong)
        assert problem and "POST /v1/access → 200" in problem
        undescribed = Response("{}", 418, mimetype="application/json")
        assert "status not described" in openapi.violation("POST", "/v1/access", undescribed)
        html = Response("<p>", 401, mimetype="text/html")
        assert "content type text/html" in openapi.violation("POST", "/v1/access", html)
        ok = Response(json.dumps({"status": "ok"}), 200, mimetype="application/json")
        assert openapi.violation("GET", "/healthz", ok) is None


# --- ProxyFix ---------------------------------------------------------------------------------


def test_proxy_fix_trusts_only_the_configured_number_of_proxies(app):
    from flask import request

    def seen(config) -> tuple[str, str]:
        fresh = create_app(
            {
                **_config_dict(),
                **config,
                "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                "REDIS_URL": app.config["REDIS_URL"],
            }
        )

        @fresh.get("/whoami")
        def whoami():
            return {"addr": request.remote_addr, "scheme": request.scheme}

        headers = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto": "https"}
        answer = (
            fresh.test_client().get("/whoami", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.1"}).get_json()
        )
        return answer["addr"], answer["scheme"]

    assert seen({"TRUSTED_PROXIES": 0}) == ("10.0.0.1", "http")
    assert seen({"TRUSTED_PROXIES": 1}) == ("198.51.100.7", "https")


def test_reader_ids_past_the_database_column_are_404_not_500(api):
    """Found by schemathesis on PostgreSQL: readers.id is a 32-bit INTEGER there."""
    for reader_id in (2**31, 67655961908109, 2**63):
        for method in (api.delete, api.put):
            response = method(f"/v1/readers/{reader_id}/subscription", json={"until": "2030-01-01T00:00:00+07:00"})
            assert response.status_code == 404, (reader_id, response.get_data(as_text=True))
            assert response.mimetype == "application/problem+json"
