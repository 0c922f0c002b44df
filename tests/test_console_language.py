"""The console in Indonesian says everything in Indonesian: no English word of a short list and no raw
code (`staff.create`, `cli.sites.policy`) in the visible text of any page, with data that puts every
state on the pages (readers registered, verified, subscribed; every kind and delivery of mail; sessions
live and ended; keys live and revoked; members of each role and state; audit rows of the console, of
the domain and of the command line; sign-ins by password and by a provider with a label).

The codes stay in the data and in attributes (`data-action`, `data-kind`): scripts and tests read
those; a person reads the words."""

from __future__ import annotations

import re
from datetime import timedelta

from meter.domain import stats
from meter.domain.social import providers
from meter.infra import clock
from meter.infra.db import db
from meter.infra.models import Identity, OutboxMail, Reader, ReaderSession, Site, utcnow

from .conftest import make_site, past_the_mail_budget
from .console_helpers import create_staff, csrf_of, set_up, sign_in, visible_text

ENGLISH = ("command line", "subscriber", "password", "activation", "verified", "anonymous", "registered",
           "who", "when", "detail", "details", "owner", "support", "queued", "retrying", "revoked", "live",
           "pending", "disabled", "command")  # fmt: skip
WORDS = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in ENGLISH) + r")(?!\w)", re.IGNORECASE)
# A code: lower-case words joined by dots (`staff.create`, `quota.verified`, `cli.sites.policy`), once
# addresses and URLs (which have dots of their own) are taken out of the text.
ADDRESSES = re.compile(r"\S+@\S+|https?://\S+")
CODE = re.compile(r"(?<![\w.])[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+(?![\w.])")


def english_or_codes(text: str) -> list[str]:
    plain = ADDRESSES.sub(" ", text)
    return sorted({m.group(0) for m in WORDS.finditer(plain)} | {m.group(0) for m in CODE.finditer(plain)})


def test_the_checks_catch_what_the_issue_saw():
    seen = "Siapa: command line · staff.create · policy.change · cli.sites.policy · Masuk dengan: password"
    assert english_or_codes(seen) == ["cli.sites.policy", "command line", "password", "policy.change", "staff.create"]
    assert english_or_codes("pembaca@tempo.co · https://koran.tempo.co/x · 3.5 · Rp 1.000") == []


