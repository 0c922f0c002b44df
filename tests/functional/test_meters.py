"""Meters: a site's policy holds named meters, each with its own quotas and period, and maps an article's
section to one. Over HTTP, against the real app, Redis and database: two meters count separately and
the wall is the refusing meter's; an unknown or absent section counts in the default meter; a signed
section cannot be changed by the reader; each meter is rebuilt from its own ledger rows, answers
from them while Redis is away, and carries over at login; `/v1/readers/me` shows every meter; the
command line sets meters and sections and names the key it refuses.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from babel.dates import format_date
from sqlalchemy import select

from meter import create_app
from meter.access.models import Unlock
from meter.access.rules import article_signing
from meter.dev.redis_server import RedisProcess
from meter.platform import clock
from meter.platform.db import db
from meter.sites.rules import sites
from meter.sites.rules.policy import Policy, normalise
from tests.conftest import Api, flush_redis, make_site

ORIGIN = "https://tempo.co"
POLICY = {
    "quota": {"anonymous": 1, "registered": 1, "verified": 3},
    "meters": {
        "koran": {"quota": {"anonymous": 0, "registered": 0, "verified": 2}, "period": "month"},
        "majalah": {"quota": {"anonymous": 1, "registered": 1, "verified": 1}, "period": "week"},
    },
    "sections": {"koran": "koran", "majalah": "majalah"},
}


@pytest.fixture
def site(app, api) -> Api:
    """The `api` fixture's site (whose readers `verified_reader` registers), with the meters of POLICY."""
    with app.app_context():
        row = sites.by_slug("tempo")
        row.policy = normalise(POLICY)
        db.session.commit()
        sites.forget_cached()
    return api


def read(api: Api, article_id: str, section: str | None = None, **body) -> dict:
    article = {"id": article_id, "class": body.pop("cls", "metered")}
    if section is not None:
        article["section"] = section
    response = api.post("/v1/access", json={"article": article, **body})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def embed(client, article: dict, lang: str = "en") -> dict:
    body = {"article": article, "url": f"{ORIGIN}/x"}
    response = client.post(f"/embed/tempo/access?lang={lang}", data=json.dumps(body), headers={"Origin": ORIGIN})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def summary(answer: dict) -> tuple:
    return answer["reason"], answer["meter"]["name"], answer["meter"]["used"], answer["meter"]["limit"]


def test_two_meters_count_separately_and_the_wall_is_the_refusing_meters(app, site, verified_reader):
    _, token = verified_reader()
    assert summary(read(site, "koran:1", "koran", reader_token=token)) == ("unlocked_now", "koran", 1, 2)
    assert summary(read(site, "koran:2", "koran", reader_token=token)) == ("unlocked_now", "koran", 2, 2)
    assert summary(read(site, "koran:3", "koran", reader_token=token)) == ("quota_exhausted", "koran", 2, 2)
    # the other meters are untouched by the koran's reads
    assert summary(read(site, "majalah:1", "majalah", reader_token=token)) == ("unlocked_now", "majalah", 1, 1)
    assert summary(read(site, "berita:1", reader_token=token)) == ("unlocked_now", "default", 1, 3)
    assert summary(read(site, "majalah:2", "majalah", reader_token=token)) == ("quota_exhausted", "majalah", 1, 1)
    assert summary(read(site, "koran:1", "koran", reader_token=token)) == ("already_unlocked", "koran", 2, 2)

    # In the browser: the koran's wall asks an anonymous visitor to register for the koran's quota and
    # period; the majalah's, used up, says when the majalah's week ends.
    browser = app.test_client()
    koran = embed(browser, {"id": "koran:9", "section": "koran"})
    assert (koran["reason"], koran["meter"]["name"], koran["wall"]["kind"]) == (
        "registration_required",
        "koran",
        "register",
    )
    assert "2 free articles every month" in koran["wall"]["body"]
    first = embed(browser, {"id": "majalah:9", "section": "majalah"})
    assert (first["reason"], first["meter"]["name"], first["banner"]) == (
        "unlocked_now",
        "majalah",
        "0 free articles left",
    )
    wall = embed(browser, {"id": "majalah:8", "section": "majalah"})
    assert (wall["reason"], wall["wall"]["kind"]) == ("quota_exhausted", "quota")
    week_end = Policy.from_dict(POLICY).meter_named("majalah").period_at(clock.now()).end
    assert datetime.fromisoformat(wall["meter"]["period_end"]) == week_end
    assert format_date(week_end, "long", locale="en").replace(" ", "\u00a0") in wall["wall"]["body"]
    news = embed(browser, {"id": "berita:9"})  # the default meter still has its one anonymous read
    assert (news["reason"], news["meter"]["name"]) == ("unlocked_now", "default")

    amp = browser.get(
        "/amp/tempo/authorization",
        query_string={"rid": "amp-reader-0001", "url": f"{ORIGIN}/amp/k", "article": "koran:9", "section": "koran"},
    ).get_json()
    assert (amp["granted"], amp["reason"], amp["meter"]) == (False, "registration_required", "koran")


