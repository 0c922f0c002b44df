"""Model-based test (hypothesis stateful testing): the real meter against a plain Python model.

Random sequences of access checks (recorded or not), re-reads, month changes, subscriptions that
start and end, Redis flushes and anonymous-to-account merges (a login carrying the anonymous id) run
against the real app, Redis and database; after every step the answer must be what the model says.
The site has three meters (the default one, `koran` and `majalah`, each with its own quotas, one
weekly) and articles of their sections, of an unknown section and of none: in the model each meter
is a count of its own, so a reader's reads in one meter never spend another's. Checks arrive directly,
from a search, from social or by a campaign: the first of the meter's rules by arrival that matches
adds its extra reads to that check's quota, and the answer names it. The koran meter runs an
experiment: the model puts the reader and the visitor in their variants by the assignment function
(the visitor's seed; the reader's own until a login carries the anonymous id, then the visitor's) and
expects the variant's quota (a rule's extra reads on top), so the quota of the variant is the one
enforced.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from meter.platform import clock
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.sites.rules import experiments, sites
from meter.sites.rules.experiments import Experiment
from meter.sites.rules.policy import normalise
from tests.conftest import Api, make_site

pytestmark = [pytest.mark.fuzz]

POLICY = {
    "quota": {"anonymous": 1, "registered": 1, "verified": 3},
    "rules": [
        {"name": "ramadan", "arrival": "campaign", "campaign": "ramadan", "extra": 2},
        {"name": "search", "arrival": "search", "extra": 1},
    ],
    "meters": {
        "koran": {
            "quota": {"anonymous": 2, "registered": 2, "verified": 2},
            "period": "month",
            "rules": [{"name": "social", "arrival": "social", "extra": 1}],
            "experiment": {
                "name": "q",
                "start": "2000-01-01",
                "end": "2999-01-01",
                "variants": {"a": {"share": 50}, "b": {"share": 50, "quota": {"anonymous": 4, "verified": 1}}},
            },
        },
        "majalah": {"quota": {"anonymous": 1, "registered": 1, "verified": 1}, "period": "week"},
    },
    "sections": {"koran": "koran", "majalah": "majalah"},
}
METERS = ("default", "koran", "majalah")
PASSWORD = "rahasia-sekali"
# (article id, its section): sections of each meter, one in capitals, one the policy does not name, none.
SECTIONS = ("koran", "Koran", "majalah", "olahraga", None)
ARTICLES = [(f"tempo:{section or 'berita'}:{i}", section) for section in SECTIONS for i in range(3)]
_serial = itertools.count()
# How a check arrives: (its `client` fields, where the model says it came from, its campaign).
ARRIVALS = {
    "direct": ({}, "direct", None),
    "search": ({"referrer": "https://www.google.co.id/"}, "search", None),
    "social": ({"referrer": "https://t.co/x"}, "social", None),
    "ramadan": ({"campaign": "Ramadan", "referrer": "https://www.bing.com/"}, "search", "ramadan"),
}


def meter_of(section: str | None) -> str:
    return POLICY["sections"].get((section or "").lower(), "default")


def quotas_of(meter: str, variant: str | None = None) -> dict[str, int]:
    if meter == "default":
        return POLICY["quota"]
    own = POLICY["meters"][meter]
    chosen = own.get("experiment", {}).get("variants", {}).get(variant, {})
    return {**own["quota"], **chosen.get("quota", {})}


def rule_of(meter: str, arrival: str) -> tuple[str | None, int]:
    """The first of the meter's rules that matches the arrival: (its name, its extra reads), or (None, 0)."""
    _client, source, campaign = ARRIVALS[arrival]
    rules = POLICY["rules"] if meter == "default" else POLICY["meters"][meter].get("rules", [])
    for given in rules:
        if (given["arrival"] == "campaign" and given["campaign"] == campaign) or given["arrival"] == source:
            return given["name"], given["extra"]
    return None, 0


def _per_meter() -> dict[str, set[str]]:
    return {meter: set() for meter in METERS}


