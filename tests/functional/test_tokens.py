"""Signed tokens: key rotation, purposes, expiry, one-time use, and what revokes a reader token.

Everything goes over HTTP against the app, a real Redis and a real SMTP server, except where a test
needs to sign a token with another key or at another time; that uses meter.tokens itself.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from meter.accounts.models import Reader, ReaderSession
from meter.accounts.rules import confirm
from meter.platform import clock, tokens
from meter.platform.db import db
from tests.conftest import Api, links_in, rebuilt, token_of
from tests.paths import ROOT_DIR

PASSWORD = "rahasia-sekali"
ROOT = ROOT_DIR
PURPOSES = (tokens.ACTIVATION, tokens.RESET, tokens.READER)


# --- helpers -----------------------------------------------------------------------------------


def reset_link(api, mailbox, deliver, address: str) -> str:
    """Ask for a password reset and return the link of the mail that arrives."""
    before = len(mailbox.to(address))
    assert api.post("/v1/password-resets", json={"email": address}).status_code == 202
    deliver()
    mails = mailbox.to(address)
    assert len(mails) == before + 1, "no reset mail arrived"
    return next(link for link in links_in(mails[-1]["msg"]) if "/reset-password/" in link)


def confirm_reset(api, token: str, password: str):
    return api.post("/v1/password-resets/confirm", json={"token": token, "password": password})


def login(api, address: str, password: str):
    return api.post("/v1/sessions", json={"email": address, "password": password})


def me(api, reader_token: str):
    return api.get("/v1/readers/me", headers={"X-Reader-Token": reader_token})


def problem_name(response) -> str:
    assert response.mimetype == "application/problem+json", response.get_data(as_text=True)
    return response.get_json()["type"].rsplit("/problems/", 1)[1]


def reader_row(app, address: str) -> Reader:
    with app.app_context():
        reader = db.session.scalar(select(Reader).filter_by(email=address))
        db.session.expunge(reader)
        return reader


def load_kind(purpose: str, token: str) -> str:
    """'valid', or the TokenError kind."""
    try:
        tokens.load(purpose, token)
    except tokens.TokenError as exc:
        return exc.kind
    return "valid"


# --- key rotation ------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", PURPOSES)
def test_secret_key_fallbacks_verify_old_tokens_and_new_tokens_use_the_current_key(app, purpose):
    def keys(key: str, *fallbacks: str):
        """The app as a deployment with these keys runs it (each rotation step is a restart or reload)."""
        return rebuilt(app, SECRET_KEY=key, SECRET_KEY_FALLBACKS=list(fallbacks)).app_context()

    with keys("key-2025"):
        old = tokens.make(purpose, {"r": 1})
    with keys("key-2026"):
        assert load_kind(purpose, old) == "invalid"  # a rotated-out key is not trusted...
    with keys("key-2026", "key-2024", "key-2025"):
        assert tokens.load(purpose, old).payload == {"r": 1}  # ...unless it is listed as a fallback
        new = tokens.make(purpose, {"r": 2})
    with keys("key-2026"):
        assert tokens.load(purpose, new).payload == {"r": 2}  # signed with the current key
    with keys("key-2025", "key-2024"):
        assert load_kind(purpose, new) == "invalid"  # and with no fallback key


def test_key_rotation_over_http(app, api, register):
    first = token_of(register("satu@example.com"))
    second = token_of(register("dua@example.com"))
    old_key = app.config["SECRET_KEY"]

    rotating = Api(
        rebuilt(app, SECRET_KEY="rotated-key", SECRET_KEY_FALLBACKS=[old_key]).test_client(), api.key, "tempo"
    )
    activated = rotating.post("/v1/activations", json={"token": first})
    assert activated.status_code == 200, activated.get_data(as_text=True)
    reader_token = activated.get_json()["reader_token"]

    rotated = Api(rebuilt(app, SECRET_KEY="rotated-key", SECRET_KEY_FALLBACKS=[]).test_client(), api.key, "tempo")
    assert me(rotated, reader_token).status_code == 200  # issued after rotation: signed with the new key
    late = rotated.post("/v1/activations", json={"token": second})
    assert (late.status_code, problem_name(late)) == (400, "token-invalid")
    assert reader_row(app, "dua@example.com").verified_at is None


@pytest.mark.servers  # a Python process of its own
def test_secret_key_fallbacks_is_read_comma_separated_from_the_environment():
    env = {**os.environ, "SECRET_KEY_FALLBACKS": " old-1 , old-2,,", "METER_ENV": "production"}
    out = subprocess.run(
        [sys.executable, "-c", "import config; print(repr(config.Config.SECRET_KEY_FALLBACKS))"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "['old-1', 'old-2']"


# --- purposes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("made_for", "used_as"), list(itertools.permutations(PURPOSES, 2)))
def test_each_purpose_has_its_own_salt(app, made_for, used_as):
    payload = {"r": 1, "s": 1, "e": "x", "v": 1, "sid": "0" * 32}  # a shape every purpose would accept
    with app.app_context():
        token = tokens.make(made_for, payload)
        assert tokens.load(made_for, token).payload == payload
        assert load_kind(used_as, token) == "invalid"


# --- expiry ------------------------------------------------------------------------------------


def test_activation_links_live_three_days(app, api, register):
    assert app.config["ACTIVATION_MAX_AGE"] == 3 * 24 * 3600
    early = token_of(register("satu@example.com"))
    late = token_of(register("dua@example.com"))

    clock.travel(timedelta(seconds=app.config["ACTIVATION_MAX_AGE"] - 60))
    ok = api.post("/v1/activations", json={"token": early})
    assert ok.status_code == 200 and ok.get_json()["reader_token"]

    clock.travel(timedelta(seconds=120))
    expired = api.post("/v1/activations", json={"token": late})
    assert (expired.status_code, problem_name(expired)) == (400, "token-expired")
    assert reader_row(app, "dua@example.com").verified_at is None

    # The way out the message points to: a new link works.
    fresh = token_of(register("dua@example.com"))
    assert api.post("/v1/activations", json={"token": fresh}).status_code == 200


def test_reset_links_live_one_hour(app, api, register, mailbox, deliver):
    assert app.config["RESET_MAX_AGE"] == 3600
    register("satu@example.com")
    register("dua@example.com")
    early = token_of(reset_link(api, mailbox, deliver, "satu@example.com"))
    late = token_of(reset_link(api, mailbox, deliver, "dua@example.com"))

    clock.travel(timedelta(seconds=app.config["RESET_MAX_AGE"] - 60))
    assert confirm_reset(api, early, "sandi-baru-satu").status_code == 200

    clock.travel(timedelta(seconds=120))
    expired = confirm_reset(api, late, "sandi-baru-dua")
    assert (expired.status_code, problem_name(expired)) == (400, "token-expired")
    assert login(api, "dua@example.com", PASSWORD).status_code == 200  # the password did not change


def test_a_token_dated_in_the_future_is_invalid_not_expired(app, api, register):
    register()
    reader = reader_row(app, "pembaca@example.com")
    with app.app_context():
        clock.travel(timedelta(days=1))
        forged = confirm.activation_token(reader, None)
        clock.travel(timedelta(days=-1))
    response = api.post("/v1/activations", json={"token": forged})
    assert (response.status_code, problem_name(response)) == (400, "token-invalid")


def test_seconds_of_clock_skew_between_servers_are_tolerated(app, api, verified_reader):
    verified_reader()
    with app.app_context():
        session_token = tokens.load(
            tokens.READER, login(api, "pembaca@example.com", PASSWORD).get_json()["reader_token"]
        )
        clock.travel(timedelta(seconds=2))  # the server that signs runs 2 s ahead of the one that checks
        ahead = tokens.make(tokens.READER, session_token.payload)
        clock.travel(timedelta(seconds=-2))
    assert me(api, ahead).status_code == 200
    assert api.access("tempo:koran:a", reader_token=ahead, record=False)["reader"]["token"] == "valid"


# --- one-time use of reset tokens --------------------------------------------------------------


def test_a_reset_token_works_once(app, api, register, mailbox, deliver):
    register()
    token = token_of(reset_link(api, mailbox, deliver, "pembaca@example.com"))
    first = confirm_reset(api, token, "sandi-baru-satu")
    assert first.status_code == 200 and first.get_json()["reader_token"]
    again = confirm_reset(api, token, "sandi-baru-dua")
    assert (again.status_code, problem_name(again)) == (400, "token-invalid")
    assert login(api, "pembaca@example.com", "sandi-baru-satu").status_code == 200
    assert login(api, "pembaca@example.com", "sandi-baru-dua").status_code == 401


def test_a_reset_token_dies_when_another_reset_changed_the_password(app, api, register, mailbox, deliver):
    register()
    older = token_of(reset_link(api, mailbox, deliver, "pembaca@example.com"))
    clock.travel(timedelta(minutes=5))  # tokens asked for in the same second are identical
    newer = token_of(reset_link(api, mailbox, deliver, "pembaca@example.com"))
    assert older != newer
    assert confirm_reset(api, newer, "sandi-baru-satu").status_code == 200
    stale = confirm_reset(api, older, "sandi-baru-dua")
    assert (stale.status_code, problem_name(stale)) == (400, "token-invalid")
    assert login(api, "pembaca@example.com", "sandi-baru-satu").status_code == 200


def test_two_simultaneous_confirmations_of_one_reset_token_exactly_one_wins(app, api, register, mailbox, deliver):
    register()
    for round_ in range(3):
        token = token_of(reset_link(api, mailbox, deliver, "pembaca@example.com"))
        passwords = [f"sandi-baru-{round_}-a", f"sandi-baru-{round_}-b"]
        barrier = threading.Barrier(2, timeout=30)
        results: list = [None, None]

        def confirm_in_thread(i: int, token=token, barrier=barrier, passwords=passwords, results=results) -> None:
            client = app.test_client()  # its own client; each request pushes its own app context
            headers = {"Authorization": f"Bearer {api.key}"}
            body = {"token": token, "password": passwords[i]}
            barrier.wait()
            response = client.post("/v1/password-resets/confirm", json=body, headers=headers)
            results[i] = (response.status_code, response.get_json())

        threads = [threading.Thread(target=confirm_in_thread, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(r is not None for r in results), results

        statuses = [status for status, _ in results]
        assert sorted(statuses) == [200, 400], results
        winner, loser = (0, 1) if statuses[0] == 200 else (1, 0)
        assert results[loser][1]["type"].endswith("/problems/token-invalid")
        assert me(api, results[winner][1]["reader_token"]).status_code == 200
        assert login(api, "pembaca@example.com", passwords[winner]).status_code == 200
        assert login(api, "pembaca@example.com", passwords[loser]).status_code == 401
        assert reader_row(app, "pembaca@example.com").auth_version == 2 + round_  # bumped once per round


# --- activation links --------------------------------------------------------------------------


def test_an_activation_link_dies_when_the_email_changes(app, api, register, mailbox, deliver):
    token = token_of(register())
    with app.app_context():
        reader = db.session.scalar(select(Reader).filter_by(email="pembaca@example.com"))
        reader.email, reader.email_key = "baru@example.com", "baru@example.com"
        db.session.commit()
    dead = api.post("/v1/activations", json={"token": token})
    assert (dead.status_code, problem_name(dead)) == (400, "token-invalid")
    assert reader_row(app, "baru@example.com").verified_at is None

    # A link mailed to the new address does work.
    assert api.post("/v1/readers/resend-activation", json={"email": "baru@example.com"}).status_code == 202
    deliver()
    [mail] = mailbox.to("baru@example.com")
    link = next(link for link in links_in(mail["msg"]) if "/activate/" in link)
    assert api.post("/v1/activations", json={"token": token_of(link)}).status_code == 200


def readable_payload(token: str) -> dict:
    """What anyone holding a link can read of it without the key: its payload is signed, not encrypted."""
    from itsdangerous import URLSafeTimedSerializer

    _signature_ok, payload = URLSafeTimedSerializer("not-the-key").loads_unsafe(token)
    return payload


def test_a_link_does_not_confirm_a_guessed_address(app, api, register, mailbox, deliver):
    """The attack: a link's payload held `sha256(email)[:16]`; whoever had the link (a forwarded mail,
    a proxy log) could check a guessed address offline. Now it holds an HMAC under the secret key."""
    address = "tebakan@example.com"
    activation = token_of(register(address))
    reset = token_of(reset_link(api, mailbox, deliver, address))
    guesses = [hashlib.new(name, address.encode()).hexdigest() for name in ("sha256", "sha1", "md5", "sha512")]
    for token in (activation, reset):
        payload = readable_payload(token)
        assert payload.get("e"), payload  # the token is still bound to the address...
        for value in payload.values():
            if isinstance(value, str) and len(value) >= 8:
                assert not any(value in guess for guess in guesses), (token, value)  # ...but says nothing of it
    with app.app_context():  # keyed: the same address under another key has another fingerprint
        ours = tokens.fingerprint("activation-email", address)
    with rebuilt(app, SECRET_KEY="another-key").app_context():
        assert tokens.fingerprint("activation-email", address) != ours
        assert tokens.fingerprint("reset-email", address) != tokens.fingerprint("activation-email", address)
    assert api.post("/v1/activations", json={"token": activation}).status_code == 200


def test_an_activation_link_used_twice_is_not_a_login_link(app, api, register):
    token = token_of(register())
    first = api.post("/v1/activations", json={"token": token})
    assert first.status_code == 200
    body = first.get_json()
    assert body["state"] == "verified" and body["reader_token"]
    with app.app_context():
        sessions_before = db.session.scalar(select(func.count()).select_from(ReaderSession))

    second = api.post("/v1/activations", json={"token": token})
    assert second.status_code == 200
    again = second.get_json()
    assert (again["reader_id"], again["state"]) == (body["reader_id"], "verified")
    assert "reader_token" not in again
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReaderSession)) == sessions_before


# --- what revokes a reader token ---------------------------------------------------------------


def test_logout_revokes_the_token_everywhere(app, api, verified_reader):
    _, token = verified_reader()
    other = login(api, "pembaca@example.com", PASSWORD).get_json()["reader_token"]  # another device
    warm = api.access("tempo:koran:a", reader_token=token, record=False)  # the reader state is cached now
    assert warm["reader"] == {"state": "verified", "token": "valid"}
    assert me(api, token).status_code == 200

    out = api.delete("/v1/sessions", json={"reader_token": token})
    assert (out.status_code, out.get_data()) == (204, b"")

    after = api.access("tempo:koran:a", reader_token=token)
    assert after["reader"] == {"state": "anonymous", "token": "revoked"}
    assert (after["allowed"], after["reason"], after["meter"]["used"]) == (False, "registration_required", 0)
    gone = me(api, token)
    assert gone.status_code == 401 and problem_name(gone) == "token-invalid"
    # Only that session ended: the other device is still logged in.
    assert api.access("tempo:koran:a", reader_token=other, record=False)["reader"]["token"] == "valid"
    assert me(api, other).status_code == 200


def test_a_password_reset_revokes_every_older_reader_token(app, api, verified_reader, mailbox, deliver):
    _, from_activation = verified_reader()
    from_logins = [login(api, "pembaca@example.com", PASSWORD).get_json()["reader_token"] for _ in range(2)]
    older = [from_activation, *from_logins]
    for token in older:
        assert api.access("tempo:koran:a", reader_token=token, record=False)["reader"]["token"] == "valid"

    reset = token_of(reset_link(api, mailbox, deliver, "pembaca@example.com"))
    confirmed = confirm_reset(api, reset, "sandi-baru-sekali")
    assert confirmed.status_code == 200
    fresh = confirmed.get_json()["reader_token"]

    for token in older:
        answer = api.access("tempo:koran:a", reader_token=token, record=False)
        assert answer["reader"] == {"state": "anonymous", "token": "revoked"}
        assert me(api, token).status_code == 401
    assert api.access("tempo:koran:a", reader_token=fresh, record=False)["reader"] == {
        "state": "verified",
        "token": "valid",
    }
    assert me(api, fresh).status_code == 200
    assert login(api, "pembaca@example.com", PASSWORD).status_code == 401
    assert login(api, "pembaca@example.com", "sandi-baru-sekali").status_code == 200


def test_wrong_password_and_unknown_email_get_the_identical_answer(app, api, verified_reader):
    verified_reader()
    wrong_password = login(api, "pembaca@example.com", "salah-sekali")
    unknown_email = login(api, "tidak-ada@example.com", PASSWORD)
    malformed_email = login(api, "bukan-alamat", PASSWORD)
    assert wrong_password.status_code == unknown_email.status_code == malformed_email.status_code == 401
    assert wrong_password.get_data() == unknown_email.get_data() == malformed_email.get_data()
    assert problem_name(wrong_password) == "invalid-credentials"

    def headers(response) -> dict:
        return {k: v for k, v in response.headers.items() if k.lower() not in ("date", "x-request-id")}

    assert headers(wrong_password) == headers(unknown_email) == headers(malformed_email)
    assert login(api, "pembaca@example.com", PASSWORD).status_code == 200  # the account itself is fine
