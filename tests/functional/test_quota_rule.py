"""The quota rule has one Python home (meter.access.rules.quota) and one in Redis (check.lua): random
quotas and meter states run through the real script in a real Redis and through the Python copy, and
the answers must be the same; the degraded answer (Redis away) must agree wherever it does not
depend on the count. Change either copy alone and this fails (docs/architecture.md shows it done)."""

from __future__ import annotations

import importlib
import itertools
from importlib import resources

import pytest
import redis as redis_lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meter.access.rules import quota as quota_rule
from meter.access.rules.metering.layout import hash64, pack_state, pack_unlocks

check = importlib.import_module("meter.access.rules.metering.check")  # the package's name `check` is its function
SCRIPT = resources.files("meter.access.rules.metering").joinpath("check.lua")
NOW = 1_800_000_000
SESSION = "session-1"
_serial = itertools.count()

quotas = st.builds(quota_rule.Quotas, *(st.integers(min_value=0, max_value=5) for _ in range(3)))
states = st.sampled_from(["anonymous", "registered", "verified", "subscriber"])
classes = st.sampled_from(["free", "metered", "premium"])


@pytest.fixture(scope="module")
def script(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    yield client, client.register_script(SCRIPT.read_text("utf-8"))
    client.close()


def run_lua(script, q: quota_rule.Quotas, state: str, article_class: str, used: int, unlocked: bool, record: bool):
    """The script's answer for a reader (or an anonymous visitor) in `state` with `used` unlocks this period."""
    client, lua = script
    n = next(_serial)
    keys = [f"t:{{q{n}}}:state", f"t:{{q{n}}}:unlocks", f"t:{{q{n}}}:stats", f"t:{{q{n}}}:journal"]
    entries = {f"other-{i}": NOW - 100 + i for i in range(used - (1 if unlocked else 0))}
    if unlocked:
        entries["the-article"] = NOW - 50
    anonymous = state == "anonymous"
    args = check.ScriptArgs(
        kind="a" if anonymous else "r",
        session=b"" if anonymous else hash64(SESSION),
        now=NOW,
        article=hash64("the-article"),
        article_class=article_class,
        record=record,
        quota_anonymous=q.anonymous,
        quota_registered=q.registered,
        quota_verified=q.verified,
        unlocks_expiry=NOW + 86400,
        window=0,
        state_ttl=3600,
        field=b"subject",
        stats_expiry=NOW + 86400,
        fresh_state=b""
        if anonymous
        else pack_state(state == "verified", NOW + 3600 if state == "subscriber" else 0, [SESSION]),
        unlocks=pack_unlocks(entries, rolling=False),
    )
    reply = lua(keys=keys, args=args.argv(), client=client)
    client.delete(*keys)
    return reply[0].decode(), reply[1].decode()


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)
@given(quotas, states, classes, st.integers(min_value=0, max_value=6), st.booleans(), st.booleans())
def test_the_python_rule_answers_as_the_script_does(script, q, state, article_class, used, unlocked, record):
    if unlocked and used == 0:
        used = 1  # an unlocked article is one of the period's unlocks
    reason, seen_state = run_lua(script, q, state, article_class, used, unlocked, record)
    assert seen_state == state
    assert reason == quota_rule.answer(q, state, article_class, used, unlocked, record)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)
@given(
    quotas, states, classes, st.integers(min_value=0, max_value=6), st.booleans(), st.sampled_from(["allow", "deny"])
)
def test_the_degraded_answer_agrees_wherever_the_count_does_not_matter(
    script, q, state, article_class, used, unlocked, mode
):
    if unlocked and used == 0:
        used = 1
    reason, _ = run_lua(script, q, state, article_class, used, unlocked, record=True)
    degraded = quota_rule.degraded_answer(q, state, article_class, unlocked, mode)
    if reason in ("free_content", "subscriber", "subscription_required", "already_unlocked"):
        assert degraded == reason
    else:  # the script counted (or refused by the count), which Redis away cannot
        assert degraded == f"degraded_{mode}"


def test_each_states_quota_and_the_refusal_of_the_policy_are_the_rules():
    from meter.sites.rules.policy import Policy

    policy = Policy.from_dict({"quota": {"anonymous": 0, "registered": 1, "verified": 2}})
    assert [policy.quota_for(s) for s in ("anonymous", "registered", "verified", "subscriber")] == [0, 1, 2, 2]
    assert check.refusal_reason(policy, "anonymous", "metered") == "registration_required"