@dataclass
class Model:
    """The policy, in plain Python: what each subject unlocked this period in each meter, and who subscribes."""

    reader: dict[str, set[str]] = field(default_factory=_per_meter)
    anonymous: dict[str, set[str]] = field(default_factory=_per_meter)
    subscription_until: datetime | None = None
    variants: dict[str, str] = field(default_factory=dict)  # who → their variant of the koran's experiment

    def variant(self, who: str, section: str | None) -> str | None:
        return self.variants[who] if meter_of(section) == "koran" else None

    def expect(
        self, who: str, article: str, section: str | None, cls: str, record: bool, extra: int = 0
    ) -> tuple[bool, str, int]:
        meter = meter_of(section)
        unlocked = (self.reader if who == "reader" else self.anonymous)[meter]
        q = quotas_of(meter, self.variant(who, section))
        quota = q["verified" if who == "reader" else "anonymous"] + extra
        used = len(unlocked)
        if cls == "free":
            return True, "free_content", used
        if who == "reader" and self.subscription_until and self.subscription_until > clock.now():
            return True, "subscriber", used
        if cls == "premium":
            return False, "subscription_required", used
        if article in unlocked:
            return True, "already_unlocked", used
        if used >= quota:  # an anonymous visitor is asked to register when an account reads more
            more = who == "anonymous" and max(q["registered"], q["verified"]) > q["anonymous"]
            return False, ("registration_required" if more else "quota_exhausted"), used
        if not record:
            return True, "would_unlock", used
        unlocked.add(article)
        return True, "unlocked_now", used + 1


def _to_mid_month() -> None:
    """Forward to the 15th, noon, in the site's zone: the real end of a month during a run would move
    the period under the model (the model moves it only in `next_month`)."""
    now = clock.now().astimezone(ZoneInfo("Asia/Jakarta"))
    target = now.replace(day=15, hour=12, minute=0, second=0, microsecond=0)
    if target <= now:
        target = (target + timedelta(days=31)).replace(day=15)
    clock.travel(target - now)


