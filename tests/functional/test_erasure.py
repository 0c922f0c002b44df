"""A reader's data: the export is the database, row by row; deletion leaves nothing that names the person
(and the figures as they were); a reader without a password confirms by mail; operators' commands;
retention by the worker. Over HTTP with the suite's real Redis and SMTP server."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest
from sqlalchemy import func, select

from meter import create_app, worker
from meter.access.models import Unlock, UnlockDoubt
from meter.access.rules import amp_readers
from meter.access.rules.metering import layout
from meter.accounts.models import Reader, ReaderSession
from meter.accounts.rules import devices, passwords
from meter.platform import clock
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.sites.models import Site
from meter.sites.rules import sites
from meter.social.models import Identity
from tests.conftest import _config_dict, links_in, past_the_mail_budget
from tests.faults import TcpProxy

EMAIL = "pembaca@example.com"
PASSWORD = "rahasia-sekali"
RID = "amp-reader-0001"


def iso(value):
    return value.replace(tzinfo=UTC).isoformat() if value is not None else None


def as_reader(token):
    return {"X-Reader-Token": token}


def login(api, email=EMAIL, password=PASSWORD):
    return api.post("/v1/sessions", json={"email": email, "password": password})


def site_info(app):
    return sites.info(db.session.scalars(select(Site)).one())


@pytest.fixture
def rich_reader(app, api, runner, verified_reader, mailbox, deliver):
    """A reader with something in every store: a provider sign-in, three sessions (one ended), unlocks of
    this period and an older one, an unlock in doubt, an AMP link, mails sent and waiting, a pending
    address change, a subscription. Returns (reader_id, reader_token)."""
    runner.invoke(args=["sites", "policy", "tempo", "--set", "quota.verified=5"])
    verified_reader("lain@example.com", "sandi-orang-lain")  # someone else's mail stays someone else's
    reader_id, token = verified_reader(EMAIL, PASSWORD)
    login(api)  # a second session
    third = login(api).get_json()["reader_token"]
    api.delete("/v1/sessions", json={"reader_token": third})
    for article in ("tempo:koran:a", "tempo:koran:b"):
        assert api.access(article, reader_token=token)["reason"] == "unlocked_now"
    assert (
        api.put(f"/v1/readers/{reader_id}/subscription", json={"until": "2099-01-01T00:00:00+07:00"}).status_code == 200
    )
    api.post("/v1/readers/me/email", json={"password": PASSWORD, "email": "baru@example.com"}, headers=as_reader(token))
    with app.app_context():
        db.session.add(
            Identity(
                site_id=site_info(app).id,
                reader_id=reader_id,
                provider="google",
                subject="g-1234567890",
                email="pembaca.g@example.com",
                email_verified=True,
            )
        )
        subject, site_id = layout.reader_subject(reader_id), site_info(app).id
        old = utcnow() - timedelta(days=400)
        db.session.add(
            Unlock(site_id=site_id, subject=subject, period="2020-01", article_id="tempo:lama", unlocked_at=old)
        )
        db.session.add(UnlockDoubt(site_id=site_id, subject=subject, article_id="tempo:ragu"))
        db.session.commit()
        assert amp_readers.link(site_info(app), RID, db.session.get(Reader, reader_id))  # an AMP session
    return reader_id, token


def test_the_export_is_the_database_row_by_row(app, api, rich_reader):
    reader_id, token = rich_reader
    response = api.get("/v1/readers/me/export", headers=as_reader(token))
    assert response.status_code == 200
    data = response.get_json()
    subject = layout.reader_subject(reader_id)
    with app.app_context():
        reader = db.session.get(Reader, reader_id)
        assert data["account"] == {
            "reader_id": reader.id,
            "email": reader.email,
            "pending_email": "baru@example.com",
            "state": "subscriber",
            "locale": reader.locale,
            "has_password": True,
            "created_at": iso(reader.created_at),
            "verified_at": iso(reader.verified_at),
            "last_activation_sent_at": iso(reader.last_activation_sent_at),
            "variant_seed": reader.variant_seed,
        }
        assert data["subscription"] == {"until": iso(reader.subscription_until), "active": True}
        identities = db.session.scalars(select(Identity).filter_by(reader_id=reader_id)).all()
        assert data["identities"] == [
            {
                "provider": i.provider,
                "subject": i.subject,
                "email": i.email,
                "email_verified": i.email_verified,
                "created_at": iso(i.created_at),
                "last_used_at": iso(i.last_used_at),
            }
            for i in identities
        ]
        sessions = db.session.scalars(select(ReaderSession).filter_by(reader_id=reader_id)).all()
        assert len(sessions) == 4 and sum(s.revoked_at is not None for s in sessions) == 1
        assert sorted(data["sessions"], key=lambda s: s["id"]) == sorted(
            (
                {
                    "id": s.id,
                    "device": devices.split(s.device)[0],  # the label and the network it keeps with it
                    "network": devices.split(s.device)[1],
                    "created_at": iso(s.created_at),
                    "last_used_at": iso(s.last_used_at),
                    "revoked_at": iso(s.revoked_at),
                }
                for s in sessions
            ),
            key=lambda s: s["id"],
        )
        unlocks = db.session.scalars(select(Unlock).filter_by(subject=subject)).all()
        assert sorted(data["unlocks"], key=lambda u: u["article_id"]) == sorted(
            (
                {"meter": u.meter, "period": u.period, "article_id": u.article_id, "unlocked_at": iso(u.unlocked_at)}
                for u in unlocks
            ),
            key=lambda u: u["article_id"],
        )
        period = site_info(app).policy.period_at(clock.now()).label
        this_period = {u["article_id"] for u in data["unlocks"] if u["period"] == period}
        assert this_period == {"tempo:koran:a", "tempo:koran:b"}
        [doubt] = db.session.scalars(select(UnlockDoubt).filter_by(subject=subject)).all()
        assert data["unlocks_in_doubt"] == [
            {"meter": "default", "article_id": doubt.article_id, "checked_at": iso(doubt.checked_at)}
        ]
        mails = db.session.scalars(
            select(OutboxMail).where(OutboxMail.to_addr.in_([EMAIL, "baru@example.com"])).order_by(OutboxMail.id)
        ).all()
        assert [m["id"] for m in data["mails"]] == [m.id for m in mails]
        assert {m.to_addr for m in mails} == {EMAIL, "baru@example.com"}  # the confirmation to the new one too
        for exported, row in zip(data["mails"], mails, strict=True):
            assert exported == {
                "id": row.id,
                "kind": row.kind,
                "to": row.to_addr,
                "subject": row.subject,
                "body_text": exported["body_text"],
                "created_at": iso(row.created_at),
                "sent_at": iso(row.sent_at),
                "attempts": row.attempts,
                "dead_at": iso(row.dead_at),
                "last_error": row.last_error,
            }
            assert "http" not in exported["body_text"] and "[link]" in exported["body_text"]  # links masked
    assert data["amp_links"] == [{"rid": RID, "session_id": data["amp_links"][0]["session_id"]}]
    assert data["amp_links"][0]["session_id"] in {s["id"] for s in data["sessions"]}
    assert data["gifts"] == []
    assert data["site"] == {"slug": "tempo", "name": "Tempo"}


def _stats(api) -> dict:
    response = api.get("/v1/stats")
    assert response.status_code == 200
    return response.get_json()


def test_deleting_leaves_nothing_that_names_the_reader_and_the_figures_as_they_were(
    app, api, runner, rich_reader, redis_client, register, mailbox, deliver
):
    reader_id, token = rich_reader
    subject = layout.reader_subject(reader_id)
    with app.app_context():
        worker.run_once()  # the figures rolled up and mail sent, as in production
        site = site_info(app)
        ledger_before = db.session.scalar(select(func.count()).select_from(Unlock))
        others_mail = db.session.scalar(select(func.count()).where(OutboxMail.to_addr == "lain@example.com"))
        state_key, state_field = layout.state_place(site.id, reader_id)
        unlocks_key, unlocks_field = layout.unlock_place(site.id, subject, site.policy.period_at(clock.now()))
        amp_key = amp_readers.key(site.id, RID)
    assert redis_client.hexists(unlocks_key, unlocks_field) and redis_client.exists(amp_key)
    figures = _stats(api)

    wrong = api.delete("/v1/readers/me", json={"password": "bukan-sandinya"}, headers=as_reader(token))
    assert wrong.status_code == 401
    response = api.delete("/v1/readers/me", json={"password": PASSWORD}, headers=as_reader(token))
    assert response.status_code == 204, response.get_data(as_text=True)
    assert not redis_client.hexists(state_key, state_field)
    assert not redis_client.hexists(unlocks_key, unlocks_field)
    assert not redis_client.exists(amp_key)

    assert login(api).status_code == 401
    assert api.access("tempo:koran:c", reader_token=token)["reader"]["token"] in ("invalid", "revoked")
    assert api.get("/v1/readers/me", headers=as_reader(token)).status_code == 401
    shown = runner.invoke(args=["readers", "show", "tempo", EMAIL])
    assert shown.exit_code != 0 and "unknown reader" in shown.output
    assert _stats(api) == figures  # GET /v1/stats unchanged
    with app.app_context():
        assert db.session.get(Reader, reader_id) is None
        for model in (Identity, ReaderSession):
            assert db.session.scalar(select(func.count()).select_from(model).filter_by(reader_id=reader_id)) == 0
        assert db.session.scalar(select(func.count()).where(UnlockDoubt.subject == subject)) == 0
        addressed = OutboxMail.to_addr.in_([EMAIL, "baru@example.com"])
        assert db.session.scalar(select(func.count()).where(addressed)) == 0
        assert db.session.scalar(select(func.count()).where(OutboxMail.to_addr == "lain@example.com")) == others_mail
        subjects = db.session.scalars(select(Unlock.subject)).all()
        assert len(subjects) == ledger_before  # the rows stay for the counts ...
        assert subject not in subjects  # ... and none leads back to the reader, or to each other
        unlinked = [s for s in subjects if s.startswith("x:")]
        assert len(unlinked) == 3 and len(set(unlinked)) == 3

    # the same address registers afresh, with a fresh quota
    past_the_mail_budget()
    link = register(EMAIL, "sandi-baru-sekali")
    activated = api.post("/v1/activations", json={"token": link.rsplit("/activate/", 1)[1].split("?")[0]})
    assert activated.status_code == 200
    fresh = activated.get_json()["reader_token"]
    me = api.get("/v1/readers/me", headers=as_reader(fresh)).get_json()
    assert (me["state"], me["meter"]["used"], me["meter"]["unlocked"]) == ("verified", 0, [])
    assert api.access("tempo:koran:a", reader_token=fresh)["reason"] == "unlocked_now"  # not "already unlocked"


def test_a_reader_without_a_password_confirms_the_deletion_by_mail(app, api, verified_reader, mailbox, deliver):
    reader_id, token = verified_reader(EMAIL, PASSWORD)
    _, other_token = verified_reader("lain@example.com", "sandi-orang-lain")
    with app.app_context():
        reader = db.session.get(Reader, reader_id)
        reader.password_hash = passwords.UNUSABLE  # signs in with Google only
        db.session.add(Identity(site_id=reader.site_id, reader_id=reader_id, provider="google", subject="g-1"))
        db.session.commit()
    past_the_mail_budget()
    mailbox.clear()
    asked = api.delete("/v1/readers/me", json={}, headers=as_reader(token))
    assert asked.status_code == 202 and asked.get_json() == {"status": "confirmation_sent"}
    deliver()
    [mail] = mailbox.to(EMAIL)
    assert mail["msg"]["Subject"] == "Konfirmasi penghapusan akun Tempo Anda"
    link = next(link for link in links_in(mail["msg"]) if "/account/delete/" in link)
    confirm_token = link.split("?")[0].rsplit("/", 1)[1]
    # the link is this reader's only
    refused = api.delete("/v1/readers/me", json={"confirm_token": confirm_token}, headers=as_reader(other_token))
    assert refused.status_code == 400 and refused.get_json()["type"].endswith("/token-invalid")
    bad = api.delete("/v1/readers/me", json={"confirm_token": "bukan-token"}, headers=as_reader(token))
    assert bad.status_code == 400
    assert (
        api.delete("/v1/readers/me", json={"confirm_token": confirm_token}, headers=as_reader(token)).status_code == 204
    )
    with app.app_context():
        assert db.session.get(Reader, reader_id) is None
        assert db.session.scalar(select(func.count()).select_from(Identity)) == 0


def test_a_deletion_link_dies_after_a_day(app, api, verified_reader, mailbox, deliver):
    reader_id, token = verified_reader(EMAIL, PASSWORD)
    with app.app_context():
        db.session.get(Reader, reader_id).password_hash = passwords.UNUSABLE
        db.session.commit()
    past_the_mail_budget()
    mailbox.clear()
    assert api.delete("/v1/readers/me", json={}, headers=as_reader(token)).status_code == 202
    deliver()
    link = next(link for link in links_in(mailbox.to(EMAIL)[0]["msg"]) if "/account/delete/" in link)
    clock.travel(timedelta(days=1, minutes=1))  # (the reader token lives on: READER_TOKEN_MAX_AGE is 30 days)
    expired = api.delete(
        "/v1/readers/me", json={"confirm_token": link.split("?")[0].rsplit("/", 1)[1]}, headers=as_reader(token)
    )
    assert expired.status_code == 400 and expired.get_json()["type"].endswith("/token-expired")
    with app.app_context():
        assert db.session.get(Reader, reader_id) is not None


@pytest.fixture
def proxy(redis_url):
    if redis_url.startswith("redis+cluster://"):
        pytest.skip("one Redis behind one proxy")
    host, port = redis_url.split("//", 1)[1].split("/")[0].split(":")
    proxy = TcpProxy(host, int(port)).start()
    yield proxy
    proxy.stop()


def test_with_redis_away_nothing_is_deleted_and_the_answer_says_try_again(app, api, verified_reader, proxy):
    reader_id, token = verified_reader(EMAIL, PASSWORD)
    cut = create_app(
        {
            **_config_dict(),
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
            "RATELIMIT_ENABLED": False,
        }
    )
    proxy.stop()
    response = cut.test_client().delete(
        "/v1/readers/me",
        json={"password": PASSWORD},
        headers={"Authorization": f"Bearer {api.key}", **as_reader(token)},
    )
    assert response.status_code == 503 and response.headers["Retry-After"]
    with app.app_context():
        assert db.session.get(Reader, reader_id) is not None
    assert login(api).status_code == 200


def test_a_social_link_mailed_before_the_deletion_dies_with_it(app, api, verified_reader, mailbox, deliver):
    from meter.platform import tokens
    from meter.social.rules import accounts as social

    reader_id, token = verified_reader(EMAIL, PASSWORD)

    def mailed_link(subject: str) -> str:
        with app.app_context():
            social.request_link(site_info(app), "facebook", social.Profile(subject), EMAIL, "id", None)
        mailbox.clear()
        deliver()
        mails = [m["msg"] for m in mailbox.to(EMAIL)]  # the link, after the notice of an earlier one's use
        link = next(link for m in mails for link in links_in(m) if "/login/facebook/link/" in link)
        return link.split("?")[0].rsplit("/", 1)[1]

    first = mailed_link("fb-1")
    with app.app_context():  # a pending link does what it says while the account lives: it links
        assert social.confirm_link(site_info(app), "facebook", first).reader.id == reader_id
    second = mailed_link("fb-2")
    assert api.delete("/v1/readers/me", json={"password": PASSWORD}, headers=as_reader(token)).status_code == 204
    with app.app_context():
        with pytest.raises(tokens.TokenError):
            social.confirm_link(site_info(app), "facebook", second)
        assert db.session.scalar(select(func.count()).select_from(Reader)) == 0
        assert db.session.scalar(select(func.count()).select_from(Identity)) == 0


# --- operators ------------------------------------------------------------------------------------


def test_operators_export_and_delete_a_reader(app, api, runner, rich_reader, tmp_path):
    reader_id, token = rich_reader
    printed = runner.invoke(args=["readers", "export", "tempo", "PEMBACA@example.com"])
    assert printed.exit_code == 0, printed.output
    by_operator = json.loads(printed.output)
    by_reader = api.get("/v1/readers/me/export", headers=as_reader(token)).get_json()
    by_operator.pop("exported_at"), by_reader.pop("exported_at")
    by_reader["sessions"] = [{**s, "last_used_at": None} for s in by_reader["sessions"]]
    by_operator["sessions"] = [{**s, "last_used_at": None} for s in by_operator["sessions"]]
    assert by_operator == by_reader
    target = tmp_path / "pembaca.json"
    assert runner.invoke(args=["readers", "export", "tempo", EMAIL, "-o", str(target)]).exit_code == 0
    assert oct(target.stat().st_mode & 0o777) == "0o600" and json.loads(target.read_text())["account"]["email"] == EMAIL

    kept = runner.invoke(args=["readers", "delete", "tempo", EMAIL], input="n\n")
    assert kept.exit_code != 0 and "Aborted" in kept.output
    with app.app_context():
        assert db.session.get(Reader, reader_id) is not None
    deleted = runner.invoke(args=["readers", "delete", "tempo", EMAIL, "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert "deleted pembaca@example.com from tempo" in deleted.output and "3 unlocks unlinked" in deleted.output
    assert login(api).status_code == 401
    again = runner.invoke(args=["readers", "delete", "tempo", EMAIL, "--yes"])
    assert again.exit_code != 0 and "unknown reader" in again.output and "Traceback" not in again.output
    assert runner.invoke(args=["readers", "export", "nosite", EMAIL]).exit_code != 0


# --- retention ------------------------------------------------------------------------------------


def test_the_worker_deletes_accounts_never_activated_and_prunes_old_mail(app, api, register, verified_reader, deliver):
    register("tidak-aktif@example.com", PASSWORD)
    register("pelanggan@example.com", PASSWORD)
    reader_id, _ = verified_reader(EMAIL, PASSWORD)
    with app.app_context():
        customer = db.session.scalar(select(Reader).filter_by(email="pelanggan@example.com"))
        customer.subscription_until = utcnow() + timedelta(days=365)  # billing's customer, never activated
        db.session.commit()
        old_mail = db.session.scalar(select(func.count()).select_from(OutboxMail))
        assert old_mail == 3

    clock.travel(timedelta(days=29))
    with app.app_context():
        worker.run_once()
        assert db.session.scalar(select(func.count()).select_from(Reader)) == 3  # not yet
    register("baru-saja@example.com", PASSWORD)  # made 29 days in: younger than the window
    clock.travel(timedelta(days=2))
    with app.app_context():
        worker.run_once()
        left = set(db.session.scalars(select(Reader.email)))
        assert left == {EMAIL, "pelanggan@example.com", "baru-saja@example.com"}
        mails = db.session.scalars(select(OutboxMail.to_addr)).all()
        assert mails == ["baru-saja@example.com"]  # the sent mail of 31 days ago is gone, the new one stays
        assert db.session.get(Reader, reader_id) is not None
