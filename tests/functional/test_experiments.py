"""Experiments: a meter tries quota sets against each other. Over HTTP, against the real app, Redis and
database: a reader stays in one variant across 50 visits and across registration, activation and
login; the anonymous ids split as the shares say; the variant's quota is the one enforced and the
answers (API, embed, AMP) name it; `GET /v1/stats` gives per variant the counts the test produced,
live and after the roll-up; the check stays one Redis call and no SQL; the command line sets an
experiment, names the key it refuses, and ends it adopting the winner (audited).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import event

from meter import worker
from meter.platform.db import db
from meter.sites.rules import sites
from meter.sites.rules.policy import normalise
from tests.conftest import Api, links_in, make_site, monitor_commands, token_of
from tests.console_helpers import staff_client

EXPERIMENT = {
    "name": "q1",
    "start": "2020-01-01",
    "end": "2099-01-01",
    "variants": {
        "a": {"share": 50},  # the meter's own quotas
        "b": {"share": 50, "quota": {"anonymous": 3, "verified": 4}},
    },
}
POLICY = {"quota": {"anonymous": 1, "registered": 1, "verified": 2}, "experiment": EXPERIMENT}
QUOTA = {"a": {"anonymous": 1, "verified": 2}, "b": {"anonymous": 3, "verified": 4}}


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


def access(api: Api, article_id: str, record: bool = True, **who) -> dict:
    response = api.post("/v1/access", json={"article": {"id": article_id}, "record": record, **who})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def variant_of(api: Api, anonymous_id: str) -> str:
    meter = access(api, "probe", record=False, anonymous_id=anonymous_id)["meter"]
    assert meter["experiment"] == "q1"
    return meter["variant"]


def visitor_in(api: Api, variant: str, prefix: str = "visitor") -> str:
    """An anonymous id the hash puts in `variant` (found by asking, as a client would see it)."""
    for n in range(200):
        if variant_of(api, f"{prefix}-{n:04d}") == variant:
            return f"{prefix}-{n:04d}"
    raise AssertionError(f"no visitor in {variant}")


def test_a_reader_stays_in_one_variant_across_50_visits_and_across_registration(site, mailbox, deliver):
    for variant in ("a", "b"):
        visitor = visitor_in(site, variant, f"stay-{variant}")
        answers = [access(site, f"{variant}:{n % 7}", anonymous_id=visitor)["meter"] for n in range(50)]
        assert {(m["experiment"], m["variant"], m["limit"]) for m in answers} == {
            ("q1", variant, QUOTA[variant]["anonymous"])
        }
        address = f"pembaca-{variant}@example.com"
        response = site.post(
            "/v1/readers", json={"email": address, "password": "rahasia-sekali", "anonymous_id": visitor}
        )
        assert response.status_code == 202
        deliver()
        link = next(x for x in links_in(mailbox.to(address)[-1]["msg"]) if "/activate/" in x)
        activated = site.post("/v1/activations", json={"token": token_of(link)}).get_json()
        meter = access(site, f"{variant}:r", reader_token=activated["reader_token"])["meter"]
        assert (meter["variant"], meter["limit"]) == (variant, QUOTA[variant]["verified"])
        # A login elsewhere, without the anonymous id: the reader's own seed, carried in the new token.
        login = site.post("/v1/sessions", json={"email": address, "password": "rahasia-sekali"}).get_json()
        assert access(site, f"{variant}:s", reader_token=login["reader_token"])["meter"]["variant"] == variant


def test_the_anonymous_ids_split_as_the_shares_say(site):
    seen = Counter(variant_of(site, f"split-visitor-{n}") for n in range(600))
    assert set(seen) == {"a", "b"}
    assert abs(seen["a"] / 600 - 0.5) < 0.07, seen  # 3.4 standard deviations


def test_the_variants_quota_is_the_one_enforced_and_every_answer_names_it(app, site):
    for variant, quota in (("a", 1), ("b", 3)):
        visitor = visitor_in(site, variant, f"quota-{variant}")
        reasons = [access(site, f"q{variant}:{n}", anonymous_id=visitor)["reason"] for n in range(quota + 1)]
        assert reasons == ["unlocked_now"] * quota + ["registration_required"]

    browser = app.test_client()
    body = {"article": {"id": "e1"}, "url": "https://tempo.co/e1"}
    embedded = browser.post("/embed/tempo/access", data=json.dumps(body), headers={"Origin": "https://tempo.co"})
    assert embedded.get_json()["meter"]["variant"] in ("a", "b")
    amp = browser.get(
        "/amp/tempo/authorization?rid=amp-reader-1&url=https://tempo.co/e1&__amp_source_origin=https://tempo.co",
        headers={"Origin": "https://tempo-co.cdn.ampproject.org"},
    )
    assert amp.status_code == 200 and amp.get_json()["variant"] in ("a", "b")

    use_policy(app, {**POLICY, "experiment": {**EXPERIMENT, "start": "2098-01-01"}})  # not started yet
    meter = access(site, "later", anonymous_id="not-started-1")["meter"]
    assert (meter["experiment"], meter["variant"], meter["limit"]) == (None, None, 1)


def _experiment(api: Api) -> dict:
    body = api.get("/v1/stats").get_json()
    (experiment,) = body["experiments"]
    return {v["name"]: v for v in experiment["variants"]}


def test_stats_per_variant_equal_the_counts_the_test_produced(app, runner, site, mailbox, deliver):
    walled = visitor_in(site, "a", "stats-a")
    for n in range(4):  # 1 unlock, 3 walls
        access(site, f"sa:{n}", anonymous_id=walled)
    access(site, "sa:9", record=False, anonymous_id=walled)  # asks that record nothing count no wall
    joiner = visitor_in(site, "b", "stats-b")
    for n in range(5):  # 3 unlocks, 2 walls
        access(site, f"sb:{n}", anonymous_id=joiner)
    site.post("/v1/readers", json={"email": "b@example.com", "password": "rahasia-sekali", "anonymous_id": joiner})
    deliver()
    link = next(x for x in links_in(mailbox.to("b@example.com")[-1]["msg"]) if "/activate/" in x)
    activated = site.post("/v1/activations", json={"token": token_of(link)}).get_json()
    site.put(f"/v1/readers/{activated['reader_id']}/subscription", json={"until": "2099-01-01T00:00:00+07:00"})

    def figures(variants: dict) -> dict:
        keys = ("walls", "registrations", "activations", "subscriptions_started")
        return {name: tuple(v[k] for k in keys) for name, v in variants.items()}

    expected = {"a": (3, 0, 0, 0), "b": (2, 1, 1, 1)}
    live = _experiment(site)
    assert figures(live) == expected
    with app.app_context():
        worker.run_once()
    rolled = _experiment(site)
    assert figures(rolled) == expected  # moved into SQL, counted once
    assert rolled["b"]["quota"] == {"anonymous": 3, "registered": 1, "verified": 4}
    b = rolled["b"]["wall_to_registration"]
    assert b["rate"] == 0.5 and 0 < b["low"] < 0.5 < b["high"] < 1  # Wilson's interval of 1 in 2
    assert rolled["a"]["wall_to_registration"] == {"rate": 0.0, "low": 0.0, "high": pytest.approx(0.561497, abs=1e-5)}
    assert rolled["b"]["wall_to_subscription"]["rate"] == 0.5

    editor = staff_client(app, runner, "ed@tempo.co", "tempo", "editor")
    for lang in ("en", "id"):
        page = editor.get("/console/tempo/", query_string={"lang": lang}).get_data(as_text=True)
        assert 'data-experiment="default/q1"' in page
        for variant, figure in (("a", (3, 0, 0, 0)), ("b", (2, 1, 1, 1))):
            row = page.split(f'data-variant="{variant}"', 1)[1].split("</tr>", 1)[0]
            for name, value in zip(
                ("walls", "registrations", "activations", "subscriptions_started"), figure, strict=True
            ):
                assert f'data-figure="{name}">{value}<' in row
        assert "50.0%" in page.split('data-variant="b"', 1)[1].split("</tr>", 1)[0]


@pytest.mark.config(SITE_CACHE_TTL=60.0)
def test_a_variant_is_chosen_before_the_call_one_redis_call_and_no_sql(app, redis_client):
    api = Api(app.test_client(), make_site(app, "hot", policy=POLICY), "hot")
    access(api, "hot:0", anonymous_id="hot-visitor")  # warms the site's cached policy and the unlocks
    api.post(
        "/v1/readers", json={"email": "hot@example.com", "password": "rahasia-sekali", "anonymous_id": "hot-visitor"}
    )
    token = api.post("/v1/sessions", json={"email": "hot@example.com", "password": "rahasia-sekali"}).get_json()[
        "reader_token"
    ]
    assert access(api, "hot:0", record=False, reader_token=token)["meter"]["variant"] == variant_of(api, "hot-visitor")
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    def checks() -> None:
        for n in range(4):
            access(api, f"hot:{n}", record=False, anonymous_id="hot-visitor")
        access(api, "hot:0", record=False, reader_token=token)  # a reader, with the seed in the token

    event.listen(engine, "before_cursor_execute", record)
    try:
        commands = monitor_commands(redis_client, checks)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements == []
    assert commands == ["EVALSHA"] * 5


def test_the_command_line_sets_an_experiment_names_the_key_it_refuses_and_ends_it(app, api):
    runner = app.test_cli_runner()
    given = runner.invoke(args=["sites", "policy", "tempo", "--set", f"experiment={json.dumps(EXPERIMENT)}"])
    assert given.exit_code == 0, given.output
    assert json.loads(given.output)["experiment"]["variants"]["b"]["quota"] == {"anonymous": 3, "verified": 4}
    changed = runner.invoke(args=["sites", "policy", "tempo", "--set", "experiment.variants.b.quota.verified=5"])
    assert json.loads(changed.output)["experiment"]["variants"]["b"]["quota"]["verified"] == 5
    for typed, key in (
        ("experiment.variants.b.share=60", "experiment.variants: the shares must sum to 100 (they sum to 110)"),
        ("experiment.variants.b.share=x", "experiment.variants.b.share must be a whole number"),
        ("experiment.variants.b.quota.verified=-1", "experiment.variants.b.quota.verified must be"),
        ("experiment.end=2019-01-01", "experiment.end must be after experiment.start"),
        ("experiment.variants.e.share=0", "experiment.variants.e.share must be"),
        ('experiment.variants={"a": {"share": 100}}', "experiment.variants: 2 to 4 variants"),
        ("meters.koran.experiment.name=x", "the policy has no meter 'koran'"),
    ):
        refused = runner.invoke(args=["sites", "policy", "tempo", "--set", typed])
        assert refused.exit_code != 0 and key in refused.output, (typed, refused.output)

    shown = runner.invoke(args=["sites", "experiments", "show", "tempo"])
    assert json.loads(shown.output)[0]["name"] == "q1"
    wrong = runner.invoke(args=["sites", "experiments", "end", "tempo", "--adopt", "z"])
    assert wrong.exit_code != 0 and "'z' is none of its variants" in wrong.output
    ended = runner.invoke(args=["sites", "experiments", "end", "tempo", "--adopt", "b"])
    assert ended.exit_code == 0, ended.output
    with app.app_context():
        policy = sites.by_slug("tempo").policy
        assert policy["quota"]["anonymous"] == 3 and policy["quota"]["verified"] == 5  # the winner's
        assert policy["experiment"]["adopted"] == "b"
        from meter.console.models import AuditEntry

        actions = [row.action for row in db.session.scalars(db.select(AuditEntry))]
    assert "cli.sites.experiments.end" in actions
    meter = access(api, "after", anonymous_id="anyone-at-all")["meter"]
    assert (meter["experiment"], meter["limit"]) == (None, 3)  # ended: the meter's quotas, which are b's
