"""The meter under pressure: races, Redis flushes and outages, anonymous carry-over, rolling windows."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from meter import create_app
from meter.access.models import Unlock
from meter.dev.redis_server import RedisProcess
from meter.platform import clock
from meter.platform.db import db
from tests.conftest import Api, make_site, monitor_commands, rebuilt, token_of


def ledger(app, subject_prefix="r:") -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.execute(select(Unlock.subject, Unlock.article_id).order_by(Unlock.id)).all()
    return [(s, a) for s, a in rows if s.startswith(subject_prefix)]


def verified_login(app, api: Api, email: str) -> str:
    """Register on the API's site, mark the address verified in the database, log in: the reader token."""
    from meter.accounts.models import Reader

    assert api.post("/v1/readers", json={"email": email, "password": "rahasia-sekali"}).status_code == 202
    with app.app_context():
        reader = db.session.scalar(select(Reader).where(Reader.email == email))
        reader.verified_at = reader.created_at
        db.session.commit()
    login = api.post("/v1/sessions", json={"email": email, "password": "rahasia-sekali"})
    return login.get_json()["reader_token"]


def test_fifty_concurrent_checks_let_exactly_the_quota_in(app, api, verified_reader):
    _, token = verified_reader()
    barrier = threading.Barrier(50)

    def check(n: int) -> dict:
        client = app.test_client()
        barrier.wait()
        body = {"reader_token": token, "article": {"id": f"tempo:koran:{n}", "class": "metered"}}
        response = client.post("/v1/access", json=body, headers={"Authorization": f"Bearer {api.key}"})
        assert response.status_code == 200
        return response.get_json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(check, range(50)))
    allowed = [a for a in answers if a["allowed"]]
    assert len(allowed) == 2
    assert {a["reason"] for a in allowed} == {"unlocked_now"}
    assert {a["reason"] for a in answers if not a["allowed"]} == {"quota_exhausted"}
    assert len(ledger(app)) == 2  # the ledger agrees with Redis


def test_a_flush_between_unlocks_loses_and_grants_nothing(app, api, verified_reader, redis_client):
    _, token = verified_reader()
    assert api.access("tempo:koran:a", reader_token=token)["reason"] == "unlocked_now"
    redis_client.flushall()
    again = api.access("tempo:koran:a", reader_token=token)
    assert (again["reason"], again["meter"]["used"]) == ("already_unlocked", 1)
    assert api.access("tempo:koran:b", reader_token=token)["reason"] == "unlocked_now"
    redis_client.flushall()
    refused = api.access("tempo:koran:c", reader_token=token)
    assert (refused["allowed"], refused["reason"], refused["meter"]["used"]) == (False, "quota_exhausted", 2)
    for article in ("a", "b"):
        assert api.access(f"tempo:koran:{article}", reader_token=token)["reason"] == "already_unlocked"
    assert [a for _, a in ledger(app)] == ["tempo:koran:a", "tempo:koran:b"]


def test_anonymous_quota_and_carry_over_into_the_account(app, client, mailbox, deliver):
    key = make_site(app, "koran", policy={"quota": {"anonymous": 1, "registered": 1, "verified": 2}})
    api = Api(client, key, "koran")
    visitor = "visitor-abcdef12"
    first = api.access("koran:a", anonymous_id=visitor)
    assert (first["allowed"], first["reason"], first["reader"]["state"]) == (True, "unlocked_now", "anonymous")
    refused = api.access("koran:b", anonymous_id=visitor)
    assert (refused["allowed"], refused["reason"]) == (False, "registration_required")

    response = api.post(
        "/v1/readers", json={"email": "anon@example.com", "password": "rahasia-sekali", "anonymous_id": visitor}
    )
    assert response.status_code == 202
    deliver()
    link = next(
        line
        for line in mailbox.to("anon@example.com")[0]["msg"].get_body(("plain",)).get_content().split()
        if "/activate/" in line
    )
    token = api.post("/v1/activations", json={"token": token_of(link)}).get_json()["reader_token"]

    carried = api.access("koran:a", reader_token=token)
    assert (carried["reason"], carried["meter"]["used"], carried["meter"]["limit"]) == ("already_unlocked", 1, 2)
    assert api.access("koran:b", reader_token=token)["reason"] == "unlocked_now"
    assert api.access("koran:c", reader_token=token)["reason"] == "quota_exhausted"
    # the anonymous id keeps its unlock: it stays used up (carrying over creates no new anonymous reads)
    assert ledger(app, "a:") == [("a:" + visitor, "koran:a")]
    assert api.access("koran:d", anonymous_id=visitor)["reason"] == "registration_required"


