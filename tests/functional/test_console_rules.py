"""The console's pages of rules by arrival: each meter's rules (the default meter's too) edited as one
ordered list, the change shown before it is saved; the form changes only that meter's rules; a rule
that cannot be is the field's error, naming the line or the rule's key; every save is audited; the
access check follows."""

from __future__ import annotations

import json

import pytest

from tests.console_helpers import policy_form_of as form_of
from tests.console_helpers import staff_client


def rules_url(meter: str) -> str:
    return f"/console/tempo/policy/rules/{meter}"


@pytest.fixture
def editor(app, runner, api):
    return staff_client(app, runner, "ed@tempo.co", "tempo", "editor")


def policy_of(runner) -> dict:
    result = runner.invoke(args=["sites", "policy", "tempo"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def preview(client, url: str, rules: str):
    fields = form_of(client.get(url).get_data(as_text=True))
    return client.post(url, data={**fields, "rules": rules, "preview": "1"})


def save(client, url: str, page: str, rules: str):
    """Press "save" on a preview page whose field holds `rules` (the browser sends the textarea)."""
    return client.post(url, data={**form_of(page), "rules": rules, "save": "1"})


def test_the_default_meters_rules_are_previewed_saved_audited_and_followed(app, editor, runner, api):
    assert 'href="/console/tempo/policy/rules/default"' in editor.get("/console/tempo/policy").get_data(as_text=True)
    runner.invoke(args=["sites", "policy", "tempo", "--set", "quota.anonymous=1", "--set", "gifts.days=30"])
    typed = "ramadan: campaign Ramadan +3\n\nsearch: search +1\n"
    shown = preview(editor, rules_url("default"), typed)
    assert shown.status_code == 200, shown.get_data(as_text=True)
    page = shown.get_data(as_text=True)
    assert 'data-key="rules"' in page and "ramadan: campaign ramadan +3; search: search +1" in page
    assert policy_of(runner).get("rules") is None  # nothing saved before "save"
    saved = save(editor, rules_url("default"), page, typed)
    assert saved.status_code == 303, saved.get_data(as_text=True)
    policy = policy_of(runner)
    assert policy["rules"] == [
        {"name": "ramadan", "arrival": "campaign", "campaign": "ramadan", "extra": 3},
        {"name": "search", "arrival": "search", "extra": 1},
    ]
    assert (policy["quota"]["anonymous"], policy["gifts"]["days"]) == (1, 30)  # the rest of the policy kept
    assert "ramadan: campaign ramadan +3\nsearch: search +1" in editor.get(rules_url("default")).get_data(as_text=True)

    rows = json.loads(runner.invoke(args=["audit", "show", "--json"]).output)
    [change] = [row for row in rows if row["action"] == "policy.change"]
    assert change["detail"] == {"rules": "None -> ramadan: campaign ramadan +3; search: search +1"}
    owner = staff_client(app, runner, "own@tempo.co", "tempo", "owner")
    audit = owner.get("/console/tempo/audit").get_data(as_text=True)
    assert "Rules by arrival" in audit and "search: search +1" in audit

    body = {"article": {"id": "t:1"}, "anonymous_id": "pembaca-anonim-1", "client": {"referrer": "https://bing.com/"}}
    answer = api.post("/v1/access", json=body).get_json()
    assert (answer["meter"]["rule"], answer["meter"]["limit"]) == ("search", 2)

    # Reordered, and one removed: the whole list is the field.
    page = preview(editor, rules_url("default"), "search: search +1").get_data(as_text=True)
    assert save(editor, rules_url("default"), page, "search: search +1").status_code == 303
    assert [rule["name"] for rule in policy_of(runner)["rules"]] == ["search"]
    page = preview(editor, rules_url("default"), "").get_data(as_text=True)  # emptied: no rules
    assert save(editor, rules_url("default"), page, "").status_code == 303
    assert "rules" not in policy_of(runner)


def test_a_named_meters_rules_are_its_own(editor, runner):
    runner.invoke(args=["sites", "policy", "tempo", "--set", "meters.koran.quota.verified=1", "--set",
                        "rules.search.arrival=search"])  # fmt: skip
    assert 'href="/console/tempo/policy/rules/koran"' in editor.get("/console/tempo/policy/meters/koran").get_data(
        as_text=True
    )
    page = preview(editor, rules_url("koran"), "sosial: social +2").get_data(as_text=True)
    assert 'data-key="meters.koran.rules"' in page
    assert save(editor, rules_url("koran"), page, "sosial: social +2").status_code == 303
    policy = policy_of(runner)
    assert policy["meters"]["koran"]["rules"] == [{"name": "sosial", "arrival": "social", "extra": 2}]
    assert policy["rules"] == [{"name": "search", "arrival": "search", "extra": 1}]  # the default's kept
    assert editor.get(rules_url("majalah")).status_code == 404  # no such meter
    assert editor.get(rules_url("Bad!")).status_code == 404


@pytest.mark.parametrize(
    ("rules", "named"),
    [
        ("search search +1", "line 1"),
        ("search: search +1\nsearch: social +1", "rules.search"),
        ("tv: television +1", "rules.tv.arrival"),
        ("r: campaign +1", "rules.r.campaign"),
        ("r: campaign Ramadan!! +1", "rules.r.campaign"),
        ("s: search +5000", "rules.s.extra"),
        ("S: search +1", "rules[0]"),
    ],
)
def test_a_rule_that_cannot_be_is_the_fields_error_and_nothing_changes(editor, runner, rules, named):
    before = policy_of(runner)
    refused = preview(editor, rules_url("default"), rules)
    assert refused.status_code == 422
    assert named in refused.get_data(as_text=True)
    assert policy_of(runner) == before


def test_support_cannot_open_the_rules(app, runner, api):
    support = staff_client(app, runner, "cs@tempo.co", "tempo", "support")
    assert support.get(rules_url("default")).status_code == 403
