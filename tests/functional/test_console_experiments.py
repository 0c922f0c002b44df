"""The console's experiment pages: each meter's experiment (the default meter's too) edited as JSON, the
change shown before it is saved; the form changes only that meter's experiment; one that cannot be
is the field's error, naming the key; every save is audited; the access check follows."""

from __future__ import annotations

import html
import json

import pytest

from tests.console_helpers import policy_form_of as form_of
from tests.console_helpers import staff_client

EXPERIMENT = {
    "name": "q1",
    "start": "2020-01-01",
    "end": "2099-01-01",
    "variants": {"a": {"share": 50}, "b": {"share": 50, "quota": {"anonymous": 3}}},
}


def url(meter: str) -> str:
    return f"/console/tempo/policy/experiment/{meter}"


@pytest.fixture
def editor(app, runner, api):
    return staff_client(app, runner, "ed@tempo.co", "tempo", "editor")


def policy_of(runner) -> dict:
    result = runner.invoke(args=["sites", "policy", "tempo"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def preview(client, meter: str, text: str):
    fields = form_of(client.get(url(meter)).get_data(as_text=True))
    return client.post(url(meter), data={**fields, "experiment": text, "preview": "1"})


def test_an_experiment_is_previewed_saved_audited_and_followed(editor, runner, api):
    runner.invoke(
        args=["sites", "policy", "tempo", "--set", "quota.anonymous=1", "--set", "meters.koran.quota.verified=2"]
    )
    shown = preview(editor, "default", json.dumps(EXPERIMENT))
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200 and 'data-key="experiment.variants.b.quota.anonymous"' in page
    assert "experiment" not in policy_of(runner)  # shown, not saved
    saved = editor.post(url("default"), data={**form_of(page), "experiment": json.dumps(EXPERIMENT), "save": "1"})
    assert saved.status_code == 303
    policy = policy_of(runner)
    assert policy["experiment"]["variants"]["b"] == {"share": 50, "quota": {"anonymous": 3}}
    assert policy["meters"]["koran"]["quota"]["verified"] == 2 and "experiment" not in policy["meters"]["koran"]
    assert (
        json.loads(
            html.unescape(editor.get(url("default")).get_data(as_text=True).split("</textarea>")[0].rsplit(">", 1)[1])
        )["name"]
        == "q1"
    )

    audit = json.loads(runner.invoke(args=["audit", "show", "--json", "--site", "tempo"]).output)
    assert audit[0]["action"] == "policy.change" and "experiment.name" in audit[0]["detail"]
    variants = {
        api.post(
            "/v1/access", json={"article": {"id": "x"}, "anonymous_id": f"visitor-{n:04d}", "record": False}
        ).get_json()["meter"]["variant"]
        for n in range(40)
    }
    assert variants == {"a", "b"}

    removed = preview(editor, "default", "")
    assert removed.status_code == 200
    editor.post(url("default"), data={**form_of(removed.get_data(as_text=True)), "experiment": "", "save": "1"})
    assert "experiment" not in policy_of(runner)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{not json", "it is not JSON"),
        (
            json.dumps({**EXPERIMENT, "variants": {"a": {"share": 50}, "b": {"share": 60}}}),
            "experiment.variants: the shares must sum to 100",
        ),
        (json.dumps({**EXPERIMENT, "end": "2019-01-01"}), "experiment.end must be after experiment.start"),
    ],
)
def test_an_experiment_that_cannot_be_is_the_fields_error(editor, runner, text, error):
    refused = preview(editor, "default", text)
    assert refused.status_code == 422 and error in html.unescape(refused.get_data(as_text=True))
    assert "experiment" not in policy_of(runner)


def test_a_named_meters_experiment_and_an_unknown_meter(editor, runner):
    runner.invoke(args=["sites", "policy", "tempo", "--set", "meters.koran.quota.verified=2"])
    page = preview(editor, "koran", json.dumps(EXPERIMENT)).get_data(as_text=True)
    assert 'data-key="meters.koran.experiment.name"' in page
    editor.post(url("koran"), data={**form_of(page), "experiment": json.dumps(EXPERIMENT), "save": "1"})
    assert policy_of(runner)["meters"]["koran"]["experiment"]["name"] == "q1"
    assert editor.get(url("majalah")).status_code == 404
    indonesian = editor.get(url("koran"), query_string={"lang": "id"}).get_data(as_text=True)
    assert "Eksperimen: meteran koran" in indonesian