def test_an_unknown_or_absent_section_counts_in_the_default_meter(site, verified_reader):
    _, token = verified_reader()
    assert summary(read(site, "a", reader_token=token))[:3] == ("unlocked_now", "default", 1)
    assert summary(read(site, "b", "olahraga", reader_token=token))[:3] == ("unlocked_now", "default", 2)
    assert summary(read(site, "c", "KORAN", reader_token=token))[:3] == ("unlocked_now", "koran", 1)  # any case
    assert summary(read(site, "d", "default", reader_token=token))[:3] == ("unlocked_now", "default", 3)
    assert summary(read(site, "e", reader_token=token))[:3] == ("quota_exhausted", "default", 3)
    free = read(site, "f", "koran", cls="free", reader_token=token)  # free stays free, in any meter
    assert (free["reason"], free["meter"]["name"]) == ("free_content", "koran")


def test_a_signed_section_cannot_be_changed_by_the_reader(app, site, runner, verified_reader):
    made = runner.invoke(args=["sites", "article-keys", "create", "tempo"])
    kid, secret = made.output.split("key ", 1)[1].split(" ", 1)[0], made.output.strip().splitlines()[-1]
    assert runner.invoke(args=["sites", "settings", "tempo", "--signed-articles", "required"]).exit_code == 0
    _, token = verified_reader()
    browser = app.test_client()
    browser.set_cookie("meter_r_tempo", token)
    expires = clock.now_epoch() + 3600

    def signed(article_id: str, section: str | None) -> dict:
        item = {"id": article_id, "class": "metered", "expires": expires}
        item["sig"] = article_signing.sign(kid, secret, article_id, "metered", expires, section)
        return item if section is None else {**item, "section": section}

    koran = signed("koran:1", "koran")
    assert summary(embed(browser, koran)) == ("unlocked_now", "koran", 1, 2)
    for forged in (
        {**koran, "section": "majalah"},  # moved to another meter
        {key: value for key, value in koran.items() if key != "section"},  # taken out of its meter
        {**signed("berita:1", None), "section": "majalah"},  # signed without a section, one added
    ):
        answer = embed(browser, forged)
        assert (answer["allowed"], answer["reason"]) == (False, "subscription_required"), forged
    assert summary(embed(browser, signed("berita:2", None))) == ("unlocked_now", "default", 1, 3)
    with app.app_context():  # the refused ones counted nowhere
        assert sorted(db.session.execute(select(Unlock.meter, Unlock.article_id))) == [
            ("default", "berita:2"),
            ("koran", "koran:1"),
        ]

    query = {"rid": "amp-reader-0002", "url": f"{ORIGIN}/amp/k", "article": "koran:2", "expires": expires}
    query["sig"] = article_signing.sign(kid, secret, "koran:2", "metered", expires, "koran")
    amp = browser.get("/amp/tempo/authorization", query_string={**query, "section": "koran"}).get_json()
    assert (amp["reason"], amp["meter"]) == ("would_unlock", "koran")  # the reader's login cookie: 1 of 2 left
    moved = browser.get("/amp/tempo/authorization", query_string={**query, "section": "majalah"}).get_json()
    assert moved["reason"] == "subscription_required"


