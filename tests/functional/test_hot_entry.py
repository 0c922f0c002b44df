"""The hot entry (meter/access/views/hot.py): the access routes (API, embed, AMP) are answered in front
of Flask, refusals included, and indistinguishable from Flask's views: same bytes, headers, log line,
errors. Both serve the same handlers; these tests hold them to it."""

from __future__ import annotations

import io
import json
import logging

import pytest
from flask import request, request_started
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from werkzeug.test import EnvironBuilder, run_wsgi_app

from meter.access.models import Unlock
from meter.platform.db import db
from tests.conftest import Api, rebuilt


@pytest.fixture
def through_flask(app):
    """The requests that Flask dispatched (the fast path sends no request_started)."""
    seen: list[str] = []

    def note(sender, **_extra):
        from flask import request

        seen.append(f"{request.method} {request.path}")

    request_started.connect(note, app)
    yield seen
    request_started.disconnect(note, app)


def _body(article="koran:1", **extra) -> dict:
    return {"article": {"id": article, "class": extra.pop("cls", "metered")}, **extra}


def test_every_access_answer_skips_flask_and_everything_else_goes_to_it(app, api, verified_reader, through_flask):
    _rid, token = verified_reader()
    through_flask.clear()

    assert api.access("koran:1", reader_token=token)["reason"] == "unlocked_now"
    assert api.access("koran:1", reader_token=token)["reason"] == "already_unlocked"
    assert api.access("berita:1", cls="free")["reason"] == "free_content"
    # refusals too: one pipeline answers every outcome
    assert api.client.post("/v1/access", json=_body()).status_code == 401  # no key
    assert api.post("/v1/access", json={"article": {"id": ""}}).status_code == 422
    assert api.post("/v1/access", data=b"{nope", content_type="application/json").status_code == 400
    assert api.post("/v1/access", json=[1]).status_code == 422
    embed = api.client.post("/embed/tempo/access", data=json.dumps(_body()), headers={"Origin": "https://tempo.co"})
    assert embed.status_code == 200
    assert (
        api.client.post("/embed/tempo/access", data="{}", headers={"Origin": "https://evil.example"}).status_code == 403
    )
    amp = {"rid": "amp-reader-0001", "url": "https://tempo.co/amp/1", "article": "koran:1"}
    assert api.client.get("/amp/tempo/authorization", query_string=amp).status_code == 200
    assert api.client.post("/amp/tempo/pingback", query_string=amp).status_code == 204
    assert api.client.get("/amp/nope/authorization", query_string=amp).status_code == 404
    assert through_flask == []

    assert api.get("/v1/access").status_code == 405
    assert api.post("/v1/access/", json=_body()).status_code in (404, 405, 308)
    assert api.client.head("/amp/tempo/authorization", query_string=amp).status_code == 200
    assert len(through_flask) == 3

    flask_only = rebuilt(app, METER_FAST_ACCESS=False)  # the same deployment restarted with the entry off
    through = []
    request_started.connect(lambda sender, **_: through.append(request.path), flask_only, weak=False)
    assert Api(flask_only.test_client(), api.key, "tempo").access("koran:1", reader_token=token)["reason"] == (
        "already_unlocked"
    )
    assert through == ["/v1/access"]


