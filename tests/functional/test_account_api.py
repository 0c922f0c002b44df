"""The reader's own account over the API (X-Reader-Token), with the suite's real Redis and SMTP server:
change the password (every session ends, a notice), change the address (a link to the new address,
a notice to the old, no hint when the address is taken), and the bad input around them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from meter.accounts.models import Reader
from meter.platform import clock
from meter.platform.db import db
from tests.conftest import links_in, past_the_mail_budget, text_of

EMAIL = "pembaca@example.com"
PASSWORD = "rahasia-sekali"
NEW_PASSWORD = "kata-sandi-baru-123"


def me(api, token):
    return api.get("/v1/readers/me", headers={"X-Reader-Token": token})


def login(api, email, password):
    return api.post("/v1/sessions", json={"email": email, "password": password})


def token_state(api, token) -> str:
    return api.access("tempo:koran:cek", reader_token=token, record=False)["reader"]["token"]


def as_reader(token):
    return {"X-Reader-Token": token}


def link_with(message, part: str) -> str:
    return next(link for link in links_in(message) if part in link)


def token_of(link: str) -> str:
    return link.split("?")[0].rsplit("/", 1)[1]


# --- the password ---------------------------------------------------------------------------------


def test_changing_the_password_ends_every_session_and_mails_a_notice(app, api, verified_reader, mailbox, deliver):
    _, first = verified_reader(EMAIL, PASSWORD)
    second = login(api, EMAIL, PASSWORD).get_json()["reader_token"]  # another device
    assert token_state(api, first) == token_state(api, second) == "valid"  # both cached in Redis now
    mailbox.clear()

    response = api.post(
        "/v1/readers/me/password",
        json={"current_password": PASSWORD, "password": NEW_PASSWORD},
        headers=as_reader(first),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    new = response.get_json()["reader_token"]

    assert token_state(api, first) == "revoked"  # the token that asked, too
    assert token_state(api, second) == "revoked"
    assert me(api, first).status_code == me(api, second).status_code == 401
    assert token_state(api, new) == "valid" and me(api, new).status_code == 200
    assert login(api, EMAIL, PASSWORD).status_code == 401
    assert login(api, EMAIL, NEW_PASSWORD).status_code == 200

    deliver()
    [notice] = mailbox.to(EMAIL)
    assert notice["msg"]["Subject"] == "Kata sandi Tempo Anda sudah diganti"
    assert "/tempo/forgot-password" in text_of(notice["msg"])


def test_a_wrong_current_password_is_401_and_changes_nothing(app, api, verified_reader, mailbox, deliver):
    _, token = verified_reader(EMAIL, PASSWORD)
    mailbox.clear()
    wrong = api.post(
        "/v1/readers/me/password",
        json={"current_password": "bukan-ini-sandinya", "password": NEW_PASSWORD},
        headers=as_reader(token),
    )
    assert wrong.status_code == 401 and wrong.get_json()["type"].endswith("/invalid-credentials")
    short = api.post(
        "/v1/readers/me/password", json={"current_password": PASSWORD, "password": "pendek"}, headers=as_reader(token)
    )
    assert short.status_code == 422 and "password" in short.get_json()["errors"]
    assert token_state(api, token) == "valid"
    assert login(api, EMAIL, PASSWORD).status_code == 200
    deliver()
    assert mailbox.to(EMAIL) == []


def test_without_a_live_reader_token_every_row_is_401(app, api, verified_reader):
    _, token = verified_reader(EMAIL, PASSWORD)
    api.delete("/v1/sessions", json={"reader_token": token})  # logged out: the token is revoked
    calls = (
        ("post", "/v1/readers/me/password", {"current_password": PASSWORD, "password": NEW_PASSWORD}),
        ("post", "/v1/readers/me/email", {"password": PASSWORD, "email": "lain@example.com"}),
        ("get", "/v1/readers/me/export", None),
        ("delete", "/v1/readers/me", {"password": PASSWORD}),
    )
    for headers in ({}, as_reader(token), as_reader("bukan-token-sama-sekali")):
        for method, path, body in calls:
            kwargs = {"headers": headers} if body is None else {"json": body, "headers": headers}
            response = getattr(api, method)(path, **kwargs)
            assert response.status_code == 401, (method, path, headers)
            assert response.mimetype == "application/problem+json"
    assert login(api, EMAIL, PASSWORD).status_code == 200  # nothing changed


def test_guessing_the_password_with_a_stolen_session_is_limited(app, api, verified_reader):
    _, token = verified_reader(EMAIL, PASSWORD)
    answers = [
        api.post(
            "/v1/readers/me/password",
            json={"current_password": f"tebakan-{n}", "password": NEW_PASSWORD},
            headers=as_reader(token),
        ).status_code
        for n in range(6)
    ]
    assert answers == [401] * 5 + [429]
    right = api.post(
        "/v1/readers/me/password",
        json={"current_password": PASSWORD, "password": NEW_PASSWORD},
        headers=as_reader(token),
    )
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0


# --- the address ----------------------------------------------------------------------------------


def test_changing_the_address_takes_effect_when_the_new_address_confirms(app, api, verified_reader, mailbox, deliver):
    _, token = verified_reader(EMAIL, PASSWORD)
    mailbox.clear()
    response = api.post(
        "/v1/readers/me/email", json={"password": PASSWORD, "email": "Baru@Example.com"}, headers=as_reader(token)
    )
    assert response.status_code == 202 and response.get_json() == {"status": "confirmation_sent"}
    deliver()
    assert mailbox.to(EMAIL) == []  # nothing to the old address yet
    [confirmation] = mailbox.to("Baru@example.com")
    assert confirmation["msg"]["Subject"] == "Konfirmasi alamat email baru Tempo Anda"
    link = link_with(confirmation["msg"], "/account/email/")
    # until the click: the old address logs in, the new one does not
    assert login(api, EMAIL, PASSWORD).status_code == 200
    assert login(api, "baru@example.com", PASSWORD).status_code == 401
    assert me(api, token).get_json()["email"] == EMAIL

    confirmed = api.post("/v1/email-changes/confirm", json={"token": token_of(link)})
    assert confirmed.status_code == 200 and confirmed.get_json() == {"email": "Baru@example.com"}
    assert login(api, "baru@example.com", PASSWORD).status_code == 200
    assert login(api, EMAIL, PASSWORD).status_code == 401
    assert me(api, token).get_json()["email"] == "Baru@example.com"  # the session lives on

    deliver()
    [notice] = mailbox.to(EMAIL)
    assert notice["msg"]["Subject"] == "Alamat email Tempo Anda sudah diganti"
    assert "Baru@example.com" in text_of(notice["msg"])
    again = api.post("/v1/email-changes/confirm", json={"token": token_of(link)})
    assert again.status_code == 400 and again.get_json()["type"].endswith("/token-invalid")


def test_an_address_taken_on_the_site_gives_no_hint(app, api, verified_reader, mailbox, deliver):
    verified_reader("pemilik@example.com", "sandi-pemilik-1")
    past_the_mail_budget()
    _, token = verified_reader(EMAIL, PASSWORD)
    mailbox.clear()
    answers = []
    for address in ("pemilik@example.com", "bebas@example.com"):
        response = api.post(
            "/v1/readers/me/email", json={"password": PASSWORD, "email": address}, headers=as_reader(token)
        )
        answers.append((response.status_code, response.get_data()))
        export = api.get("/v1/readers/me/export", headers=as_reader(token)).get_json()
        assert export["account"]["pending_email"] == address  # the reader sees the same either way
    assert answers[0] == answers[1] == (202, answers[0][1])
    deliver()
    [taken] = mailbox.to("pemilik@example.com")
    assert taken["msg"]["Subject"] == "Anda sudah memiliki akun Tempo"
    assert not [link for link in links_in(taken["msg"]) if "/account/email/" in link]
    [free] = mailbox.to("bebas@example.com")
    assert link_with(free["msg"], "/account/email/")
    with app.app_context():
        owner = db.session.scalar(select(Reader).filter_by(email="pemilik@example.com"))
        assert owner is not None and owner.pending_email is None


def test_a_change_link_dies_with_a_later_request_and_after_a_day(app, api, verified_reader, mailbox, deliver):
    _, token = verified_reader(EMAIL, PASSWORD)
    for address in ("satu@example.com", "dua@example.com"):
        assert (
            api.post(
                "/v1/readers/me/email", json={"password": PASSWORD, "email": address}, headers=as_reader(token)
            ).status_code
            == 202
        )
    deliver()
    first = token_of(link_with(mailbox.to("satu@example.com")[-1]["msg"], "/account/email/"))
    second = token_of(link_with(mailbox.to("dua@example.com")[-1]["msg"], "/account/email/"))
    refused = api.post("/v1/email-changes/confirm", json={"token": first})
    assert refused.status_code == 400 and refused.get_json()["type"].endswith("/token-invalid")
    clock.travel(timedelta(days=1, minutes=1))
    expired = api.post("/v1/email-changes/confirm", json={"token": second})
    assert expired.status_code == 400 and expired.get_json()["type"].endswith("/token-expired")
    assert login(api, EMAIL, PASSWORD).status_code == 200


def test_the_new_address_spends_its_mail_budget(app, api, verified_reader, mailbox, deliver):
    _, token = verified_reader(EMAIL, PASSWORD)
    body = {"password": PASSWORD, "email": "baru@example.com"}
    assert api.post("/v1/readers/me/email", json=body, headers=as_reader(token)).status_code == 202
    again = api.post("/v1/readers/me/email", json=body, headers=as_reader(token))
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0
    deliver()
    assert len(mailbox.to("baru@example.com")) == 1


@pytest.mark.config(RATELIMIT_ACCOUNT_CHANGE="100/minute")  # every attempt counts; this test makes many
def test_bad_address_changes_are_refused_without_a_trace(app, api, verified_reader, mailbox, deliver):
    _, token = verified_reader(EMAIL, PASSWORD)
    mailbox.clear()
    for body, status in (
        ({"password": PASSWORD, "email": "bukan-alamat"}, 422),
        ({"password": PASSWORD, "email": "PEMBACA@example.com"}, 422),  # the account's own, in other case
        ({"password": PASSWORD, "email": 12}, 422),
        ({"password": "salah-sekali-ini", "email": "baru@example.com"}, 401),
        ({"email": "baru@example.com"}, 422),
    ):
        response = api.post("/v1/readers/me/email", json=body, headers=as_reader(token))
        assert response.status_code == status, (body, response.get_data(as_text=True))
    for raw in (b"", b"{", b"[]", b'"x"'):
        response = api.post(
            "/v1/readers/me/email",
            data=raw,
            headers={**as_reader(token), "Content-Type": "application/json"},
        )
        assert response.status_code in (400, 422)
    for token_value in ("", "x" * 5000, "abc", 7):
        response = api.post("/v1/email-changes/confirm", json={"token": token_value})
        assert response.status_code in (400, 422)
    deliver()
    assert mailbox.messages == []
    with app.app_context():
        assert db.session.scalar(select(Reader.pending_email)) is None


@pytest.mark.config(RATELIMIT_ACCOUNT_CHANGE="100/minute")
def test_bad_deletions_and_password_changes_are_4xx_and_delete_nothing(app, api, verified_reader):
    reader_id, token = verified_reader(EMAIL, PASSWORD)
    headers = {**as_reader(token), "Content-Type": "application/json"}
    for raw, status in (
        (b"", 400),
        (b"{", 400),
        (b"[]", 422),
        (b'{"password": 5}', 422),
        (b'{"confirm_token": ""}', 422),
        (b'{"confirm_token": "' + b"x" * 5000 + b'"}', 422),
        (b'{"confirm_token": "bukan-token-sama-sekali"}', 400),
        (b"{}", 401),  # an account with a password: the password is required
        (b'{"password": "salah-sekali-ini"}', 401),
        (b"\xff\xfe", 400),
    ):
        response = api.delete("/v1/readers/me", data=raw, headers=headers)
        assert response.status_code == status, (raw, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
    for body in ({}, {"current_password": PASSWORD}, {"current_password": PASSWORD, "password": 12345678}):
        response = api.post("/v1/readers/me/password", json=body, headers=as_reader(token))
        assert response.status_code == 422, body
    with app.app_context():
        assert db.session.get(Reader, reader_id) is not None
    assert login(api, EMAIL, PASSWORD).status_code == 200