def test_each_meter_is_rebuilt_from_its_own_ledger_rows(app, site, verified_reader, redis_url):
    reader_id, token = verified_reader()
    for article_id, section in (("koran:1", "koran"), ("koran:2", "koran"), ("berita:1", None)):
        assert read(site, article_id, section, reader_token=token)["reason"] == "unlocked_now"
    with app.app_context():
        rows = db.session.execute(select(Unlock.meter, Unlock.article_id).where(Unlock.subject == f"r:{reader_id}"))
        assert sorted(rows) == [("default", "berita:1"), ("koran", "koran:1"), ("koran", "koran:2")]
    flush_redis(redis_url)  # Redis loses everything: each meter comes back from its own rows
    assert summary(read(site, "koran:3", "koran", reader_token=token)) == ("quota_exhausted", "koran", 2, 2)
    assert summary(read(site, "berita:1", reader_token=token)) == ("already_unlocked", "default", 1, 3)
    assert summary(read(site, "koran:1", reader_token=token)) == ("unlocked_now", "default", 2, 3)  # no section
    assert summary(read(site, "majalah:1", "majalah", reader_token=token)) == ("unlocked_now", "majalah", 1, 1)


def test_readers_me_shows_every_meter_and_a_login_carries_each_meters_reads_over(site, verified_reader):
    anonymous = "pembaca-anonim-01"
    assert read(site, "majalah:1", "majalah", anonymous_id=anonymous)["reason"] == "unlocked_now"
    assert read(site, "berita:1", anonymous_id=anonymous)["reason"] == "unlocked_now"
    verified_reader()
    login = site.post(
        "/v1/sessions",
        json={"email": "pembaca@example.com", "password": "rahasia-sekali", "anonymous_id": anonymous},
    )
    token = login.get_json()["reader_token"]
    me = site.get("/v1/readers/me", headers={"X-Reader-Token": token}).get_json()
    meters = {m["name"]: (m["used"], m["limit"], m["unlocked"]) for m in me["meters"]}
    assert meters == {
        "default": (1, 3, ["berita:1"]),
        "koran": (0, 2, []),
        "majalah": (1, 1, ["majalah:1"]),
    }
    assert me["meters"][0]["name"] == "default" and me["meter"]["name"] == "default"
    assert read(site, "majalah:2", "majalah", reader_token=token)["reason"] == "quota_exhausted"  # carried over


def test_a_reset_clears_the_reader_in_every_meter(site, runner, verified_reader):
    _, token = verified_reader()
    for article_id, section in (("koran:1", "koran"), ("koran:2", "koran"), ("berita:1", None)):
        assert read(site, article_id, section, reader_token=token)["reason"] == "unlocked_now"
    result = runner.invoke(args=["meter", "reset", "tempo", "pembaca@example.com"])
    assert result.exit_code == 0 and "cleared 3 unlocks" in result.output, result.output
    assert summary(read(site, "koran:3", "koran", reader_token=token)) == ("unlocked_now", "koran", 1, 2)
    assert summary(read(site, "berita:1", reader_token=token)) == ("unlocked_now", "default", 1, 3)


@pytest.fixture
def own_redis(tmp_path):
    server = RedisProcess(str(tmp_path / "own-redis")).start()
    yield server
    server.stop()


def test_while_redis_is_away_each_meter_answers_from_its_own_ledger_rows(app, own_redis, verified_reader):
    fresh = create_app({**app.config, "REDIS_URL": own_redis.url, "REDIS_RETRY_AFTER": 0.0})
    site = Api(fresh.test_client(), make_site(fresh, "lepas", policy=POLICY), "lepas")
    assert site.post("/v1/readers", json={"email": "d@example.com", "password": "rahasia-sekali"}).status_code == 202
    token = site.post("/v1/sessions", json={"email": "d@example.com", "password": "rahasia-sekali"}).get_json()[
        "reader_token"
    ]
    anonymous = "pembaca-lepas-01"
    assert read(site, "majalah:1", "majalah", anonymous_id=anonymous)["reason"] == "unlocked_now"
    own_redis.stop()
    again = read(site, "majalah:1", "majalah", anonymous_id=anonymous)
    assert (again["reason"], again["degraded"], again["meter"]["name"], again["meter"]["used"]) == (
        "already_unlocked",
        True,
        "majalah",
        1,
    )
    other = read(site, "berita:1", anonymous_id=anonymous)  # not unlocked in the default meter
    assert (other["reason"], other["meter"]["name"], other["meter"]["used"]) == ("degraded_allow", "default", 0)
    registered = read(site, "koran:1", "koran", reader_token=token)  # not verified: the koran's quota is 0
    assert (registered["reason"], registered["meter"]["name"], registered["meter"]["limit"]) == (
        "degraded_allow",
        "koran",
        0,
    )


