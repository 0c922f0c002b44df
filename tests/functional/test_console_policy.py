"""The console's policy form against the command line: the form changes only what it shows, and shows
every key of the policy (tests parametrized over meter.sites.rules.policy.SCHEMA, so a key added later is
covered); a time zone that is no zone is the field's error (422), never a 500."""

from __future__ import annotations

import json

import pytest

from meter.sites.rules.policy import SCHEMA
from tests.console_helpers import policy_form_of as form_of
from tests.console_helpers import staff_client

URL = "/console/tempo/policy"


def field_name(key: str) -> str:
    return key.replace(".", "_")


def policy_of(runner) -> dict:
    result = runner.invoke(args=["sites", "policy", "tempo"])
    assert result.exit_code == 0, result.output
    flat = {}
    for group, value in json.loads(result.output).items():
        if isinstance(value, dict):
            flat.update({f"{group}.{name}": v for name, v in value.items()})
        else:
            flat[group] = value
    return flat


def set_by_cli(runner, key: str, value) -> None:
    result = runner.invoke(args=["sites", "policy", "tempo", "--set", f"{key}={value}"])
    assert result.exit_code == 0, result.output


def save(client, **changed) -> str:
    """Open the form, change `changed` (form field names), show the change, save it: the preview page."""
    fields = form_of(client.get(URL).get_data(as_text=True))
    fields.update({name: str(value) for name, value in changed.items()})
    preview = client.post(URL, data={**fields, "preview": "1"})
    assert preview.status_code == 200, preview.get_data(as_text=True)
    shown = form_of(preview.get_data(as_text=True))
    saved = client.post(URL, data={**shown, "save": "1"})
    assert saved.status_code == 303, saved.get_data(as_text=True)
    return preview.get_data(as_text=True)


@pytest.fixture
def editor(app, runner, api):
    return staff_client(app, runner, "ed@tempo.co", "tempo", "editor")


def _other(key: str) -> tuple[str, int]:
    """Another key to change beside `key`, and its new value."""
    return ("quota_anonymous", 1) if key != "quota.anonymous" else ("quota_registered", 1)


@pytest.mark.parametrize("key", [key.name for key in SCHEMA])
def test_saving_the_form_keeps_a_key_set_on_the_command_line(editor, runner, key):
    example = next(k.example for k in SCHEMA if k.name == key)
    set_by_cli(runner, key, example)
    preview = save(editor)  # unchanged
    assert "Nothing would change" in preview
    assert policy_of(runner)[key] == example
    other, value = _other(key)
    preview = save(editor, **{other: value})  # with one other field changed
    assert f'data-key="{key}"' not in preview
    after = policy_of(runner)
    assert after[key] == example and after[other.replace("_", ".", 1)] == value


@pytest.mark.parametrize("key", [key.name for key in SCHEMA])
def test_every_key_is_shown_and_edited_in_the_console(editor, runner, key):
    example = next(k.example for k in SCHEMA if k.name == key)
    page = editor.get(URL).get_data(as_text=True)
    assert field_name(key) in form_of(page), f"the console's form does not show {key}"
    preview = save(editor, **{field_name(key): example})
    assert f'data-key="{key}"' in preview
    assert policy_of(runner)[key] == example


def test_changing_the_verified_quota_leaves_gifts_alone_and_the_audit_says_so(editor, runner):
    set_by_cli(runner, "gifts.per_period", 10)
    preview = save(editor, quota_verified=3)
    assert 'data-key="quota.verified"' in preview and "gifts.per_period" not in preview
    assert policy_of(runner)["gifts.per_period"] == 10
    rows = json.loads(runner.invoke(args=["audit", "show", "--json"]).output)
    [change] = [row for row in rows if row["action"] == "policy.change"]  # the console's; the command line's is cli.…
    assert "quota.verified" in json.dumps(change["detail"]) and "gifts" not in json.dumps(change["detail"])


def test_a_form_without_some_fields_changes_only_those_it_sends(editor, runner):
    """A page rendered before a field existed (or a hand-made post) sends fewer fields: the others keep
    their values instead of going back to the defaults."""
    set_by_cli(runner, "gifts.per_period", 10)
    set_by_cli(runner, "crawlers", "verified")
    fields = form_of(editor.get(URL).get_data(as_text=True))
    sent = {name: value for name, value in fields.items() if not name.startswith(("gifts_", "crawlers"))}
    sent["quota_verified"] = "4"
    preview = editor.post(URL, data={**sent, "preview": "1"})
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert 'data-key="quota.verified"' in html and 'data-key="gifts' not in html and 'data-key="crawlers"' not in html
    shown = {name: value for name, value in form_of(html).items() if name in sent or name == "shown"}
    assert editor.post(URL, data={**shown, "save": "1"}).status_code == 303
    after = policy_of(runner)
    assert (after["quota.verified"], after["gifts.per_period"], after["crawlers"]) == (4, 10, "verified")


# --- a time zone that is no zone -------------------------------------------------------------------

HOSTILE_ZONES = [
    "Asia",
    "Etc",
    "America",
    "America/Argentina",
    "../etc",
    "",
    "UTC\x00",
    "Asia/Jakarta" + "x" * 300,
    "x" * 5000,
    "/",
    "Asia/../../etc/passwd",
    "zone.tab",
    "localtime",
    " Asia/Jakarta/",
]


@pytest.mark.parametrize("zone", HOSTILE_ZONES)
def test_a_time_zone_that_is_no_zone_is_the_fields_error_in_the_console(editor, runner, zone):
    fields = form_of(editor.get(URL).get_data(as_text=True))
    answer = editor.post(URL, data={**fields, "timezone": zone, "preview": "1"})
    html = answer.get_data(as_text=True)
    if "\x00" in zone:  # a NUL in any form field is refused before the view (meter.platform.validation)
        assert answer.status_code == 400 and answer.mimetype == "text/html", html
    else:
        assert answer.status_code == 422 and answer.mimetype == "text/html", html
        assert 'id="timezone-error"' in html
    assert policy_of(runner)["timezone"] == "Asia/Jakarta"


@pytest.mark.parametrize("zone", HOSTILE_ZONES)
def test_a_time_zone_that_is_no_zone_is_one_line_on_the_command_line(runner, api, zone):
    result = runner.invoke(args=["sites", "policy", "tempo", "--set", f"timezone={zone}"])
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "time zone" in lines[0], result.output
    assert len(lines[0]) < 200
    assert policy_of(runner)["timezone"] == "Asia/Jakarta"
