"""Rules by arrival: a meter's rules give extra reads to readers who come from search, from social, or by
a named campaign. Over HTTP, against the real app, Redis and database: a search arrival gets its extra
read and a direct one does not; a social arrival by its rule; a campaign (the API's, the page URL's,
a signed one); the first matching rule decides and the answers (API, embed, AMP) name it; each meter
has its own rules; the check stays one Redis call and no SQL; a hostile referrer is a 422 or ignored,
never a 500; the command line edits rules and names the key it refuses.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event

from meter.access.rules import article_signing
from meter.access.rules.arrival import source_of
from meter.platform import clock
from meter.platform.db import db
from meter.sites.rules import sites
from meter.sites.rules.policy import normalise
from tests.conftest import Api, make_site, monitor_commands

ORIGIN = "https://tempo.co"
GOOGLE = "https://www.google.co.id/"
RULES = [
    {"name": "ramadan", "arrival": "campaign", "campaign": "ramadan", "extra": 3},
    {"name": "search", "arrival": "search", "extra": 1},
    {"name": "social", "arrival": "social", "extra": 2},
]
POLICY = {
    "quota": {"anonymous": 1, "registered": 1, "verified": 2},
    "rules": RULES,
    "meters": {
        "koran": {
            "quota": {"anonymous": 0, "registered": 0, "verified": 1},
            "rules": [{"name": "koran-search", "arrival": "search", "extra": 2}],
        }
    },
    "sections": {"koran": "koran"},
}


def use_policy(app, policy: dict) -> None:
    with app.app_context():
        row = sites.by_slug("tempo")
        row.policy = normalise(policy)
        db.session.commit()
        sites.forget_cached()


@pytest.fixture
def site(app, api) -> Api:
    use_policy(app, POLICY)
    return api


def read(api: Api, article_id: str, anonymous_id: str = "pembaca-anonim-1", section=None, **client) -> dict:
    article = {"id": article_id, "class": "metered", **({"section": section} if section else {})}
    body = {"article": article, "anonymous_id": anonymous_id, **({"client": client} if client else {})}
    response = api.post("/v1/access", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def summary(answer: dict) -> tuple:
    meter = answer["meter"]
    return answer["reason"], meter["rule"], meter["used"], meter["limit"]


def embed(client, article_id: str, url: str = f"{ORIGIN}/x", referrer: str | None = None, **article) -> dict:
    body = {"article": {"id": article_id, **article}, "url": url}
    if referrer is not None:
        body["referrer"] = referrer
    response = client.post("/embed/tempo/access?lang=en", data=json.dumps(body), headers={"Origin": ORIGIN})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_a_search_arrival_gets_its_extra_read_and_a_direct_arrival_does_not(site):
    assert summary(read(site, "a1")) == ("unlocked_now", None, 1, 1)
    assert summary(read(site, "a2")) == ("registration_required", None, 1, 1)  # direct: the quota is spent
    assert summary(read(site, "a2", referrer=GOOGLE)) == ("unlocked_now", "search", 2, 2)  # the extra read
    assert summary(read(site, "a3", referrer="https://www.bing.com/search?q=tempo")) == (
        "registration_required",
        "search",
        2,
        2,
    )  # one extra read per period, not one per search
    assert summary(read(site, "a2")) == ("already_unlocked", None, 2, 1)  # what was read stays read
    # Another reader: arriving from the site itself, or from an unknown site, is no search.
    for referrer in (f"{ORIGIN}/", "https://example.com/", ""):
        assert summary(read(site, "b1", "pembaca-anonim-2", referrer=referrer))[1] is None
    assert summary(read(site, "b2", "pembaca-anonim-2", referrer="https://google.example.com/"))[0] == (
        "registration_required"
    )


def test_a_social_arrival_gets_its_rules_extra_reads(site):
    read(site, "s1")
    for n, referrer in enumerate(("https://t.co/AbC", "android-app://com.facebook.katana/"), start=2):
        assert summary(read(site, f"s{n}", referrer=referrer)) == ("unlocked_now", "social", n, 3)
    assert summary(read(site, "s4", referrer="https://l.facebook.com/l.php?u=x")) == (
        "registration_required",
        "social",
        3,
        3,
    )


def test_a_campaign_by_the_api_the_page_url_or_amp(app, site):
    read(site, "c1")
    assert summary(read(site, "c2", campaign="Ramadan")) == ("unlocked_now", "ramadan", 2, 4)  # any case
    assert summary(read(site, "c3", campaign="lebaran")) == ("registration_required", None, 2, 1)

    browser = app.test_client()
    assert embed(browser, "e1")["meter"]["rule"] is None
    campaign = embed(browser, "e2", url=f"{ORIGIN}/e2?utm_source=wa&utm_campaign=ramadan")
    assert (campaign["reason"], campaign["meter"]["rule"], campaign["meter"]["limit"]) == ("unlocked_now", "ramadan", 4)
    assert campaign["banner"] == "2 free articles left"

    query = {"rid": "amp-reader-0001", "url": f"{ORIGIN}/amp/a?utm_campaign=ramadan", "article": "amp:1"}
    amp = browser.get("/amp/tempo/authorization", query_string=query).get_json()
    assert (amp["granted"], amp["rule"], amp["data"]["articleLimit"]) == (True, "ramadan", 4)
    query = {"rid": "amp-reader-0001", "url": f"{ORIGIN}/amp/b", "article": "amp:2", "ref": GOOGLE}
    amp = browser.get("/amp/tempo/authorization", query_string=query).get_json()
    assert (amp["rule"], amp["data"]["articleLimit"]) == ("search", 2)


def test_the_first_matching_rule_decides_and_each_meter_has_its_own(app, site):
    # A campaign's reader who came from a search: the campaign's rule is first.
    assert summary(read(site, "o1", referrer=GOOGLE, campaign="ramadan")) == ("unlocked_now", "ramadan", 1, 4)
    use_policy(app, {**POLICY, "rules": [RULES[1], RULES[0], RULES[2]]})
    assert summary(read(site, "o2", referrer=GOOGLE, campaign="ramadan")) == ("unlocked_now", "search", 2, 2)
    # A rule of no extra reads still decides: it stops the rules after it.
    use_policy(app, {**POLICY, "rules": [{"name": "no-social", "arrival": "social", "extra": 0}, RULES[2]]})
    assert summary(read(site, "o3", referrer="https://x.com/")) == ("registration_required", "no-social", 2, 1)

    # The koran meter's rules are its own: its search rule, and no social one.
    assert summary(read(site, "k1", section="koran", referrer=GOOGLE)) == ("unlocked_now", "koran-search", 1, 2)
    assert summary(read(site, "k2", section="koran", referrer="https://x.com/")) == (
        "registration_required",
        None,
        1,
        0,
    )


def test_with_signed_articles_required_only_a_signed_campaign_counts(app, site, runner):
    made = runner.invoke(args=["sites", "article-keys", "create", "tempo"])
    kid, secret = made.output.split("key ", 1)[1].split(" ", 1)[0], made.output.strip().splitlines()[-1]
    assert runner.invoke(args=["sites", "settings", "tempo", "--signed-articles", "required"]).exit_code == 0
    expires = clock.now_epoch() + 3600
    browser = app.test_client()

    def signed(article_id: str, campaign: str | None = None) -> dict:
        item = {"class": "metered", "expires": expires, **({"campaign": campaign} if campaign else {})}
        return {**item, "sig": article_signing.sign(kid, secret, article_id, "metered", expires, None, campaign)}

    embed(browser, "g1", **signed("g1"))
    # The reader adds the campaign to the URL: ignored.
    added = embed(browser, "g2", url=f"{ORIGIN}/g2?utm_campaign=ramadan", **signed("g2"))
    assert (added["reason"], added["meter"]["rule"]) == ("registration_required", None)
    assert embed(browser, "g2", **signed("g2", "ramadan"))["meter"]["rule"] == "ramadan"  # signed by the publisher
    forged = embed(browser, "g3", **{**signed("g3", "lebaran"), "campaign": "ramadan"})
    assert (forged["allowed"], forged["reason"]) == (False, "subscription_required")  # a changed campaign
    # Without a campaign, a signature of before campaigns (or sections) stays valid, and its section too.
    sig = article_signing.sign(kid, secret, "g4", "metered", expires, "koran")
    assert article_signing.sign(kid, secret, "g4", "metered", expires, "koran", None) == sig
    koran = embed(
        browser, "g4", section="koran", **{"class": "metered", "expires": expires, "sig": sig}, referrer=GOOGLE
    )
    assert (koran["reason"], koran["meter"]["name"], koran["meter"]["rule"]) == (
        "unlocked_now",
        "koran",
        "koran-search",
    )


@pytest.mark.config(SITE_CACHE_TTL=60.0)
def test_a_rule_is_chosen_before_the_call_one_redis_call_and_no_sql(app, redis_client):
    api = Api(app.test_client(), make_site(app, "hot", policy=POLICY), "hot")
    read(api, "hot:0", referrer=GOOGLE)  # warms the site's cached policy and the reader's unlocks
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    def checks() -> None:
        for n, client in enumerate(({"referrer": GOOGLE}, {"campaign": "ramadan"}, {"referrer": "https://t.co/"}, {})):
            api.post(
                "/v1/access",
                json={
                    "article": {"id": f"hot:{n}"},
                    "anonymous_id": "pembaca-anonim-1",
                    "record": False,
                    "client": client,
                },
            )

    event.listen(engine, "before_cursor_execute", record)
    try:
        commands = monitor_commands(redis_client, checks)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements == []
    assert commands == ["EVALSHA"] * 4


HOSTILE = [
    "x" * 2048,  # as long as may be, not a URL
    "https://" + "a." * 1000 + "com",
    "https://g\u043e\u043egle.com/",  # Cyrillic o's
    "https://www.google.com\u3002evil/",
    "https://bücher.example/",
    "http://[::1",
    "https://google.com:99999/",
    "javascript:alert(1)",
    "\x00\x01https://google.com",
    "android-app://",
    "https://user:pass@google.com@evil.com/",
    "//google.com",
]


@pytest.mark.parametrize("referrer", HOSTILE)
def test_a_hostile_referrer_is_ignored_never_a_500(app, site, referrer):
    assert read(site, "h1", referrer=referrer)["meter"]["rule"] in (None, "search")
    assert embed(app.test_client(), "h2", referrer=referrer)["meter"]["rule"] in (None, "search")
    query = {"rid": "amp-reader-0003", "url": f"{ORIGIN}/amp/h", "ref": referrer[:1500]}
    assert app.test_client().get("/amp/tempo/authorization", query_string=query).status_code in (200, 400)
    assert source_of(referrer) in ("search", "social", "other")


def test_a_referrer_or_campaign_past_its_limit_is_a_clear_422(app, site):
    for client in ({"referrer": "https://google.com/?q=" + "a" * 3000}, {"campaign": "r" * 65}, {"referrer": 7}):
        response = site.post("/v1/access", json={"article": {"id": "x"}, "client": client})
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json"
        assert any(key.startswith("client.") for key in response.get_json()["errors"]), response.get_json()
    body = {"article": {"id": "x"}, "referrer": "h" * 2049}
    response = app.test_client().post("/embed/tempo/access", data=json.dumps(body), headers={"Origin": ORIGIN})
    assert response.status_code == 422 and response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_the_answers_describe_the_rule(client):
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    text = json.dumps(schemas)
    assert "rule" in schemas["AccessMeter"]["properties"] and "rule" in schemas["AmpAuthorization"]["properties"]
    assert "referrer" in schemas["Client"]["properties"] and "campaign" in schemas["Client"]["properties"]
    assert "first of its `rules`" in text


# --- the command line --------------------------------------------------------------------------


def policy_of(runner, *changes: str) -> dict:
    args = ["sites", "policy", "tempo"]
    for change in changes:
        args += ["--set", change]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_command_line_edits_rules(api, runner):
    policy = policy_of(runner, "rules.search.arrival=search", "rules.search.extra=2")
    assert policy["rules"] == [{"name": "search", "arrival": "search", "extra": 2}]
    assert summary(read(api, "cli:1", referrer=GOOGLE)) == ("unlocked_now", "search", 1, 2)
    # A campaign's rule needs its campaign: both in one command. It comes last; the list reorders them.
    policy = policy_of(runner, "rules.ramadan.arrival=campaign", "rules.ramadan.campaign=ramadan")
    assert [rule["name"] for rule in policy["rules"]] == ["search", "ramadan"]
    reordered = json.dumps(policy["rules"][::-1])
    assert [rule["name"] for rule in policy_of(runner, f"rules={reordered}")["rules"]] == ["ramadan", "search"]
    policy = policy_of(runner, "meters.koran.quota.verified=1", "meters.koran.rules.k.arrival=social")
    assert policy["meters"]["koran"]["rules"] == [{"name": "k", "arrival": "social", "extra": 1}]
    policy = policy_of(runner, "rules.search=", "meters.koran.rules=")
    assert [rule["name"] for rule in policy["rules"]] == ["ramadan"] and "rules" not in policy["meters"]["koran"]
    assert "rules" not in policy_of(runner, "rules=")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("rules.search.arrival=google", "rules.search.arrival"),
        ("rules.search.extra=-1", "rules.search.extra"),
        ("rules.search.extra=banyak", "rules.search.extra"),
        ("rules.search.colour=red", "rules.search.colour"),
        ("rules.ramadan.arrival=campaign", "rules.ramadan.campaign"),
        ("rules.Search.arrival=search", "rules"),
        ("rules=[1]", "rules"),
        ("rules={", "rules"),
        ('rules=[{"name":"a","arrival":"search"},{"name":"a","arrival":"social"}]', "rules.a"),
        ("meters.majalah.rules.s.arrival=search", "meters.majalah.rules.s.arrival"),
        ("meters.koran.rules.s.arrival=tv", "meters.koran.rules.s.arrival"),
    ],
)
def test_the_command_line_names_the_rule_key_it_refuses_and_changes_nothing(api, runner, change, named):
    before = policy_of(runner)
    result = runner.invoke(args=["sites", "policy", "tempo", "--set", "meters.koran.quota.verified=2", "--set", change])
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and named in lines[0], result.output
    assert policy_of(runner) == before