def _post(client, url: str, **data):
    token = csrf_of(client.get("/console/signin").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def _everything(app, runner, api, register, verified_reader, deliver) -> dict:
    """Every state the console can show, on site tempo; the owner's client and the readers' ids."""
    make_site(app, "other", ("https://other.example",))
    runner.invoke(args=["sites", "policy", "tempo", "--set", "quota.anonymous=1"])
    runner.invoke(args=["sites", "keys", "create", "tempo"])
    create_staff(runner, "pemilik@tempo.co", "tempo", "owner")
    link = create_staff(runner, "pemilik@tempo.co", "other", "support")  # a new link: the first is replaced
    create_staff(runner, "redaksi@tempo.co", "tempo", "editor")
    create_staff(runner, "cs@tempo.co", "tempo", "support")
    create_staff(runner, "pergi@tempo.co", "tempo", "support")
    runner.invoke(args=["staff", "disable", "pergi@tempo.co"])
    owner = app.test_client()
    assert sign_in(owner, "pemilik@tempo.co", set_up(owner, link)).status_code == 303
    owner.get("/console/?lang=id")

    register("terdaftar@example.com")
    verified_id, _token = verified_reader("terverifikasi@example.com")
    subscriber_id, _token = verified_reader("pelanggan@example.com")
    with app.app_context():
        site = db.session.get(Site, 1)
        providers.add(site, "akun", "google", "tempo-demo-client", "a secret", label="Akun Demo")
        registered_id = db.session.scalar(db.select(Reader.id).filter_by(email="terdaftar@example.com"))
        db.session.add(Identity(site_id=1, reader_id=subscriber_id, provider="akun", subject="sub-1"))
        now = utcnow()
        db.session.add_all([
            ReaderSession(id="s1", reader_id=subscriber_id, device="Chrome · Android @ 203.0.113.0/24", last_used_at=now),
            ReaderSession(id="s2", reader_id=subscriber_id, device="Firefox · Linux", revoked_at=now,
                          last_used_at=now - timedelta(days=1)),
            ReaderSession(id="s3", reader_id=subscriber_id, device=None),
        ])  # fmt: skip
        for kind, extra in (
            ("password_reset", {"sent_at": now}),
            ("email_change", {}),
            ("social_link", {"attempts": 2, "last_error": "421 try later"}),
            ("account_deletion", {"attempts": 12, "dead_at": now, "last_error": "550 no such user"}),
            ("sign_in_added", {"attempts": 12, "dead_at": now, "last_error": "550 no such user"}),
        ):
            db.session.add(OutboxMail(site_id=1, kind=kind, to_addr="pelanggan@example.com", subject="Subjek",
                                      body_text="t", body_html="h", **extra))  # fmt: skip
        db.session.commit()
        for method in ("password", "akun", "akun"):
            stats.count_event(1, "signins", method)

    reader = f"/console/tempo/readers/{subscriber_id}"
    assert _post(owner, f"{reader}/subscription", until="2099-12-31").status_code == 303
    owner.get("/console/tempo/readers?q=ter")
    owner.get(f"/console/tempo/readers/{verified_id}")
    _post(owner, f"/console/tempo/readers/{registered_id}/end-sessions")
    _post(owner, f"/console/tempo/readers/{registered_id}/reset-meter")
    past_the_mail_budget()
    _post(owner, f"/console/tempo/readers/{registered_id}/resend")
    _post(owner, "/console/tempo/keys/new")
    made = _post(owner, "/console/tempo/keys/new").get_data(as_text=True)
    prefix = made.split('id="new-key" class="key">', 1)[1][:12]
    _post(owner, "/console/tempo/keys/revoke", prefix=prefix)
    _post(owner, "/console/tempo/origins", origin="https://koran.tempo.co")
    _post(owner, "/console/tempo/origins/remove", origin="https://koran.tempo.co")
    _post(owner, "/console/tempo/mail/retry", id="999")
    job = _post(owner, "/console/tempo/bulk-resend", since=clock.now().date().isoformat())
    deliver()
    return {"owner": owner, "readers": (registered_id, verified_id, subscriber_id), "job": job.headers["Location"]}


def test_every_console_page_in_indonesian_has_no_english_and_no_code(
    app, runner, api, register, verified_reader, deliver
):
    made = _everything(app, runner, api, register, verified_reader, deliver)
    owner = made["owner"]
    policy = owner.get("/console/tempo/policy").get_data(as_text=True)
    version = policy.split('name="base" type="hidden" value="', 1)[1].split('"', 1)[0]
    fields = {"base": version, "quota_anonymous": "2", "quota_registered": "0", "quota_verified": "5",
              "period": "week", "timezone": "Asia/Jakarta", "degraded_mode": "allow", "crawlers": "verified",
              "gifts_per_period": "3", "gifts_days": "7", "gifts_devices": "5"}  # fmt: skip
    preview = _post(owner, "/console/tempo/policy", preview="1", **fields)
    shown = preview.get_data(as_text=True).split('name="shown" value="', 1)[1].split('"', 1)[0]
    assert _post(owner, "/console/tempo/policy", save="1", shown=shown, **fields).status_code == 303
    preview = _post(owner, "/console/tempo/policy", preview="1", **{**fields, "quota_verified": "6"})

    pages = {
        "home": owner.get("/console/"),
        "policy preview": preview,
        **{
            path: owner.get(path)
            for path in (
                "/console/tempo/",
                "/console/tempo/readers",
                "/console/tempo/readers?q=e",
                *(f"/console/tempo/readers/{n}" for n in made["readers"]),
                "/console/tempo/bulk-resend",
                made["job"],
                "/console/tempo/mail",
                "/console/tempo/policy",
                "/console/tempo/keys",
                "/console/tempo/origins",
                "/console/tempo/providers",
                "/console/tempo/staff",
                "/console/tempo/audit",
                "/console/other/readers",
            )
        },
    }
    found = {}
    for name, answer in pages.items():
        assert answer.status_code == 200, name
        html = answer.get_data(as_text=True)
        assert '<html lang="id">' in html, name
        wrong = english_or_codes(visible_text(html))
        if wrong:
            found[name] = wrong
    assert found == {}, "\n".join(f"{name}: {wrong}" for name, wrong in found.items())

    audit = pages["/console/tempo/audit"].get_data(as_text=True)
    for action in ("staff.create", "cli.sites.policy", "policy.change", "reader.view", "reader.search",
                   "console.signin", "api_key.revoke", "readers.bulk_resend", "mail.retry"):  # fmt: skip
        assert f'data-action="{action}"' in audit, action  # each kind of row is on the page, said in words
    assert "Baris perintah" in visible_text(audit)
    dashboard = visible_text(pages["/console/tempo/"].get_data(as_text=True))
    assert "Akun Demo: 2" in dashboard and "Kata sandi: 1" in dashboard
    subscriber = visible_text(pages[f"/console/tempo/readers/{made['readers'][2]}"].get_data(as_text=True))
    assert "Kata sandi, Akun Demo" in subscriber and "Pelanggan" in subscriber
    assert "Chrome · Android 203.0.113.0/24" in subscriber and "Firefox · Linux —" in subscriber  # device, network
    assert "Perangkat tidak dikenal" in subscriber


def test_an_action_without_a_label_is_still_words(app):
    from meter.web.console import labels

    with app.test_request_context("/console/?lang=id"):
        assert labels.action("cli.readers.export") == "Perintah flask readers export"
        assert labels.action("something.new_here") == "something new here"
        assert labels.action("staff.create") == "Anggota staf ditambahkan"


def test_every_mail_kind_and_policy_key_has_a_label(app):
    from meter.domain.policy import SCHEMA
    from meter.web.console import labels

    from .mail_kinds import template_kinds

    assert template_kinds() <= set(labels.MAIL_KINDS)
    assert {key.name for key in SCHEMA} <= set(labels.POLICY_KEYS)