def test_logging_in_again_with_the_same_anonymous_id_gives_it_no_fresh_quota(app, client):
    """The attack: with quota.anonymous 3, read 3 as a visitor, log in carrying the anonymous id, read
    3 more as the same visitor, log in again… one reader reached `used` 9 of 3. Carrying reads over
    must not make new anonymous reads: the visitor stays used up, the account counts the 3 it carried."""
    key = make_site(app, "harian", policy={"quota": {"anonymous": 3, "registered": 3, "verified": 3}})
    api = Api(client, key, "harian")
    visitor = "visitor-again-and-again"
    assert api.post("/v1/readers", json={"email": "v@example.com", "password": "rahasia-sekali"}).status_code == 202
    token = None
    for round_ in range(3):
        for n in range(3):
            answer = api.access(f"harian:{round_}-{n}", anonymous_id=visitor)
            if round_ == 0:
                assert answer["reason"] == "unlocked_now"
            else:  # the anonymous id spent its quota in round 0, whatever logins came between
                assert (answer["allowed"], answer["meter"]["used"]) == (False, 3), answer
        login = api.post(
            "/v1/sessions", json={"email": "v@example.com", "password": "rahasia-sekali", "anonymous_id": visitor}
        )
        assert login.status_code == 200
        token = login.get_json()["reader_token"]
    me = api.get("/v1/readers/me", headers={"X-Reader-Token": token}).get_json()["meter"]
    assert (me["used"], me["limit"]) == (3, 3)
    assert me["unlocked"] == ["harian:0-0", "harian:0-1", "harian:0-2"]
    refused = api.access("harian:new", reader_token=token)
    assert (refused["allowed"], refused["meter"]["used"]) == (False, 3)


def test_login_with_anonymous_id_carries_unlocks_over(app, client, verified_reader):
    key = make_site(app, "majalah", policy={"quota": {"anonymous": 1}})
    api = Api(client, key, "majalah")
    # a verified reader of this site
    response = api.post("/v1/readers", json={"email": "m@example.com", "password": "rahasia-sekali"})
    assert response.status_code == 202
    assert api.access("majalah:a", anonymous_id="visitor-xyz12345")["reason"] == "unlocked_now"
    login = api.post(
        "/v1/sessions",
        json={"email": "m@example.com", "password": "rahasia-sekali", "anonymous_id": "visitor-xyz12345"},
    )
    token = login.get_json()["reader_token"]
    answer = api.access("majalah:a", reader_token=token)
    assert (answer["reason"], answer["reader"]["state"], answer["meter"]["used"]) == (
        "already_unlocked",
        "registered",
        1,
    )


def test_rolling_window_frees_the_oldest_unlock(app, client, verified_reader):
    key = make_site(app, "rolling", policy={"period": "rolling:7d"})
    api = Api(client, key, "rolling")
    token = verified_login(app, api, "r@example.com")

    start = clock.now()
    assert api.access("rolling:a", reader_token=token)["reason"] == "unlocked_now"
    clock.travel(timedelta(days=3))
    assert api.access("rolling:b", reader_token=token)["reason"] == "unlocked_now"
    clock.travel(timedelta(days=3))
    refused = api.access("rolling:c", reader_token=token)
    assert refused["reason"] == "quota_exhausted"
    period_end = datetime.fromisoformat(refused["meter"]["period_end"])
    assert abs((period_end - (start + timedelta(days=7))).total_seconds()) < 5
    clock.travel(timedelta(days=1, hours=1))  # a left the window
    assert api.access("rolling:c", reader_token=token)["reason"] == "unlocked_now"
    assert api.access("rolling:b", reader_token=token)["reason"] == "already_unlocked"
    assert api.access("rolling:a", reader_token=token)["reason"] == "quota_exhausted"


