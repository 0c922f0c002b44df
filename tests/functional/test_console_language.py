"""The console in Indonesian says everything in Indonesian: no English word of a short list and no raw
code (`staff.create`, `cli.sites.policy`) in the visible text of any page, with data that puts every
state on the pages (readers registered, verified, subscribed; every kind and delivery of mail; sessions
live and ended; keys live and revoked; members of each role and state; audit rows of the console, of
the domain and of the command line; sign-ins by password and by a provider with a label).

The codes stay in the data and in attributes (`data-action`, `data-kind`): scripts and tests read
those; a person reads the words."""

from __future__ import annotations

from tests import console_data
from tests.conftest import make_site
from tests.console_helpers import csrf_of, english_or_codes, visible_text
from tests.paths import ROOT_DIR


def test_the_checks_catch_what_the_issue_saw():
    seen = "Siapa: command line · staff.create · policy.change · cli.sites.policy · Masuk dengan: password"
    assert english_or_codes(seen) == ["cli.sites.policy", "command line", "password", "policy.change", "staff.create"]
    assert english_or_codes("pembaca@tempo.co · https://koran.tempo.co/x · 3.5 · Rp 1.000") == []


def test_every_console_page_in_indonesian_has_no_english_and_no_code(app, runner, api):
    make_site(app, "other", ("https://other.example",))
    filled = console_data.fill(app, runner, "tempo", "other")
    owner = filled.owner
    policy = owner.get("/console/tempo/policy").get_data(as_text=True)
    version = policy.split('name="base" type="hidden" value="', 1)[1].split('"', 1)[0]
    token = csrf_of(policy)
    fields = console_data.policy_fields(version, quota_verified="6", csrf_token=token, preview="1")
    answers = {path: owner.get(path) for path in console_data.pages(filled)}
    answers["policy preview"] = owner.post("/console/tempo/policy", data=fields)
    found = {}
    for name, answer in answers.items():
        assert answer.status_code == 200, name
        html = answer.get_data(as_text=True)
        assert '<html lang="id">' in html, name
        wrong = english_or_codes(visible_text(html))
        if wrong:
            found[name] = wrong
    assert found == {}, "\n".join(f"{name}: {wrong}" for name, wrong in found.items())

    audit = answers["/console/tempo/audit"].get_data(as_text=True)
    for action in ("staff.create", "cli.sites.policy", "policy.change", "reader.view", "reader.search",
                   "console.signin", "api_key.revoke", "readers.bulk_resend", "mail.retry"):  # fmt: skip
        assert f'data-action="{action}"' in audit, action  # each kind of row is on the page, said in words
    assert "Baris perintah" in visible_text(audit)
    assert f'<a href="/console/tempo/readers/{filled.readers[1]}">{filled.readers[1]}</a>' in audit  # to the reader
    dashboard = visible_text(answers["/console/tempo/"].get_data(as_text=True))
    assert "Akun Demo: 2" in dashboard and "Kata sandi: 1" in dashboard
    subscriber = visible_text(answers[f"/console/tempo/readers/{filled.readers[2]}"].get_data(as_text=True))
    assert "Kata sandi, Akun Demo" in subscriber and "Pelanggan" in subscriber
    assert "Chrome · Android 203.0.113.0/24" in subscriber and "Firefox · Linux —" in subscriber  # device, network
    assert "Perangkat tidak dikenal" in subscriber


def test_an_action_without_a_label_is_still_words(app):
    from meter.console.views import labels

    with app.test_request_context("/console/?lang=id"):
        assert labels.action("cli.readers.export") == "Perintah flask readers export"
        assert labels.action("something.new_here") == "something new here"
        assert labels.action("staff.create") == "Anggota staf ditambahkan"


def test_every_mail_kind_and_policy_key_has_a_label(app):
    from meter.console.views import labels
    from meter.sites.rules.policy import SCHEMA
    from tests.mail_kinds import template_kinds

    assert template_kinds() <= set(labels.MAIL_KINDS)
    assert {key.name for key in SCHEMA} <= set(labels.POLICY_KEYS)


def test_a_form_refused_in_indonesian_says_why_in_indonesian(app, runner, api):
    from tests.console_helpers import staff_client

    client = staff_client(app, runner, "pemilik@tempo.co", "tempo", "owner")
    client.get("/console/tempo/policy?lang=id")
    policy = client.get("/console/tempo/policy").get_data(as_text=True)
    version = policy.split('name="base" type="hidden" value="', 1)[1].split('"', 1)[0]
    token = csrf_of(policy)
    refused = {}
    for change in ({"period": "fortnight"}, {"quota_verified": "-1"}, {"quota_verified": ""},
                   {"timezone": "Mars/Olympus"}, {"crawlers": "maybe"}):  # fmt: skip
        fields = console_data.policy_fields(version, csrf_token=token, preview="1", **change)
        refused[str(change)] = client.post("/console/tempo/policy", data=fields)
    for url, data in (
        ("/console/tempo/origins", {"origin": "javascript:alert(1)"}),
        ("/console/tempo/origins", {"origin": ""}),
        ("/console/tempo/providers", {"name": "akun", "kind": "google", "client_id": "", "secret": ""}),
        ("/console/tempo/bulk-resend", {"since": "yesterday"}),
    ):
        refused[f"{url} {data}"] = client.post(url, data={"csrf_token": token, **data})
    found = {}
    for name, answer in refused.items():
        assert answer.status_code == 422, name
        errors = visible_text(answer.get_data(as_text=True).split("<main", 1)[1])
        wrong = english_or_codes(errors) + [w for w in ("must", "field", "number", "invalid") if w in errors.lower()]
        if wrong:
            found[name] = (wrong, errors[:300])
    assert found == {}, "\n".join(f"{name}: {what}" for name, what in found.items())


def test_every_audit_action_the_package_writes_has_words():
    """A feature that adds an audit action (webhooks, grant keys…) adds its words too: the Indonesian
    audit page would otherwise show the raw code's words in English."""
    import re

    from meter.console.views.labels import ACTIONS

    package = ROOT_DIR / "meter"
    written = set()
    for path in package.rglob("*.py"):
        text = path.read_text()
        for call in re.finditer(r"(?:audit\.record|record_on_sites)\((.{0,300}?)[,)]", text, re.S):
            written |= set(re.findall(r'"([a-z_]+\.[a-z_]+)"', call.group(1)))
    assert len(written) > 15, written  # the calls were found
    assert not written - set(ACTIONS), sorted(written - set(ACTIONS))