@pytest.mark.config(RATELIMIT_ACCESS_IP="2/minute")
def test_the_access_rate_limit_is_kept_by_the_hot_entry(app, api, through_flask):
    answers = [api.post("/v1/access", json=_body(cls="free")) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[-1].get_json()["type"].endswith("/problems/rate-limited")
    assert through_flask == []


def _exchange(api, body: dict, fast: bool, base_url: str = "http://localhost") -> tuple[int, list, bytes]:
    api.client.application.config["METER_FAST_ACCESS"] = fast
    response = api.post("/v1/access", json=body, headers={"X-Request-ID": "same-id"}, base_url=base_url)
    return response.status_code, sorted(response.headers.items()), response.get_data()


def test_hot_and_flask_answers_are_byte_for_byte_the_same(app, api, verified_reader, through_flask):
    _rid, token = verified_reader("satu@example.com")
    _rid2, token2 = verified_reader("dua@example.com")
    bodies = [
        _body(reader_token=token, record=False),
        _body(reader_token="not.a.token", record=False),
        _body(anonymous_id="anon-12345678", record=False),
        _body(),  # nobody to count against
        _body(cls="free"),
        _body(cls="premium", reader_token=token),
        _body(article="koran:\u00e9\u00e8 \u201cquoted\u201d", reader_token=token, record=False),  # non-ASCII id
    ]
    for body in bodies:
        fast = _exchange(api, body, True)
        slow = _exchange(api, body, False)
        assert fast == slow, body
        assert fast[0] == 200
    assert _exchange(api, bodies[0], True, "https://meter.example") == _exchange(
        api, bodies[0], False, "https://meter.example"
    )  # HSTS on both

    # Recording checks change state: two readers in the same state, one through each path.
    for article in ["koran:a", "koran:b", "koran:a", "koran:c"]:
        fast = _exchange(api, _body(article, reader_token=token), True)
        slow = _exchange(api, _body(article, reader_token=token2), False)
        assert fast == slow, article
    reasons = [json.loads(_exchange(api, _body(a, reader_token=token), True)[2])["reason"] for a in ["koran:b", "x"]]
    assert reasons == ["already_unlocked", "quota_exhausted"]
    with app.app_context():  # the hot entry wrote its unlocks to the ledger as the Flask view did
        counts = db.session.execute(select(Unlock.subject, func.count()).group_by(Unlock.subject)).all()
    assert sorted(n for _subject, n in counts) == [2, 2]


def test_the_hot_entry_writes_the_request_log_line(api, caplog):
    with caplog.at_level(logging.INFO, logger="meter.request"):
        response = api.post("/v1/access", json=_body(cls="free"), headers={"X-Request-ID": "pembaca-42"})
    assert response.headers["X-Request-ID"] == "pembaca-42"
    [record] = [r for r in caplog.records if r.name == "meter.request"]
    assert record.getMessage() == "POST /v1/access 200"
    assert (record.request_id, record.route, record.site, record.status) == ("pembaca-42", "/v1/access", "tempo", 200)
    assert record.duration_ms >= 0

    with caplog.at_level(logging.INFO, logger="meter.request"):
        generated = api.post("/v1/access", json=_body(cls="free"), headers={"X-Request-ID": "bad id;"})
    assert generated.headers["X-Request-ID"] != "bad id;" and len(generated.headers["X-Request-ID"]) == 16


@pytest.mark.parametrize(
    ("error", "status", "name"),
    [
        (lambda: RuntimeError("boom"), 500, "internal-error"),
        (lambda: OperationalError("SELECT 1", {}, Exception("database gone")), 503, "service-unavailable"),
    ],
)
def test_an_error_while_deciding_is_answered_by_the_apps_own_handlers(
    app, api, monkeypatch, caplog, error, status, name
):
    def fail(*_args, **_kwargs):
        raise error()

    monkeypatch.setattr("meter.access.rules.judge.decide", fail)
    answers = []
    headers = {"X-Request-ID": "err-1", "Authorization": f"Bearer {api.key}"}
    for served in (app, rebuilt(app, METER_FAST_ACCESS=False)):  # the hot entry, then Flask's view
        with caplog.at_level(logging.INFO):
            caplog.clear()
            response = served.test_client().post("/v1/access", json=_body(), headers=headers)
        assert response.status_code == status
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["type"].endswith(f"/problems/{name}")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        lines = [r for r in caplog.records if r.name == "meter.request"]
        assert [(r.route, r.status, r.request_id) for r in lines] == [("/v1/access", status, "err-1")]
        answers.append((response.status_code, sorted(response.headers.items()), response.get_data()))
    assert answers[0] == answers[1]


def test_a_body_without_content_length_is_answered(app, api, through_flask):
    builder = EnvironBuilder(
        path="/v1/access", method="POST", json=_body(cls="free"), headers={"Authorization": f"Bearer {api.key}"}
    )
    environ = builder.get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True  # as a server that undid chunked transfer encoding says
    app_iter, status, _headers = run_wsgi_app(app, environ)  # not the test client: it puts CONTENT_LENGTH back
    assert status == "200 OK" and json.loads(b"".join(app_iter))["reason"] == "free_content"
    assert through_flask == []


class _Reset:
    def read(self, *_args):
        raise ConnectionResetError("client went away")


@pytest.mark.parametrize("stream", [io.BytesIO(b'{"article": {"id"'), _Reset()], ids=["short", "reset"])
def test_a_body_cut_short_is_a_400_problem(app, api, through_flask, stream):
    builder = EnvironBuilder(
        path="/v1/access", method="POST", json=_body(), headers={"Authorization": f"Bearer {api.key}"}
    )
    environ = builder.get_environ()
    environ["wsgi.input"] = stream  # CONTENT_LENGTH still promises the whole body
    app_iter, status, headers = run_wsgi_app(app, environ)
    assert status.startswith("400 ") and dict(headers)["Content-Type"] == "application/problem+json"
    assert json.loads(b"".join(app_iter))["status"] == 400


@pytest.mark.config(MAX_CONTENT_LENGTH=200)
def test_a_body_over_the_limit_is_a_413_problem(app, api, through_flask):
    response = api.post("/v1/access", json=_body("x" * 300))
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert through_flask == []


def test_the_hot_entrys_answers_are_checked_against_openapi_at_the_client(app, api, monkeypatch):
    from meter.access.views import exchange

    monkeypatch.setattr("meter.access.views.api.json_answer", lambda payload: exchange.json_answer({"allowed": "yes"}))
    with pytest.raises(AssertionError, match=r"POST /v1/access → 200"):
        api.post("/v1/access", json=_body())


def test_any_body_gets_the_same_answer_from_both_paths(app, api, verified_reader):
    """Property: whatever the body (valid or not), the hot entry and the Flask view answer alike."""
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    _rid, token = verified_reader()
    article_ids = st.text(min_size=0, max_size=40) | st.sampled_from(["koran:1", "majalah:laput:1", "x" * 513])
    articles = st.fixed_dictionaries(
        {"id": article_ids},
        optional={"class": st.sampled_from(["free", "metered", "premium", "gratis", 1, None])},
    )
    bodies = st.fixed_dictionaries(
        {
            "article": articles | st.none() | st.integers(),
            # record: false keeps the state still, so both paths see the same; the rest are refused
            "record": st.just(False) | st.sampled_from(["false", 0, None]),
        },
        optional={
            "reader_token": st.sampled_from([token, token[:-2], "", "a.b.c"]) | st.none() | st.integers(),
            "anonymous_id": st.from_regex(r"\A[A-Za-z0-9_-]{6,12}\Z") | st.none(),
            "extra": st.integers(),
        },
    )
    statuses: set[int] = set()

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=bodies)
    @example(body={"article": {"id": "koran:1"}, "record": False, "reader_token": token})  # answered, always tried
    def same(body):
        fast = _exchange(api, body, True)
        assert fast == _exchange(api, body, False)
        statuses.add(fast[0])

    same()
    assert {200, 422} <= statuses  # both answered and refused bodies were compared


