"""The console's meter pages: a meter made, changed and removed with the change shown before it is
saved, as the policy page does; the form changes only what it shows (the other meters, the default
quotas, a key the post lacks keep theirs); refusals are the field's error; every save is in the audit
log; the access check follows."""

from __future__ import annotations

import json

import pytest

from tests.console_helpers import policy_form_of as form_of
from tests.console_helpers import staff_client

POLICY_URL = "/console/tempo/policy"


def meter_url(name: str) -> str:
    return f"/console/tempo/policy/meters/{name}"


@pytest.fixture
def editor(app, runner, api):
    return staff_client(app, runner, "ed@tempo.co", "tempo", "editor")


def policy_of(runner) -> dict:
    result = runner.invoke(args=["sites", "policy", "tempo"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def cli(runner, *changes: str) -> None:
    args = ["sites", "policy", "tempo"]
    for change in changes:
        args += ["--set", change]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output


def save(client, url: str, **changed) -> str:
    """Open the meter's form, change `changed` (field names), show the change, save it: the preview page."""
    fields = form_of(client.get(url).get_data(as_text=True))
    fields.update({name: str(value) for name, value in changed.items()})
    preview = client.post(url, data={**fields, "preview": "1"})
    assert preview.status_code == 200, preview.get_data(as_text=True)
    saved = client.post(url, data={**form_of(preview.get_data(as_text=True)), "save": "1"})
    assert saved.status_code == 303, saved.get_data(as_text=True)
    return preview.get_data(as_text=True)


def test_a_meter_is_made_from_the_policy_page_previewed_saved_and_audited(app, editor, runner, api, verified_reader):
    page = editor.get(POLICY_URL).get_data(as_text=True)
    assert "No meter besides the default." in page
    csrf = page.split('name="csrf_token" value="', 2)[2].split('"', 1)[0]  # the new meter's form
    made = editor.post(f"{POLICY_URL}/meters", data={"csrf_token": csrf, "name": "Koran"})
    assert made.status_code == 303 and made.headers["Location"].endswith(meter_url("koran"))
    new = editor.get(meter_url("koran")).get_data(as_text=True)
    assert "A new meter" in new
    assert policy_of(runner).get("meters") is None  # nothing is made until saved

    preview = save(editor, meter_url("koran"), quota_verified=1, sections="koran, Laput")
    for key in ("meters.koran.quota.verified", "meters.koran.period", "sections.koran", "sections.laput"):
        assert f'data-key="{key}"' in preview
    policy = policy_of(runner)
    assert policy["meters"] == {"koran": {"quota": {"anonymous": 0, "registered": 0, "verified": 1}, "period": "month"}}
    assert policy["sections"] == {"koran": "koran", "laput": "koran"}
    listed = editor.get(POLICY_URL).get_data(as_text=True)
    assert 'data-meter="koran"' in listed and "koran, laput" in listed

    reader_id, token = verified_reader()  # the next checks follow it
    article = {"id": "tempo:laput:1", "section": "laput"}
    answer = api.post("/v1/access", json={"reader_token": token, "article": article}).get_json()
    assert (answer["reason"], answer["meter"]["name"], answer["meter"]["limit"]) == ("unlocked_now", "koran", 1)
    reader = editor.get(f"/console/tempo/readers/{reader_id}").get_data(as_text=True)  # each meter's count
    koran = reader.split('data-meter="koran"', 1)[1]
    assert 'data-meter="default"' in reader and "tempo:laput:1" in koran and "1 of 1" in koran

    rows = json.loads(runner.invoke(args=["audit", "show", "--json"]).output)
    [change] = [row for row in rows if row["action"] == "policy.change"]
    assert change["detail"]["meters.koran.quota.verified"] == "None -> 1"
    assert change["detail"]["sections.laput"] == "None -> koran"
    owner = staff_client(app, runner, "owner@tempo.co", "tempo", "owner")  # the audit log is the owners'
    english = owner.get("/console/tempo/audit?lang=en").get_data(as_text=True)
    assert "Meter koran: Free articles for verified readers" in english and "Section laput counts in" in english


def test_a_meters_form_changes_only_what_it_shows(editor, runner):
    cli(
        runner,
        "quota.verified=5",
        "meters.koran.quota.verified=2",
        "meters.koran.period=week",
        "meters.majalah.quota.verified=3",
        "sections.koran=koran",
        "sections.majalah=majalah",
    )
    fields = form_of(editor.get(meter_url("koran")).get_data(as_text=True))
    assert (fields["quota_verified"], fields["period"], fields["sections"]) == ("2", "week", "koran")
    sent = {name: value for name, value in fields.items() if name not in ("period", "sections")}
    sent["quota_anonymous"] = "1"  # a page without the period and sections fields (or a hand-made post)
    preview = editor.post(meter_url("koran"), data={**sent, "preview": "1"})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and 'data-key="meters.koran.quota.anonymous"' in html
    assert "meters.koran.period" not in html and 'data-key="sections' not in html
    shown = {name: value for name, value in form_of(html).items() if name in sent or name == "shown"}
    assert editor.post(meter_url("koran"), data={**shown, "save": "1"}).status_code == 303
    policy = policy_of(runner)
    assert policy["meters"]["koran"] == {"quota": {"anonymous": 1, "registered": 0, "verified": 2}, "period": "week"}
    assert policy["meters"]["majalah"]["quota"]["verified"] == 3 and policy["quota"]["verified"] == 5
    assert policy["sections"] == {"koran": "koran", "majalah": "majalah"}

    save(editor, meter_url("koran"), sections="koran majalah")  # listed here: the majalah section moves
    assert policy_of(runner)["sections"] == {"koran": "koran", "majalah": "koran"}
    save(editor, meter_url("koran"), sections="")  # none: both count in the default meter again
    assert "sections" not in policy_of(runner)


def test_a_meter_is_removed_with_its_sections_after_the_change_is_shown(editor, runner):
    cli(runner, "meters.koran.quota.verified=2", "sections.koran=koran", "sections.laput=koran")
    page = editor.get(meter_url("koran")).get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    base = form_of(page)["base"]
    preview = editor.post(meter_url("koran"), data={"csrf_token": csrf, "base": base, "remove": "1"})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and 'data-key="sections.laput"' in html and 'name="remove"' in html
    assert policy_of(runner)["meters"]  # not yet
    saved = editor.post(meter_url("koran"), data={**form_of(html), "save": "1"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith(POLICY_URL)
    policy = policy_of(runner)
    assert "meters" not in policy and "sections" not in policy


@pytest.mark.parametrize(
    ("field", "value", "error_of"),
    [
        ("period", "fortnight", "period"),
        ("quota_verified", "-1", "quota_verified"),
        ("sections", "la put!", "sections"),
        ("sections", "x" * 65, "sections"),
    ],
)
def test_a_value_that_cannot_be_is_the_fields_error(editor, runner, field, value, error_of):
    cli(runner, "meters.koran.quota.verified=2")
    fields = form_of(editor.get(meter_url("koran")).get_data(as_text=True))
    answer = editor.post(meter_url("koran"), data={**fields, field: value, "preview": "1"})
    assert answer.status_code == 422 and f'id="{error_of}-error"' in answer.get_data(as_text=True)
    assert policy_of(runner)["meters"]["koran"]["quota"]["verified"] == 2


def test_a_name_that_cannot_be_a_meter_is_refused(editor):
    assert editor.get(meter_url("default")).status_code == 404
    assert editor.get(meter_url("Koran")).status_code == 404
    assert editor.get(meter_url("x" * 40)).status_code == 404
    page = editor.get(POLICY_URL).get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="', 2)[2].split('"', 1)[0]
    refused = editor.post(f"{POLICY_URL}/meters", data={"csrf_token": csrf, "name": "kor an"}, follow_redirects=True)
    assert "name is 1 to 32" in refused.get_data(as_text=True)