# --- Redis away -------------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path):
    server = RedisProcess(str(tmp_path / "own-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def app_on_own_redis(app, own_redis):
    fresh = create_app({**app.config, "REDIS_URL": own_redis.url, "REDIS_RETRY_AFTER": 0.0})
    return fresh


def test_redis_down_answers_degraded_and_recovers(app_on_own_redis, own_redis, mailbox, deliver):
    app = app_on_own_redis
    client = app.test_client()
    api = Api(client, make_site(app, "tempo2", policy={"degraded_mode": "allow"}), "tempo2")
    deny = Api(client, make_site(app, "strict", policy={"degraded_mode": "deny"}), "strict")
    token = verified_login(app, api, "d@example.com")
    assert api.access("tempo2:a", reader_token=token)["reason"] == "unlocked_now"

    own_redis.stop()
    already = api.access("tempo2:a", reader_token=token)
    assert (already["allowed"], already["reason"], already["degraded"]) == (True, "already_unlocked", True)
    new = api.access("tempo2:b", reader_token=token)
    assert (new["allowed"], new["reason"], new["degraded"]) == (True, "degraded_allow", True)
    free = api.access("tempo2:news", cls="free")
    assert free["allowed"] and free["reason"] == "free_content"
    premium = api.access("tempo2:laput", cls="premium", reader_token=token)
    assert (premium["allowed"], premium["reason"], premium["degraded"]) == (False, "subscription_required", True)
    denied = deny.access("strict:a", anonymous_id="visitor-00000001")
    assert (denied["allowed"], denied["reason"], denied["degraded"]) == (False, "degraded_deny", True)
    assert client.get("/readyz").status_code == 503

    own_redis.start()
    back = api.access("tempo2:b", reader_token=token)
    assert (back["allowed"], back["reason"], back["degraded"]) == (True, "unlocked_now", False)
    assert api.access("tempo2:c", reader_token=token)["reason"] == "quota_exhausted"
    assert client.get("/readyz").status_code == 200


def test_subscriber_is_let_in_from_the_database_when_redis_is_down(app_on_own_redis, own_redis):
    app = app_on_own_redis
    client = app.test_client()
    api = Api(client, make_site(app, "subs"), "subs")
    api.post("/v1/readers", json={"email": "s@example.com", "password": "rahasia-sekali"})
    login = api.post("/v1/sessions", json={"email": "s@example.com", "password": "rahasia-sekali"}).get_json()
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    assert api.put(f"/v1/readers/{login['reader']['reader_id']}/subscription", json={"until": until}).status_code == 200
    own_redis.stop()
    answer = api.access("subs:laput", cls="premium", reader_token=login["reader_token"])
    assert (answer["allowed"], answer["reason"], answer["degraded"]) == (True, "subscriber", True)


# --- the hot path -----------------------------------------------------------------------------


@pytest.mark.config(SITE_CACHE_TTL=60.0)
def test_steady_state_check_is_one_redis_call_and_no_sql(app, redis_client):
    api = Api(app.test_client(), make_site(app, "hot"), "hot")
    api.post("/v1/readers", json={"email": "h@example.com", "password": "rahasia-sekali"})
    token = api.post("/v1/sessions", json={"email": "h@example.com", "password": "rahasia-sekali"}).get_json()[
        "reader_token"
    ]
    api.access("hot:warm", cls="free", reader_token=token)  # warms the site cache and the reader state

    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    def checks() -> None:
        for n in range(5):
            api.access(f"hot:koran:{n}", reader_token=token, record=False)
            api.access("hot:news", cls="free", reader_token=token)

    event.listen(engine, "before_cursor_execute", record)
    try:
        commands = monitor_commands(redis_client, checks)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements == []
    assert commands == ["EVALSHA"] * 10


@pytest.mark.config(SITE_CACHE_TTL=60.0)
def test_steady_state_in_several_meters_is_one_redis_call_and_no_sql(app, redis_client):
    """The meter is chosen from the cached policy before the call: each check, in any meter, is one
    EVALSHA; every key it touches is in the reader's one slot."""
    from redis.crc import key_slot

    meters = {
        name: {"quota": {"registered": 5}, "period": period}
        for name, period in (("koran", "month"), ("majalah", "week"))
    }
    policy = {"quota": {"registered": 5}, "meters": meters, "sections": {"koran": "koran", "majalah": "majalah"}}
    api = Api(app.test_client(), make_site(app, "hot", policy=policy), "hot")
    api.post("/v1/readers", json={"email": "h@example.com", "password": "rahasia-sekali"})
    token = api.post("/v1/sessions", json={"email": "h@example.com", "password": "rahasia-sekali"}).get_json()[
        "reader_token"
    ]

    def ask(section: str | None, n: int, record: bool = False) -> dict:
        article = {"id": f"hot:{section}:{n}", "class": "metered", **({"section": section} if section else {})}
        answer = api.post("/v1/access", json={"reader_token": token, "article": article, "record": record})
        return answer.get_json()

    for section in ("koran", "majalah", None):  # warms the caches: each meter's unlocks loaded once
        assert ask(section, 0, record=True)["reason"] == "unlocked_now"
    commands, statements = _counted(
        app, redis_client, lambda: [ask(s, n) for n in range(1, 3) for s in ("koran", "majalah", None)]
    )
    assert statements == []
    assert commands == ["EVALSHA"] * 6
    found = redis_client.keys("m:{*")
    assert {k.split("}:", 1)[1].split(":")[0] for k in found} == {"st", "u", "u.koran", "u.majalah", "stats", "journal"}
    assert len({key_slot(k.encode()) for k in found}) == 1


def test_ledger_rows_count_the_unlocks(app, api, verified_reader):
    _, token = verified_reader()
    api.access("tempo:koran:a", reader_token=token)
    api.access("tempo:koran:a", reader_token=token)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Unlock)) == 1


