"""Pre-account takeover: whoever proves control of the address ends up the only one with access.

An attacker registers the victim's address with the attacker's password and logs in (an unverified
account can). The victim registers later with their own password and clicks the activation link.
The link is bound to the registration it was mailed for (its password): activating it sets that
password and ends every other session. Over HTTP, with the real mail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import links_in, past_the_mail_budget, text_of, token_of

VICTIM = "korban@example.com"
ATTACKER_PASSWORD = "punya-penyerang"
VICTIM_PASSWORD = "punya-korban-asli"


def registration(api, password: str, email: str = VICTIM, **extra):
    return api.post("/v1/readers", json={"email": email, "password": password, **extra})


def login(api, password: str, email: str = VICTIM):
    return api.post("/v1/sessions", json={"email": email, "password": password})


def last_activation_mail(mailbox, deliver, email: str = VICTIM):
    deliver()
    message = mailbox.to(email)[-1]["msg"]
    [link] = [link for link in links_in(message) if "/activate/" in link]
    return message, token_of(link)


def activate(api, token: str):
    return api.post("/v1/activations", json={"token": token})


def token_state(api, reader_token: str) -> str:
    return api.access("tempo:free:x", cls="free", reader_token=reader_token)["reader"]["token"]


def test_the_victims_activation_ends_the_attackers_access(api, mailbox, deliver):
    """The attack as it was seen: the victim's click verified the account, the victim's password got
    401, the attacker's 200, and the attacker's old token read as `verified` (then `subscriber`)."""
    assert registration(api, ATTACKER_PASSWORD).status_code == 202
    attacker = login(api, ATTACKER_PASSWORD)
    assert attacker.status_code == 200
    attacker_token = attacker.get_json()["reader_token"]
    reader_id = attacker.get_json()["reader"]["reader_id"]

    past_the_mail_budget()
    assert registration(api, VICTIM_PASSWORD).status_code == 202  # the same answer as for a new address
    message, link_token = last_activation_mail(mailbox, deliver)
    activated = activate(api, link_token)
    assert activated.status_code == 200 and activated.get_json()["state"] == "verified"
    victim_token = activated.get_json()["reader_token"]

    assert login(api, VICTIM_PASSWORD).status_code == 200
    assert login(api, ATTACKER_PASSWORD).status_code == 401
    assert token_state(api, attacker_token) == "revoked"
    assert api.get("/v1/readers/me", headers={"X-Reader-Token": attacker_token}).status_code == 401
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    assert api.put(f"/v1/readers/{reader_id}/subscription", json={"until": until}).status_code == 200
    assert token_state(api, attacker_token) == "revoked"  # billing does not bring it back
    answer = api.access("tempo:premium:1", cls="premium", reader_token=attacker_token)
    assert answer["allowed"] is False and answer["reader"]["state"] == "anonymous"
    me = api.get("/v1/readers/me", headers={"X-Reader-Token": victim_token}).get_json()
    assert me["state"] == "subscriber"
    assert "kata sandi baru" in text_of(message)  # the mail said the address was registered again


def test_the_attackers_registration_link_dies_when_the_victim_registers(api, mailbox, deliver):
    """The link of the attacker's registration (mailed to the victim) would install the attacker's
    password: once the victim registered, only the link of the victim's registration works."""
    assert registration(api, ATTACKER_PASSWORD).status_code == 202
    _first, attackers_link = last_activation_mail(mailbox, deliver)
    past_the_mail_budget()
    assert registration(api, VICTIM_PASSWORD).status_code == 202
    _second, victims_link = last_activation_mail(mailbox, deliver)

    dead = activate(api, attackers_link)
    assert dead.status_code == 400 and dead.get_json()["type"].endswith("/token-invalid")
    assert activate(api, victims_link).status_code == 200
    assert login(api, ATTACKER_PASSWORD).status_code == 401
    assert login(api, VICTIM_PASSWORD).status_code == 200
    again = activate(api, attackers_link)  # still nothing after the account is active
    assert again.status_code == 400


def test_until_it_is_activated_the_account_keeps_its_password(api, mailbox, deliver):
    """A registration of an unverified address changes nothing until its link is clicked: a stranger
    typing someone's unverified address cannot lock them out of it."""
    assert registration(api, VICTIM_PASSWORD).status_code == 202
    past_the_mail_budget()
    assert registration(api, ATTACKER_PASSWORD).status_code == 202
    assert login(api, VICTIM_PASSWORD).status_code == 200
    assert login(api, ATTACKER_PASSWORD).status_code == 401


def test_the_registered_again_mail_says_so_in_english_too(api, mailbox, deliver):
    assert registration(api, ATTACKER_PASSWORD).status_code == 202
    first, _ = last_activation_mail(mailbox, deliver)
    assert "new password" not in text_of(first) and "kata sandi baru" not in text_of(first)
    past_the_mail_budget()
    assert registration(api, VICTIM_PASSWORD, locale="en").status_code == 202
    message, _ = last_activation_mail(mailbox, deliver)
    text = text_of(message)
    assert "registered again with a new password" in text and "ignore this email" in text


def test_a_password_reset_of_an_unverified_account_also_ends_the_attackers_access(api, mailbox, deliver):
    """The reset mail proves the address too: the reset verifies the account and ends every session."""
    assert registration(api, ATTACKER_PASSWORD).status_code == 202
    attacker_token = login(api, ATTACKER_PASSWORD).get_json()["reader_token"]
    assert api.post("/v1/password-resets", json={"email": VICTIM}).status_code == 202
    deliver()
    [link] = [link for link in links_in(mailbox.to(VICTIM)[-1]["msg"]) if "/reset-password/" in link]
    reset = api.post(
        "/v1/password-resets/confirm",
        json={"token": token_of(link), "password": VICTIM_PASSWORD},
    )
    assert reset.status_code == 200
    assert token_state(api, attacker_token) == "revoked"
    assert login(api, ATTACKER_PASSWORD).status_code == 401
    me = api.get("/v1/readers/me", headers={"X-Reader-Token": reset.get_json()["reader_token"]}).get_json()
    assert me["state"] == "verified"