# --- the command line --------------------------------------------------------------------------


def policy_of(runner, *changes: str) -> dict:
    args = ["sites", "policy", "tempo"]
    for change in changes:
        args += ["--set", change]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_command_line_sets_meters_and_sections(app, api, runner, verified_reader):
    policy = policy_of(runner, "meters.koran.quota.verified=1", "meters.koran.period=week", "sections.laput=koran")
    assert policy["meters"] == {"koran": {"quota": {"anonymous": 0, "registered": 0, "verified": 1}, "period": "week"}}
    assert policy["sections"] == {"laput": "koran"}
    _, token = verified_reader()
    assert summary(read(api, "laput:1", "laput", reader_token=token)) == ("unlocked_now", "koran", 1, 1)
    assert summary(read(api, "laput:2", "laput", reader_token=token)) == ("quota_exhausted", "koran", 1, 1)
    assert read(api, "berita:1", reader_token=token)["reason"] == "unlocked_now"

    policy = policy_of(runner, "sections.laput=", "meters.koran=")  # removed: its section first
    assert "meters" not in policy and "sections" not in policy
    assert summary(read(api, "laput:2", "laput", reader_token=token)) == ("unlocked_now", "default", 2, 2)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("meters.koran.quota.verified=-1", "meters.koran.quota.verified"),
        ("meters.koran.quota.verified=banyak", "meters.koran.quota.verified"),
        ("meters.koran.period=fortnight", "meters.koran.period"),
        ("meters.koran.quota.premium=1", "meters.koran.quota.premium"),
        ("meters.Koran.quota.verified=1", "meters.Koran"),
        ("meters.default.quota.verified=1", "meters.default"),
        ("meters.koran=1", "meters.koran"),
        ("sections.laput=majalah", "sections.laput"),
        ("sections.la.put=koran", "sections.la.put"),
    ],
)
def test_the_command_line_names_the_key_it_refuses_and_changes_nothing(api, runner, change, named):
    before = policy_of(runner)
    result = runner.invoke(args=["sites", "policy", "tempo", "--set", "meters.koran.quota.verified=2", "--set", change])
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and named in lines[0], result.output
    assert policy_of(runner) == before


def test_an_unlock_journaled_while_the_database_is_cut_reaches_its_meters_ledger_rows(app, cut_app, redis_client):
    from meter import worker

    fresh, cut = cut_app
    site = Api(fresh.test_client(), make_site(fresh, "potong", policy=POLICY), "potong")
    visitor = "pembaca-potong-1"
    # the site cached, and the visitor's majalah meter loaded into Redis
    assert read(site, "majalah:1", "majalah", anonymous_id=visitor, record=False)["reason"] == "would_unlock"
    with fresh.app_context():
        cut.cut(db.engine)
    try:
        answer = read(site, "majalah:1", "majalah", anonymous_id=visitor)
    finally:
        cut.restore()
    assert (answer["reason"], answer["meter"]["name"]) == ("unlocked_now", "majalah")
    with fresh.app_context():
        assert db.session.scalars(select(Unlock.meter)).all() == []  # its own write failed: in the journal
        worker.run_once()
        db.session.expire_all()
        assert db.session.execute(select(Unlock.meter, Unlock.article_id)).all() == [("majalah", "majalah:1")]
    redis_client.flushall()  # the meter comes back from the ledger: the majalah's one read is spent
    assert read(site, "majalah:2", "majalah", anonymous_id=visitor)["reason"] == "quota_exhausted"
    assert read(site, "berita:1", anonymous_id=visitor)["reason"] == "unlocked_now"