def _commandstats(redis_client) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): v["calls"] for name, v in redis_client.info("commandstats").items()}


@pytest.mark.config(SITE_CACHE_TTL=60.0)
def test_steady_state_recording_checks_are_one_redis_call_and_sql_only_for_a_new_unlock(app, redis_client):
    """record=true: re-reads and refusals cost one EVALSHA and no SQL; a new unlock adds its one ledger INSERT."""
    api = Api(app.test_client(), make_site(app, "hot", policy={"quota": {"verified": 3, "registered": 3}}), "hot")
    api.post("/v1/readers", json={"email": "h@example.com", "password": "rahasia-sekali"})
    token = api.post("/v1/sessions", json={"email": "h@example.com", "password": "rahasia-sekali"}).get_json()[
        "reader_token"
    ]
    assert api.access("hot:koran:old", reader_token=token)["reason"] == "unlocked_now"  # warms every cache

    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    answers: list[str] = []

    def checks() -> None:
        for article in ("old", "new1", "old", "new1", "new2", "new3", "old", "new2"):
            answers.append(api.access(f"hot:koran:{article}", reader_token=token)["reason"])

    before = _commandstats(redis_client)
    event.listen(engine, "before_cursor_execute", record)
    try:
        commands = monitor_commands(redis_client, checks)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    after = _commandstats(redis_client)
    assert answers == [
        "already_unlocked",
        "unlocked_now",
        "already_unlocked",
        "already_unlocked",
        "unlocked_now",
        "quota_exhausted",
        "already_unlocked",
        "already_unlocked",
    ]
    assert commands == ["EVALSHA"] * 8
    assert after["evalsha"] - before["evalsha"] == 8
    assert after.get("eval", 0) == before.get("eval", 0)  # never the whole script again (no NOSCRIPT fallback)
    assert statements == ["INSERT", "INSERT"]  # the ledger rows of the two new unlocks, nothing else


def test_one_check_touches_keys_of_one_slot(app, api, verified_reader, redis_client):
    """Every key an access check writes carries its bucket's hash tag: one Redis Cluster slot."""
    from redis.crc import key_slot

    _, token = verified_reader()
    api.access("tempo:koran:a", reader_token=token)
    found = redis_client.keys("m:{*")
    # the state bucket, the unlock bucket, the day's stats bucket and the ledger journal of this reader's bucket
    assert len(found) == 4
    assert len({key_slot(k.encode()) for k in found}) == 1