def test_behind_a_trusted_proxy_the_fast_path_sees_the_forwarded_scheme(app, api):
    """ProxyFix sits in front of the hot entry: X-Forwarded-Proto https from a trusted proxy → HSTS."""
    from meter import create_app
    from tests.conftest import _config_dict

    def hsts(trusted: int) -> str | None:
        fresh = create_app(
            {
                **_config_dict(),
                "TRUSTED_PROXIES": trusted,
                "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                "REDIS_URL": app.config["REDIS_URL"],
            }
        )
        seen: list[str] = []
        request_started.connect(lambda sender, **_: seen.append("flask"), fresh, weak=False)
        response = fresh.test_client().post(
            "/v1/access",
            json=_body(cls="free"),
            headers={"Authorization": f"Bearer {api.key}", "X-Forwarded-Proto": "https"},
        )
        assert response.status_code == 200 and seen == []  # answered by the hot entry
        return response.headers.get("Strict-Transport-Security")

    assert hsts(0) is None  # nobody trusted: a forged header changes nothing
    assert hsts(1) == "max-age=31536000"


def _browser_exchange(client, method: str, path: str, fast: bool, **kwargs) -> tuple[int, list, bytes]:
    client.application.config["METER_FAST_ACCESS"] = fast
    response = client.open(
        path, method=method, headers={"X-Request-ID": "same-id", **kwargs.pop("headers", {})}, **kwargs
    )
    return response.status_code, sorted(response.headers.items()), response.get_data()


def test_embed_and_amp_answers_are_the_same_from_both_entries(app, api, verified_reader):
    """The embed's and AMP's answers (walls, banners, CORS, cookies, refusals) do not depend on the entry."""
    _rid, token = verified_reader()
    client = api.client
    origin = {"Origin": "https://tempo.co"}
    client.set_cookie("meter_anon", "mv-same-anonymous-id")
    cases = [
        ("POST", "/embed/tempo/access", {"data": json.dumps({**_body(), "record": False}), "headers": origin}),
        ("POST", "/embed/tempo/access", {"data": json.dumps(_body(cls="premium")), "headers": origin}),
        ("POST", "/embed/tempo/access", {"data": json.dumps(_body(cls="gratis")), "headers": origin}),
        ("POST", "/embed/tempo/access", {"data": "{nope", "headers": origin}),
        ("OPTIONS", "/embed/tempo/access", {"headers": origin}),
        ("POST", "/embed/tempo/access", {"data": "{}", "headers": {"Origin": "https://evil.example"}}),
        ("POST", "/embed/nope/access", {"data": "{}", "headers": origin}),
    ]
    amp = {"rid": "amp-reader-0001", "url": "https://tempo.co/amp/1", "__amp_source_origin": "https://tempo.co"}
    cases += [
        ("GET", "/amp/tempo/authorization", {"query_string": amp, "headers": origin}),
        ("GET", "/amp/tempo/authorization", {"query_string": {**amp, "class": "premium"}, "headers": origin}),
        ("GET", "/amp/tempo/authorization", {"query_string": {**amp, "rid": "short"}, "headers": origin}),
        ("OPTIONS", "/amp/tempo/pingback", {"query_string": amp, "headers": origin}),
        ("GET", "/amp/tempo/authorization", {"query_string": amp, "headers": {"Origin": "https://evil.example"}}),
    ]
    for method, path, kwargs in cases:
        hot = _browser_exchange(client, method, path, True, **dict(kwargs))
        flask = _browser_exchange(client, method, path, False, **dict(kwargs))
        assert hot == flask, (method, path, kwargs)
    client.set_cookie("meter_r_tempo", token)
    for fast in (True, False):  # a logged-in reader's premium wall, and the anonymous id cookie of a first visit
        client.delete_cookie("meter_anon")
        status, headers, body = _browser_exchange(
            client, "POST", "/embed/tempo/access", fast, data=json.dumps(_body(cls="premium")), headers=origin
        )
        assert status == 200 and json.loads(body)["logged_in"] is True
        assert [v for k, v in headers if k == "Set-Cookie" and v.startswith("meter_anon=mv-")]
