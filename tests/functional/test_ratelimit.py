"""Rate limits: per IP and per normalised email, 429 problem+json with Retry-After, knobs in config.

The limiter stores its counters in the suite's real Redis (flushed before each test).
"""

from __future__ import annotations

import json

import pytest

from meter import create_app
from meter.dev.redis_server import RedisProcess
from tests.conftest import Api, links_in, make_site, rebuilt, redis_for

PASSWORD = "rahasia-sekali"


def assert_429(response) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 429 and body["type"].endswith("/problems/rate-limited")
    assert int(response.headers["Retry-After"]) in range(1, 86402)


def registration(api: Api, email: str, **kw):
    return api.post("/v1/readers", json={"email": email, "password": PASSWORD}, **kw)


def test_register_is_limited_per_ip_at_twenty_a_minute(api, redis_client):
    for i in range(20):
        assert registration(api, f"r{i}@example.com").status_code == 202
    assert redis_client.keys("LIMITS*"), "the counters live in Redis, shared by every process"
    assert_429(registration(api, "r20@example.com"))
    # another client address is not limited (the test client sets REMOTE_ADDR per request)
    other = registration(api, "r21@example.com", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 202


@pytest.mark.config(RATELIMIT_REGISTER_IP="2/minute")
def test_forwarded_for_is_ignored_unless_a_proxy_is_trusted(app, api):
    for i in range(2):
        assert registration(api, f"f{i}@example.com", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code == 202
    # a forged X-Forwarded-For does not buy a new budget when no proxy is trusted
    assert_429(registration(api, "f9@example.com", headers={"X-Forwarded-For": "203.0.113.99"}))


def test_behind_a_trusted_proxy_the_forwarded_client_is_the_key(app):
    fresh = create_app({**app.config, "TRUSTED_PROXIES": 1, "RATELIMIT_REGISTER_IP": "2/minute"})
    api = Api(fresh.test_client(), make_site(fresh), "tempo")
    for i in range(2):
        h = {"X-Forwarded-For": "203.0.113.7"}
        assert registration(api, f"p{i}@example.com", headers=h).status_code == 202
    assert_429(registration(api, "p2@example.com", headers={"X-Forwarded-For": "203.0.113.7"}))
    assert registration(api, "p3@example.com", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 202


@pytest.mark.config(RATELIMIT_REGISTER_IP="1/minute")
def test_requests_without_a_valid_key_spend_no_budget(app, api):
    for _ in range(5):
        r = api.client.post("/v1/readers", json={"email": "x@example.com", "password": PASSWORD})
        assert r.status_code == 401
    assert registration(api, "x@example.com").status_code == 202


def login(api: Api, email: str, password: str, **kw):
    return api.post("/v1/sessions", json={"email": email, "password": password}, **kw)


def reset_password(api: Api, mailbox, deliver, email: str, new_password: str, **kw) -> None:
    assert api.post("/v1/password-resets", json={"email": email}).status_code == 202
    deliver()
    # the text part as a mail client decodes it (its transfer encoding may fold a long link)
    link = [url for m in mailbox.to(email) for url in links_in(m["msg"]) if "/reset-password/" in url][-1]
    token = link.split("/reset-password/", 1)[1].split("?")[0]
    r = api.post("/v1/password-resets/confirm", json={"token": token, "password": new_password}, **kw)
    assert r.status_code == 200, r.get_data(as_text=True)


def test_failed_logins_lock_the_account_from_that_address_until_a_password_reset(
    app, api, verified_reader, mailbox, deliver
):
    verified_reader("mike@example.com", PASSWORD)
    for _ in range(5):
        assert login(api, "mike@example.com", "wrong-password").status_code == 401
    # the sixth attempt from this client address is refused even with the right password, and even
    # spelled differently
    assert_429(login(api, "MIKE@example.com", PASSWORD))
    # another account is not locked
    verified_reader("other@example.com", PASSWORD)
    assert login(api, "other@example.com", PASSWORD).status_code == 200
    # a successful password reset clears the lock
    reset_password(api, mailbox, deliver, "mike@example.com", "baru-dan-panjang")
    assert login(api, "mike@example.com", "baru-dan-panjang").status_code == 200


def test_an_attacker_cannot_lock_the_owner_out_with_five_guesses(api, verified_reader):
    """The attack: five wrong guesses from the attacker's address locked the account everywhere for
    5 minutes. The failed-login limit is kept per account and client address: the attacker's address
    is locked, the owner's own browser still gets in."""
    verified_reader("mike@example.com", PASSWORD)
    attacker = {"REMOTE_ADDR": "203.0.113.66"}
    for _ in range(5):
        assert login(api, "mike@example.com", "guess", environ_base=attacker).status_code == 401
    assert_429(login(api, "mike@example.com", "guess-6", environ_base=attacker))
    assert_429(login(api, "mike@example.com", PASSWORD, environ_base=attacker))
    assert login(api, "mike@example.com", PASSWORD).status_code == 200


def test_json_labelled_as_a_form_is_read_as_json_and_counted_against_the_account(api, verified_reader):
    """`curl -d` labels a JSON body application/x-www-form-urlencoded: the API reads it as JSON anyway,
    and so does the account's limit (a form label must not hide the address from it)."""
    verified_reader("mike@example.com", PASSWORD)
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    def as_form(password: str):
        body = json.dumps({"email": "mike@example.com", "password": password})
        return api.client.post("/v1/sessions", data=body, headers={"Authorization": f"Bearer {api.key}", **form})

    assert as_form(PASSWORD).status_code == 200
    for _ in range(5):
        assert as_form("guess").status_code == 401
    assert_429(as_form(PASSWORD))


def test_guesses_from_many_addresses_meet_a_ceiling_per_account(app, api, verified_reader, mailbox, deliver):
    """Guessing from many addresses: RATELIMIT_LOGIN_FAIL_ACCOUNT_CEILING (20 per 5 minutes) counts
    the account's failures from all addresses together; a password reset lifts it."""
    verified_reader("mike@example.com", PASSWORD)
    for n in range(4):
        for _ in range(5):
            guess = login(api, "mike@example.com", "guess", environ_base={"REMOTE_ADDR": f"198.51.100.{n}"})
            assert guess.status_code == 401
    assert_429(login(api, "mike@example.com", PASSWORD, environ_base={"REMOTE_ADDR": "198.51.100.99"}))
    assert_429(login(api, "mike@example.com", PASSWORD))
    reset_password(api, mailbox, deliver, "mike@example.com", "baru-dan-panjang")
    assert login(api, "mike@example.com", "baru-dan-panjang").status_code == 200


def test_successful_logins_do_not_count(api, verified_reader):
    verified_reader("mike@example.com", PASSWORD)
    for _ in range(12):
        assert login(api, "mike@example.com", PASSWORD).status_code == 200


def test_failed_logins_are_limited_per_ip(api):
    for i in range(10):
        assert login(api, f"nobody{i}@example.com", "wrong-password").status_code == 401
    assert_429(login(api, "nobody99@example.com", "wrong-password"))
    assert (
        login(api, "nobody99@example.com", "wrong-password", environ_base={"REMOTE_ADDR": "10.2.2.2"}).status_code
        == 401
    )


def test_resend_is_limited_per_normalised_email(api):
    first = api.post("/v1/readers/resend-activation", json={"email": "mike@example.com"})
    assert first.status_code == 202
    # the same mailbox, spelled otherwise, from another IP: one bucket
    again = api.post(
        "/v1/readers/resend-activation", json={"email": "Mike@EXAMPLE.com"}, environ_base={"REMOTE_ADDR": "10.3.3.3"}
    )
    assert_429(again)
    assert api.post("/v1/readers/resend-activation", json={"email": "anna@example.com"}).status_code == 202


@pytest.mark.config(RATELIMIT_RESEND_EMAIL="100/minute;3/day")
def test_resend_daily_cap_is_a_knob(app, api):
    for _ in range(3):
        assert api.post("/v1/readers/resend-activation", json={"email": "mike@example.com"}).status_code == 202
    assert_429(api.post("/v1/readers/resend-activation", json={"email": "mike@example.com"}))


def test_reset_request_is_limited_per_email_and_per_ip(api):
    for _ in range(5):
        assert api.post("/v1/password-resets", json={"email": "mike@example.com"}).status_code == 202
    assert_429(api.post("/v1/password-resets", json={"email": "MIKE@example.com"}))
    for i in range(15):  # 5 + 15 = 20 accepted from this IP (a refused request may not count)
        assert api.post("/v1/password-resets", json={"email": f"u{i}@example.com"}).status_code == 202
    assert_429(api.post("/v1/password-resets", json={"email": "u99@example.com"}))


@pytest.mark.config(RATELIMIT_RESET_EMAIL="100/minute;3/day")
def test_reset_mail_to_one_address_is_capped_per_day(app, api):
    from config import Config
    from meter.platform.rate_counter import parse

    assert any(item.GRANULARITY.name == "day" for item in parse(Config.RATELIMIT_RESET_EMAIL))  # the default too
    for _ in range(3):
        assert api.post("/v1/password-resets", json={"email": "mike@example.com"}).status_code == 202
    refused = api.post("/v1/password-resets", json={"email": "mike@example.com"})
    assert_429(refused)
    assert int(refused.headers["Retry-After"]) > 3600


def test_the_access_check_is_not_limited_by_default(api):
    for i in range(120):
        api.access(f"tempo:free:{i}", cls="free")


@pytest.mark.config(RATELIMIT_ACCESS_IP="3/minute")
def test_the_access_check_can_be_limited(app, api):
    for i in range(3):
        api.access(f"tempo:free:{i}", cls="free")
    assert_429(api.post("/v1/access", json={"article": {"id": "tempo:free:9", "class": "free"}}))


@pytest.fixture
def own_redis(tmp_path):
    server = RedisProcess(str(tmp_path / "own-redis")).start()
    yield server
    server.stop()


def test_a_redis_outage_never_turns_a_limited_call_into_a_500(app, own_redis):
    fresh = create_app({**app.config, "REDIS_URL": own_redis.url, "REDIS_RETRY_AFTER": 0.0})
    api = Api(fresh.test_client(), make_site(fresh), "tempo")
    assert registration(api, "before@example.com").status_code == 202
    own_redis.stop()
    for i in range(3):
        assert registration(api, f"during{i}@example.com").status_code == 202
        assert login(api, f"during{i}@example.com", "wrong-password").status_code == 401
        assert api.post("/v1/password-resets", json={"email": f"during{i}@example.com"}).status_code == 202
    own_redis.start()
    assert registration(api, "after@example.com").status_code == 202


def test_during_a_storage_outage_the_limits_hold_in_memory_and_redis_is_tried_again(app, own_redis, caplog):
    fresh = create_app(
        {**app.config, "REDIS_URL": own_redis.url, "REDIS_RETRY_AFTER": 0.0, "RATELIMIT_REGISTER_IP": "2/minute"}
    )
    api = Api(fresh.test_client(), make_site(fresh), "tempo")
    own_redis.stop()
    assert [registration(api, f"d{i}@example.com").status_code for i in range(2)] == [202, 202]
    assert_429(registration(api, "d2@example.com"))  # in-memory counters, not no limit at all
    assert "rate-limit storage failed" in caplog.text
    own_redis.start()
    assert registration(api, "other-ip@example.com", environ_base={"REMOTE_ADDR": "10.4.4.4"}).status_code == 202
    assert redis_for(own_redis.url).keys("LIMITS*"), "back on Redis once it answers again"


def test_each_app_has_its_own_limiter_and_storage(app, own_redis, redis_client):
    """An app whose limit storage fails counts in memory; another app in the same process keeps its Redis."""
    failing = create_app({**app.config, "REDIS_URL": own_redis.url, "REDIS_RETRY_AFTER": 60.0})
    failing_api = Api(failing.test_client(), make_site(failing), "tempo")
    own_redis.stop()
    assert registration(failing_api, "a@example.com").status_code == 202
    assert failing.extensions["meter.ratelimit"] is not app.extensions["meter.ratelimit"]
    api = Api(app.test_client(), make_site(app, "koran"), "koran")
    assert registration(api, "b@example.com").status_code == 202
    assert redis_client.keys("LIMITS*register-ip*"), "this app still counts in its own Redis"


def test_an_error_computing_a_key_fails_closed(app, redis_client, caplog):
    """Whatever a key function raises refuses the request (its own 4xx when it is one, else 429); it
    never lets the request through unlimited, and never switches the app to fresh counters."""
    from werkzeug.exceptions import BadRequest

    from meter.accounts import rate_limits as ratelimit
    from meter.platform.csrf import csrf

    fresh = create_app(dict(app.config))
    failure: list[BaseException | None] = [None]

    def key() -> str:
        if failure[0] is not None:
            raise failure[0]
        return "k"

    @fresh.post("/limited")
    @csrf.exempt
    @ratelimit.guard(ratelimit.Limit("RATELIMIT_REGISTER_IP", "test-scope", key))
    def limited():
        return "ok"

    client = fresh.test_client()
    failure[0] = RuntimeError("a bug in a key function")
    refused = client.post("/limited", headers={"Accept": "application/json"})
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert "could not compute the test-scope limit's key" in caplog.text
    failure[0] = BadRequest("unreadable")
    assert client.post("/limited").status_code == 400
    failure[0] = None
    assert client.post("/limited").status_code == 200
    assert redis_client.keys("LIMITS*test-scope*"), "the counters stayed in Redis"


def test_the_storage_is_redis_url_in_the_limits_librarys_schemes(app):
    from meter.platform.rate_counter import storage_uri

    def uri(**config) -> str:
        return storage_uri({**app.config, **config})

    assert uri(REDIS_URL="unix:///run/redis.sock") == "redis+unix:///run/redis.sock"
    assert uri(REDIS_URL="redis+cluster://10.0.0.1:7000") == "redis+cluster://10.0.0.1:7000"
    assert uri(REDIS_URL="rediss://cache:6380/2") == "rediss://cache:6380/2"
    assert uri(REDIS_URL="redis://a:6379/0", RATELIMIT_REDIS_URL="redis://b:6379/1") == "redis://b:6379/1"


def test_a_malformed_limit_stops_the_start(app):
    from meter.platform.settings import ConfigError

    with pytest.raises(ConfigError, match="RATELIMIT_RESET_IP is not a limit: 'twenty a minute'"):
        create_app({**app.config, "RATELIMIT_RESET_IP": "twenty a minute"})


def test_access_ip_wait_counts_the_access_limit_without_a_request(app, api):
    from meter.accounts.rate_limits import access_ip_wait

    with app.app_context():
        assert access_ip_wait("192.0.2.1") == 0  # RATELIMIT_ACCESS_IP empty: not limited
    limited = rebuilt(app, RATELIMIT_ACCESS_IP="2/minute")
    api = Api(limited.test_client(), api.key, "tempo")
    with limited.app_context():
        assert [access_ip_wait("192.0.2.1") for _ in range(2)] == [0, 0]
        assert 0 < access_ip_wait("192.0.2.1") <= 60
        assert access_ip_wait("192.0.2.2") == 0
        assert [access_ip_wait("127.0.0.1") for _ in range(2)] == [0, 0]
    # the same counters as the view's limit: the test client's address has spent its two
    assert_429(api.post("/v1/access", json={"article": {"id": "tempo:free:9", "class": "free"}}))


def test_the_email_key_reads_json_and_form_bodies_alike(app):
    """The reader pages' forms (when they get limits) share the API's per-address buckets."""
    from flask import g

    from meter.accounts import rate_limits as ratelimit
    from meter.sites.rules.sites import SiteInfo

    site = SiteInfo(7, "tempo", "Tempo", (), None, "id")  # type: ignore[arg-type]
    with app.test_request_context("/x", method="POST", json={"email": "Mike@Example.COM"}):
        g.site = site
        from_json = ratelimit.email_key()
    with app.test_request_context("/x", method="POST", data={"email": "mike@example.com"}):
        g.site = site
        from_form = ratelimit.email_key()
    with app.test_request_context("/x", method="POST", data=b"[" * 10_000, content_type="application/json"):
        g.site = site
        assert ratelimit.email_key() == "" and ratelimit.no_email()
    assert from_json == from_form == "site7:mike@example.com"


# --- the reader pages share the limits (and their counters) with the API ----------------------


def _page_csrf(client, path: str) -> str:
    import re

    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def test_login_page_failures_are_limited_per_account_and_showing_the_form_is_free(app, api, client):
    assert registration(api, "halaman@example.com").status_code == 202
    token = _page_csrf(client, "/tempo/login")
    for _ in range(5):
        wrong = client.post(
            "/tempo/login", data={"csrf_token": token, "email": "halaman@example.com", "password": "salah-salah"}
        )
        assert wrong.status_code == 422
    for _ in range(3):
        assert client.get("/tempo/login").status_code == 200  # GETs spend nothing
    blocked = client.post(
        "/tempo/login", data={"csrf_token": token, "email": "halaman@example.com", "password": PASSWORD}
    )
    assert blocked.status_code == 429 and blocked.headers["Retry-After"]
    # the same account through the API is locked too: one counter
    assert api.post("/v1/sessions", json={"email": "halaman@example.com", "password": PASSWORD}).status_code == 429


@pytest.mark.config(RATELIMIT_REGISTER_IP="2/minute")
def test_register_page_posts_count_against_the_ip_budget(app, api, client):
    token = _page_csrf(client, "/tempo/register")
    for i in range(2):
        form = {"csrf_token": token, "email": f"page{i}@example.com", "password": PASSWORD}
        assert client.post("/tempo/register", data=form).status_code == 303
    assert (
        client.post(
            "/tempo/register", data={"csrf_token": token, "email": "page9@example.com", "password": PASSWORD}
        ).status_code
        == 429
    )
    assert_429(registration(api, "api9@example.com"))  # the API shares the counter of this address


# --- a limited reader page answers with a page in the reader's language, not problem+json -----


def assert_429_page(response, minutes: int) -> str:
    """A 429 HTML page with Retry-After and the pages' security headers, telling a wait of `minutes`
    that covers Retry-After (less Flask-Limiter's one-second pad); returns its text."""
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    retry = int(response.headers["Retry-After"])
    assert retry in range(1, 86402)
    assert "script-src 'nonce-" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert (minutes - 1) * 60 < retry - 1 <= minutes * 60
    return response.get_data(as_text=True)


def _resend(client, email: str, query: str = ""):
    token = _page_csrf(client, "/tempo/login")
    return client.post(f"/tempo/resend-activation{query}", data={"csrf_token": token, "email": email})


def test_a_limited_resend_answers_a_page_in_indonesian_then_english(app, api, client):
    assert _resend(client, "pembaca@example.com").status_code == 303
    html = assert_429_page(_resend(client, "Pembaca@example.com"), minutes=3)  # RATELIMIT_RESEND_EMAIL: 1 per 3 minutes
    assert '<html lang="id">' in html and "Terlalu banyak percobaan · Tempo" in html
    assert "Silakan coba lagi dalam 3 menit." in html
    assert "Periksa kotak masuk atau folder spam Anda." in html
    assert 'href="/tempo/login"' in html and "{" not in html.split("<main", 1)[1]
    assert 'href="/tempo/login?lang=en"' in html  # the language switch: no GET of a POST-only form (405)
    # the same address through the API: one counter, and the API keeps its problem+json
    assert_429(api.post("/v1/readers/resend-activation", json={"email": "pembaca@example.com"}))

    assert _resend(client, "reader@example.com", "?lang=en").status_code == 303
    html = assert_429_page(_resend(client, "reader@example.com", "?lang=en"), minutes=3)
    assert '<html lang="en">' in html and "Too many attempts · Tempo" in html
    assert "Please try again in 3 minutes." in html
    assert "We have already sent you the email. Check your inbox or spam folder." in html


@pytest.mark.config(RATELIMIT_LOGIN_FAIL_IP="1/minute")
def test_a_limited_login_page_keeps_next_and_says_one_minute_in_the_singular(app, api, client):
    token = _page_csrf(client, "/tempo/login?lang=en")
    form = {"csrf_token": token, "email": "nobody@example.com", "password": "salah-salah"}
    next_ = "https://tempo.co/koran/a"
    assert client.post("/tempo/login", data={**form, "next": next_}).status_code == 422
    html = assert_429_page(client.post("/tempo/login", data={**form, "next": next_}), minutes=1)
    assert "Please try again in 1 minute." in html and "1 minutes" not in html
    assert "check your inbox" not in html.lower()  # only the resend page speaks of mail already sent
    assert 'href="/tempo/login?next=https' in html  # back to the form, `next` kept
    # a client that asks for JSON still gets the problem document, like the pages' other errors
    assert_429(client.post("/tempo/login", data=form, headers={"Accept": "application/json"}))


# --- an oversized body must not reset the counters --------------------------------------------


def oversized(api: Api, path: str):
    """A body over MAX_CONTENT_LENGTH (64 KB): refused 413."""
    body = b'{"email": "' + b"x" * 70_000 + b'", "password": "p"}'
    response = api.client.post(path, data=body, content_type="application/json", headers=api._h())
    assert response.status_code == 413, response.get_data(as_text=True)
    return response


def test_an_oversized_body_does_not_reset_the_failed_login_limit(api, verified_reader, redis_client):
    """The attack: spend the account's failed logins, send a 70 KB body, guess again. The 413 was
    raised inside the limiter's key function, which took it for a storage failure and fell back to
    fresh in-memory counters: 5 more guesses after each oversized body (15 in 90 s with two workers).
    Now the body is refused before any key is read, and the counters in Redis keep counting."""
    verified_reader("mike@example.com", PASSWORD)
    answers = [login(api, "mike@example.com", "wrong-password").status_code for _ in range(6)]
    for _ in range(3):
        oversized(api, "/v1/sessions")
        answers += [login(api, "mike@example.com", "wrong-password").status_code for _ in range(3)]
    assert answers == [401] * 5 + [429] * 10
    assert redis_client.keys("LIMITS*")


@pytest.mark.parametrize(
    ("path", "budget"), [("/v1/password-resets", 5), ("/v1/readers/resend-activation", 1)], ids=["reset", "resend"]
)
def test_an_oversized_body_does_not_reset_the_mail_limits(api, path, budget):
    answers = [api.post(path, json={"email": "mike@example.com"}).status_code for _ in range(budget + 1)]
    for _ in range(3):
        oversized(api, path)
        answers.append(api.post(path, json={"email": "mike@example.com"}).status_code)
    assert answers == [202] * budget + [429] * 4