def test_changing_meter_buckets_keeps_the_meter_exact(app, api, verified_reader, redis_client):
    """METER_BUCKETS is in the key names: after a change every meter is reloaded from the ledger."""
    _, token = verified_reader()
    assert api.access("tempo:koran:a", reader_token=token)["reason"] == "unlocked_now"
    api = Api(rebuilt(app, METER_BUCKETS=7).test_client(), api.key, "tempo")  # restarted with 7 buckets
    assert api.access("tempo:koran:a", reader_token=token)["reason"] == "already_unlocked"
    assert api.access("tempo:koran:b", reader_token=token)["reason"] == "unlocked_now"
    assert api.access("tempo:koran:c", reader_token=token)["reason"] == "quota_exhausted"
    assert {k.split("}")[0].rsplit("/", 1)[1] for k in redis_client.keys("m:{*")} == {"4096", "7"}


def _counted(app, redis_client, action) -> tuple[list[str], list[str]]:
    """(Redis commands, SQL statements) that `action` caused."""
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        commands = monitor_commands(redis_client, action)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return commands, statements


@pytest.mark.config(SITE_CACHE_TTL=60.0)
def test_steady_state_of_the_embed_and_amp_is_one_redis_call_and_no_sql(app, redis_client):
    """The browser's and AMP's checks cost what the API's does: the site by slug is cached, the reader
    found from cookies, and an AMP reader id's link to a login is read by the same script."""
    api = Api(app.test_client(), make_site(app, "hot", origins=("https://hot.example",)), "hot")
    api.post("/v1/readers", json={"email": "h@example.com", "password": "rahasia-sekali"})
    token = api.post("/v1/sessions", json={"email": "h@example.com", "password": "rahasia-sekali"}).get_json()[
        "reader_token"
    ]
    client = app.test_client()
    origin = {"Origin": "https://hot.example"}
    body = {"article": {"id": "hot:koran:1", "class": "metered"}, "record": False}
    amp_anon = {
        "rid": "amp-anonymous-01",
        "url": "https://hot.example/amp/1",
        "__amp_source_origin": "https://hot.example",
    }
    amp_linked = {**amp_anon, "rid": "amp-linked-0001"}

    amp_return = "https://cdn.ampproject.org/v0/amp-login-done-0.1.html"  # AMP's login flow: links the rid
    login = client.get("/hot/login", query_string={"rid": "amp-linked-0001", "return": amp_return})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.get_data(as_text=True)).group(1)
    form = {"csrf_token": csrf, "email": "h@example.com", "password": "rahasia-sekali", "rid": "amp-linked-0001"}
    assert client.post("/hot/login", data={**form, "amp_return": amp_return}).status_code == 303
    reader = app.test_client()
    reader.set_cookie("meter_r_hot", token)
    anonymous = app.test_client()

    def checks() -> None:
        assert reader.post("/embed/hot/access", data=json.dumps(body), headers=origin).get_json()["logged_in"]
        assert not anonymous.post("/embed/hot/access", data=json.dumps(body), headers=origin).get_json()["logged_in"]
        assert not anonymous.get("/amp/hot/authorization", query_string=amp_anon, headers=origin).get_json()["data"][
            "isLoggedIn"
        ]
        linked = app.test_client()  # no cookie: the rid alone, linked by the login above
        assert linked.get("/amp/hot/authorization", query_string=amp_linked, headers=origin).get_json()["data"][
            "isLoggedIn"
        ]

    checks()  # warms the site cache, the reader state, the anonymous cookie, the rid's link
    commands, statements = _counted(app, redis_client, lambda: [checks() for _ in range(3)])
    assert statements == []
    assert commands == ["EVALSHA"] * 12


