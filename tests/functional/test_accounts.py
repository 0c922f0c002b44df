"""Accounts: normalised addresses, generic answers, the activation page, /v1/readers/me."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from meter.accounts.models import Reader
from meter.platform.db import db
from meter.platform.models import OutboxMail
from tests.conftest import past_the_mail_budget


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_address_case_forms_find_one_account(app, api, mailbox, deliver):
    assert (
        api.post("/v1/readers", json={"email": "Mike.Smith@Example.com", "password": "rahasia-sekali"}).status_code
        == 202
    )
    past_the_mail_budget()
    again = api.post("/v1/readers", json={"email": "MIKE.SMITH@EXAMPLE.COM", "password": "lain-lagi-123"})
    assert again.status_code == 202
    assert count(app, Reader) == 1
    deliver()
    # both mails went to the address as first stored, never to the variant typed the second time
    recipients = {rcpt for m in mailbox.messages for rcpt in m["to"]}
    assert recipients == {"Mike.Smith@example.com"}


def test_unicode_domains_are_one_domain_and_mailed_in_punycode(app, api, mailbox, deliver):
    assert (
        api.post("/v1/readers", json={"email": "ohm@\u2126.example", "password": "rahasia-sekali"}).status_code == 202
    )
    past_the_mail_budget()
    assert (
        api.post("/v1/readers", json={"email": "ohm@\u03c9.example", "password": "rahasia-sekali"}).status_code == 202
    )
    assert count(app, Reader) == 1  # OHM SIGN and omega are one domain
    deliver()
    assert {rcpt for m in mailbox.messages for rcpt in m["to"]} == {"ohm@" + "\u03c9.example".encode("idna").decode()}


def test_non_ascii_local_parts_are_refused_clearly(app, api):
    response = api.post("/v1/readers", json={"email": "m\u0131ke@example.com", "password": "rahasia-sekali"})
    assert response.status_code == 422
    assert "email" in response.get_json()["errors"]
    assert count(app, Reader) == 0


def test_taken_unverified_and_unknown_addresses_answer_alike(app, api, verified_reader, register):
    verified_reader("taken@example.com")
    register("pending@example.com")
    past_the_mail_budget()
    answers = []
    for address in ("taken@example.com", "pending@example.com", "nobody@example.com"):
        for path, body in (
            ("/v1/readers", {"email": address, "password": "rahasia-sekali"}),
            ("/v1/readers/resend-activation", {"email": address}),
            ("/v1/password-resets", {"email": address}),
        ):
            response = api.post(path, json=body)
            answers.append((path, response.status_code, response.get_data()))
    by_path: dict[str, set] = {}
    for path, status, data in answers:
        by_path.setdefault(path, set()).add((status, data))
    assert all(len(variants) == 1 for variants in by_path.values()), by_path
    wrong_password = api.post("/v1/sessions", json={"email": "taken@example.com", "password": "salah-salah-salah"})
    unknown = api.post("/v1/sessions", json={"email": "nobody@example.com", "password": "salah-salah-salah"})
    assert wrong_password.status_code == unknown.status_code == 401
    assert wrong_password.get_data() == unknown.get_data()


def test_readers_me_shows_state_and_meter(api, verified_reader):
    reader_id, token = verified_reader()
    api.access("tempo:koran:a", reader_token=token)
    me = api.get("/v1/readers/me", headers={"X-Reader-Token": token})
    assert me.status_code == 200
    body = me.get_json()
    assert (body["reader_id"], body["email"], body["state"]) == (reader_id, "pembaca@example.com", "verified")
    assert body["meter"]["used"] == 1 and body["meter"]["remaining"] == 1
    assert body["meter"]["unlocked"] == ["tempo:koran:a"]


def test_subscription_needs_an_offset(api, verified_reader):
    reader_id, _ = verified_reader()
    response = api.put(f"/v1/readers/{reader_id}/subscription", json={"until": "2030-01-01T00:00:00"})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "until" in response.get_json()["errors"]


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_activation_page_get_changes_nothing_and_post_activates(app, client, api, register):
    link = register(next="https://tempo.co/koran/a")
    path = link.removeprefix("http://meter.test")
    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'method="post"' in html and "Aktifkan Akun" in html
    with app.app_context():
        assert db.session.scalar(select(Reader.verified_at)) is None  # a link scanner activates nothing

    done = client.post(path, data={"csrf_token": _csrf(html)})
    assert done.status_code == 200
    text = done.get_data(as_text=True)
    assert "sudah terkonfirmasi" in text and 'href="https://tempo.co/koran/a"' in text
    with app.app_context():
        assert db.session.scalar(select(Reader.verified_at)) is not None
    again = client.post(path, data={"csrf_token": _csrf(html)})
    assert "Akun sudah aktif" in again.get_data(as_text=True)


def test_activation_page_never_returns_to_a_foreign_origin(client, register):
    link = register(next="https://evil.example/phish")
    path = link.removeprefix("http://meter.test").split("?")[0]  # the link's own ?lang=id replaced by en
    html = client.get(path + "?lang=en").get_data(as_text=True)
    done = client.post(path + "?lang=en", data={"csrf_token": _csrf(html)})
    text = done.get_data(as_text=True)
    assert "Your email is confirmed" in text
    assert "evil.example" not in text


def test_activation_page_without_csrf_is_refused(app, client, register):
    path = register().removeprefix("http://meter.test")
    assert client.post(path).status_code == 400
    with app.app_context():
        assert db.session.scalar(select(Reader.verified_at)) is None


def test_reset_password_page(app, client, api, verified_reader, mailbox, deliver):
    _, old_token = verified_reader()
    api.post("/v1/password-resets", json={"email": "pembaca@example.com"})
    mailbox.clear()
    deliver()
    [mail] = mailbox.messages
    link = next(w for w in mail["msg"].get_body(("plain",)).get_content().split() if "/reset-password/" in w)
    path = link.removeprefix("http://meter.test")
    html = client.get(path).get_data(as_text=True)
    short = client.post(path, data={"csrf_token": _csrf(html), "password": "pendek"})
    assert short.status_code == 422 and 'aria-invalid="true"' in short.get_data(as_text=True)
    done = client.post(path, data={"csrf_token": _csrf(html), "password": "kata-sandi-baru"})
    assert done.status_code == 200
    login = api.post("/v1/sessions", json={"email": "pembaca@example.com", "password": "kata-sandi-baru"})
    assert login.status_code == 200
    assert api.access("tempo:koran:a", reader_token=old_token)["reader"]["token"] == "revoked"
    assert count(app, OutboxMail) >= 2
