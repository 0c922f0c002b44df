"""Everything the console can show, on one site: readers registered, verified and subscribed (one
signing in with a provider that has a label); every kind and delivery of mail; sessions live, ended
and without a device; keys live and revoked; members of each role, one disabled; audit rows of the
console, of the domain and of the command line; sign-ins by password and by the provider. For the
tests that look at every console page (tests/functional/test_console_language.py, tests/e2e/test_browser_console_pages.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from meter.accounts.models import Reader, ReaderSession
from meter.accounts.rules import passwords
from meter.platform import clock
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.sites.models import Site
from meter.sites.rules import sites
from meter.social.models import Identity
from meter.social.rules import providers
from meter.stats import rules as stats
from tests.conftest import past_the_mail_budget
from tests.console_helpers import create_staff, csrf_of, set_up, sign_in

OWNER = "pemilik@tempo.co"


@dataclass
class Filled:
    owner: object  # the owner's test client, signed in, reading Indonesian
    readers: tuple[int, int, int]  # registered, verified, subscriber
    job: str  # the bulk resend's progress page
    slug: str
    other: str


def _post(client, url: str, **data):
    token = csrf_of(client.get("/console/signin").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def _reader(site_id: int, email: str, verified: bool) -> Reader:
    reader = Reader(site_id=site_id, email=email, email_key=email, password_hash=passwords.hash_password("rahasia-sekali"),
                    verified_at=utcnow() if verified else None)  # fmt: skip
    db.session.add(reader)
    db.session.flush()
    return reader


def fill(app, runner, slug: str, other: str) -> Filled:
    """`slug` and `other` are sites that exist; the owner owns `slug` and supports `other`."""
    runner.invoke(args=["sites", "policy", slug, "--set", "quota.anonymous=1"])
    meter = [
        "--set",
        "meters.koran.quota.verified=2",
        "--set",
        "meters.koran.period=week",
        "--set",
        "sections.koran=koran",
        "--set",
        "meters.koran.rules.pencarian.arrival=search",
        "--set",
        "rules.ramadan.arrival=campaign",
        "--set",
        "rules.ramadan.campaign=ramadan",
    ]
    runner.invoke(args=["sites", "policy", slug, *meter])  # a named meter: on the policy page, its own page, the audit
    runner.invoke(args=["sites", "keys", "create", slug])
    create_staff(runner, OWNER, slug, "owner")
    link = create_staff(runner, OWNER, other, "support")  # a new link: the first is replaced
    create_staff(runner, "redaksi@tempo.co", slug, "editor")
    create_staff(runner, "cs@tempo.co", slug, "support")
    create_staff(runner, "pergi@tempo.co", slug, "support")
    runner.invoke(args=["staff", "disable", "pergi@tempo.co"])
    owner = app.test_client()
    assert sign_in(owner, OWNER, set_up(owner, link)).status_code == 303
    owner.get("/console/?lang=id")

    with app.app_context():
        site = sites.by_slug(slug)
        registered = _reader(site.id, "terdaftar@example.com", verified=False)
        verified = _reader(site.id, "terverifikasi@example.com", verified=True)
        subscriber = _reader(site.id, "pelanggan.setia.dengan.alamat.panjang@example.com", verified=True)
        ids = (registered.id, verified.id, subscriber.id)
        providers.add(db.session.get(Site, site.id), "akun", "google", "tempo-demo-client", "a secret",
                      label="Akun Demo")  # fmt: skip
        db.session.add(Identity(site_id=site.id, reader_id=subscriber.id, provider="akun", subject="sub-1"))
        now = utcnow()
        db.session.add_all([
            ReaderSession(id="s1", reader_id=subscriber.id, device="Chrome · Android @ 203.0.113.0/24",
                          last_used_at=now),
            ReaderSession(id="s2", reader_id=subscriber.id, device="Firefox · Linux", revoked_at=now,
                          last_used_at=now - timedelta(days=1)),
            ReaderSession(id="s3", reader_id=subscriber.id, device=None),
        ])  # fmt: skip
        for kind, extra in (
            ("activation", {"sent_at": now}),
            ("password_reset", {"sent_at": now}),
            ("email_change", {}),
            ("social_link", {"attempts": 2, "last_error": "421 4.7.0 try again later, the server is busy"}),
            ("account_deletion", {"attempts": 12, "dead_at": now, "last_error": "550 5.1.1 no such user here"}),
            ("sign_in_added", {"attempts": 12, "dead_at": now, "last_error": "550 5.1.1 no such user here"}),
        ):
            db.session.add(OutboxMail(site_id=site.id, kind=kind, to_addr=subscriber.email,
                                      subject="Aktifkan akun Tempo Anda", body_text="t", body_html="h",
                                      **extra))  # fmt: skip
        db.session.commit()
        for method in ("password", "akun", "akun"):
            stats.count_event(site.id, "signins", method)

    base = f"/console/{slug}"
    reader = f"{base}/readers/{ids[2]}"
    assert _post(owner, f"{reader}/subscription", until="2099-12-31").status_code == 303
    owner.get(f"{base}/readers?q=ter")
    owner.get(f"{base}/readers/{ids[1]}")
    _post(owner, f"{base}/readers/{ids[0]}/end-sessions")
    _post(owner, f"{base}/readers/{ids[0]}/reset-meter")
    past_the_mail_budget()
    _post(owner, f"{base}/readers/{ids[0]}/resend")
    _post(owner, f"{base}/keys/new")
    made = _post(owner, f"{base}/keys/new").get_data(as_text=True)
    _post(owner, f"{base}/keys/revoke", prefix=made.split('id="new-key" class="key">', 1)[1][:12])
    _post(owner, f"{base}/origins", origin="https://koran.tempo.co")
    _post(owner, f"{base}/origins/remove", origin="https://koran.tempo.co")
    _post(owner, f"{base}/mail/retry", id="999")
    job = _post(owner, f"{base}/bulk-resend", since=clock.now().date().isoformat())
    policy = owner.get(f"{base}/policy").get_data(as_text=True)
    version = policy.split('name="base" type="hidden" value="', 1)[1].split('"', 1)[0]
    shown = _post(owner, f"{base}/policy", preview="1", **policy_fields(version)).get_data(as_text=True)
    shown = shown.split('name="shown" value="', 1)[1].split('"', 1)[0]
    assert _post(owner, f"{base}/policy", save="1", shown=shown, **policy_fields(version)).status_code == 303
    return Filled(owner, ids, job.headers["Location"], slug, other)


def policy_fields(version: str, **changed: str) -> dict:
    return {"base": version, "quota_anonymous": "2", "quota_registered": "0", "quota_verified": "5",
            "period": "week", "timezone": "Asia/Jakarta", "degraded_mode": "allow", "crawlers": "verified",
            "gifts_per_period": "3", "gifts_days": "7", "gifts_devices": "5", **changed}  # fmt: skip


def pages(filled: Filled) -> list[str]:
    """Every console page a member opens with a GET (the policy's preview is a POST: see the tests)."""
    base = f"/console/{filled.slug}"
    return [
        "/console/",
        f"{base}/",
        f"{base}/readers",
        f"{base}/readers?q=e",
        *(f"{base}/readers/{n}" for n in filled.readers),
        f"{base}/bulk-resend",
        filled.job,
        f"{base}/mail",
        f"{base}/policy",
        f"{base}/policy/meters/koran",
        f"{base}/policy/meters/baru",
        f"{base}/policy/rules/default",
        f"{base}/policy/rules/koran",
        f"{base}/keys",
        f"{base}/origins",
        f"{base}/providers",
        f"{base}/staff",
        f"{base}/audit",
        f"/console/{filled.other}/readers",
    ]