@pytest.mark.config(SITE_CACHE_TTL=60.0)
def test_steady_state_of_a_crawler_a_preview_and_a_gifted_read(app, redis_client):
    """A verified crawler (its published ranges) and a link preview cost no Redis call and no SQL; a gifted
    read costs its gift's one script call and no SQL; an ordinary reader's client costs nothing extra."""
    from datetime import UTC, datetime, timedelta

    from tests.functional.test_gifts import set_policy

    api = Api(app.test_client(), make_site(app, "hot"), "hot")
    set_policy(app, "hot", crawlers="verified", gifts__per_period="10")
    giver = verified_login(app, api, "giver@example.com")
    giver_id = api.get("/v1/readers/me", headers={"X-Reader-Token": giver}).get_json()["reader_id"]
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    assert api.put(f"/v1/readers/{giver_id}/subscription", json={"until": until}).status_code == 200
    article = {"id": "hot:koran:1", "class": "metered", "url": "https://tempo.co/koran/1"}
    gift = api.post("/v1/gifts", json={"reader_token": giver, "article": article}).get_json()["gift_token"]
    googlebot = {"ip": "66.249.66.1", "user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}
    whatsapp = {"ip": "203.0.113.9", "user_agent": "WhatsApp/2.23.20.0 A"}
    browser = {"ip": "203.0.113.10", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"}

    def ask(client: dict | None = None, gift_token: str | None = None, anonymous_id: str = "visitor-0001") -> str:
        body = {"article": {"id": "hot:koran:1", "class": "metered"}, "anonymous_id": anonymous_id}
        if client:
            body["client"] = client
        if gift_token:
            body["gift_token"] = gift_token
        response = api.post("/v1/access", json=body)
        assert response.status_code == 200
        return response.get_json()["reason"]

    assert ask(googlebot) == "crawler" and ask(whatsapp) == "preview"  # warms the ranges and the site cache
    assert ask(gift_token=gift) == "gift"  # the cold start: the gift read from SQL once, this device written
    assert ask(browser, anonymous_id="visitor-0002") == "registration_required"  # this visitor's meter loaded

    commands, statements = _counted(app, redis_client, lambda: [ask(googlebot) for _ in range(3)])
    assert (commands, statements) == ([], [])
    commands, statements = _counted(app, redis_client, lambda: [ask(whatsapp) for _ in range(3)])
    assert (commands, statements) == ([], [])
    commands, statements = _counted(app, redis_client, lambda: [ask(gift_token=gift) for _ in range(3)])
    assert (commands, statements) == (["EVALSHA"] * 3, [])
    commands, statements = _counted(
        app, redis_client, lambda: [ask(browser, anonymous_id="visitor-0002") for _ in range(3)]
    )
    assert (commands, statements) == (["EVALSHA"] * 3, [])
    bad_gift = gift[:-2] + ("AA" if not gift.endswith("AA") else "BB")
    commands, statements = _counted(
        app, redis_client, lambda: [ask(browser, bad_gift, "visitor-0002") for _ in range(3)]
    )
    assert (commands, statements) == (["EVALSHA"] * 3, [])  # a forged token costs no call of its own


@pytest.mark.config(SITE_CACHE_TTL=60.0)
def test_steady_state_with_grants_is_still_one_redis_call_and_no_sql(app, redis_client):
    """A site that signs grants: its key comes from the cached site and is unsealed once per process, so
    a grant costs a signature and nothing else: no SQL, no Redis call of its own."""
    key = make_site(app, "granted", origins=("https://granted.example",), policy={"quota": {"anonymous": 100}})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["sites", "grant-keys", "create", "granted"]).exit_code == 0
    assert runner.invoke(args=["sites", "settings", "granted", "--content-protection", "on"]).exit_code == 0
    api = Api(app.test_client(), key, "granted")
    browser = app.test_client()
    origin = {"Origin": "https://granted.example"}

    def checks() -> None:
        body = {"article": {"id": "granted:1", "class": "metered"}, "anonymous_id": "anon-granted-1", "grant": True}
        assert api.post("/v1/access", json=body).get_json()["grant"]
        body = {"article": {"id": "granted:1", "class": "metered"}}
        assert browser.post("/embed/granted/access", data=json.dumps(body), headers=origin).get_json()["grant"]

    checks()  # warms the site cache (and unseals its key), the anonymous cookie, the unlocks
    commands, statements = _counted(app, redis_client, lambda: [checks() for _ in range(3)])
    assert statements == []
    assert commands == ["EVALSHA"] * 6