@pytest.mark.config(RATELIMIT_REGISTER_IP="100000/minute", RATELIMIT_LOGIN_FAIL_IP="100000/minute")
def test_the_meter_behaves_like_its_model(app, api, redis_client):
    site = Api(api.client, make_site(app, "model", ("https://model.example",), POLICY), "model")
    with app.app_context():
        key = experiments.hash_key(app.config["SECRET_KEY"], sites.by_slug("model").id, "koran", "q")
    experiment = Experiment.from_dict(normalise(POLICY)["meters"]["koran"]["experiment"])

    def variant_of(seed: str) -> str:
        return experiment.variant_of(key, seed).name

    class Meter(RuleBasedStateMachine):
        @initialize()
        def fresh_reader(self) -> None:
            clock.reset()
            _to_mid_month()
            self.model = Model()
            n = next(_serial)
            self.email = f"model{n}@example.com"
            self.anonymous_id = f"visitor-{n:04d}-a"
            assert site.post("/v1/readers", json={"email": self.email, "password": PASSWORD}).status_code == 202
            with app.app_context():
                body = db.session.scalar(
                    select(OutboxMail.body_text).where(OutboxMail.to_addr == self.email).order_by(OutboxMail.id.desc())
                )
            token = body.split("/activate/", 1)[1].split()[0].split("?")[0]
            answer = site.post("/v1/activations", json={"token": token}).get_json()
            self.reader_id, self.token = answer["reader_id"], answer["reader_token"]
            self.reader_seed = experiments.reader_seed(self.reader_id, None)  # registered without an anonymous id
            self.model.variants = {
                "reader": variant_of(self.reader_seed),
                "anonymous": variant_of(experiments.anonymous_seed(self.anonymous_id)),
            }

        def _login(self, anonymous_id: str | None = None) -> None:
            body = {"email": self.email, "password": PASSWORD}
            if anonymous_id:
                body["anonymous_id"] = anonymous_id
            response = site.post("/v1/sessions", json=body)
            assert response.status_code == 200, response.get_data(as_text=True)
            self.token = response.get_json()["reader_token"]

        def _check(
            self, who: str, article: tuple[str, str | None], cls: str, record: bool, arrival: str = "direct"
        ) -> None:
            article_id, section = article
            rule, extra = rule_of(meter_of(section), arrival)
            expected = self.model.expect(who, article_id, section, cls, record, extra)
            body = {"article": {"id": article_id, "class": cls}, "record": record}
            if ARRIVALS[arrival][0]:
                body["client"] = ARRIVALS[arrival][0]
            if section is not None:
                body["article"]["section"] = section
            if who == "reader":
                body["reader_token"] = self.token
            else:
                body["anonymous_id"] = self.anonymous_id
            response = site.post("/v1/access", json=body)
            assert response.status_code == 200, response.get_data(as_text=True)
            answer = response.get_json()
            if who == "reader":
                assert answer["reader"]["token"] == "valid"
            got = (answer["allowed"], answer["reason"], answer["meter"]["used"])
            assert got == expected, (who, article, cls, record, self.model)
            assert answer["meter"]["name"] == meter_of(section)
            assert answer["meter"]["rule"] == rule, (arrival, section)
            assert answer["meter"]["variant"] == self.model.variant(who, section)
            state = "verified" if who == "reader" else "anonymous"  # a subscriber's shows the verified quota
            limit = quotas_of(meter_of(section), self.model.variant(who, section))[state] + extra
            assert answer["meter"]["limit"] == limit, (arrival, section)
            assert answer["degraded"] is False

        @rule(
            who=st.sampled_from(["reader", "anonymous"]),
            article=st.sampled_from(ARTICLES),
            cls=st.sampled_from(["metered", "metered", "metered", "free", "premium"]),
            record=st.booleans(),
            arrival=st.sampled_from(list(ARRIVALS)),
        )
        def check(self, who, article, cls, record, arrival) -> None:
            self._check(who, article, cls, record, arrival)

        @rule(who=st.sampled_from(["reader", "anonymous"]), data=st.data())
        def reread(self, who, data) -> None:
            unlocked = self.model.reader if who == "reader" else self.model.anonymous
            read = [item for item in ARTICLES if item[0] in unlocked[meter_of(item[1])]]
            if read:
                self._check(who, data.draw(st.sampled_from(read)), "metered", True)

        @rule()
        def next_month(self) -> None:
            clock.travel(timedelta(days=32))
            self.model.reader = _per_meter()
            self.model.anonymous = _per_meter()
            self._login()  # reader tokens live 30 days

        @rule(days=st.integers(min_value=1, max_value=40))
        def subscribe(self, days) -> None:
            until = clock.now() + timedelta(days=days)
            r = site.put(f"/v1/readers/{self.reader_id}/subscription", json={"until": until.isoformat()})
            assert r.status_code == 200
            self.model.subscription_until = until

        @rule()
        def unsubscribe(self) -> None:
            assert site.delete(f"/v1/readers/{self.reader_id}/subscription").status_code == 200
            self.model.subscription_until = None

        @rule()
        def flush_redis(self) -> None:
            redis_client.flushall()  # nobody gains or loses: Redis is rebuilt from the ledger

        @rule()
        def merge_anonymous(self) -> None:
            """Log in carrying the anonymous id: its unlocks of this period are copied to the account (the
            anonymous id keeps them: it stays used up)."""
            self._login(self.anonymous_id)
            self.model.variants["reader"] = self.model.variants["anonymous"]  # the first one carried is kept
            for meter in METERS:
                self.model.reader[meter] |= self.model.anonymous[meter]

        @invariant()
        def ledger_agrees(self) -> None:
            if not hasattr(self, "reader_id"):
                return
            me = site.get("/v1/readers/me", headers={"X-Reader-Token": self.token}).get_json()
            assert set(me["meter"]["unlocked"]) == self.model.reader["default"]
            assert {m["name"]: set(m["unlocked"]) for m in me["meters"]} == self.model.reader

        def teardown(self) -> None:
            clock.reset()

    # Bounded: 30 sequences of up to 25 steps (about 10 s). Shrinking a failure against live Redis and
    # SQL takes minutes, so it is off unless METER_HYPOTHESIS_SHRINK=1; a failure prints its steps anyway.
    phases = [Phase.explicit, Phase.reuse, Phase.generate]
    if os.environ.get("METER_HYPOTHESIS_SHRINK") == "1":
        phases.append(Phase.shrink)
    run_state_machine_as_test(
        Meter,
        settings=settings(
            max_examples=int(os.environ.get("METER_HYPOTHESIS_EXAMPLES", "30")),
            stateful_step_count=25,
            deadline=None,
            database=None,
            phases=phases,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
