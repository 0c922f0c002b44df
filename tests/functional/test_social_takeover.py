"""A provider identity joins an existing account only when its owner asks: signed in, from "Akun Saya", or
by pressing the button of a mail that says exactly what it does. Every sign-in method added to an
account is mailed to its address as a notice. Over HTTP against the stand-in's Facebook and Apple
(tests/social_standin.py), with the real mail.

The attack these hold: an identity without an address asks meter for one, gets the victim's typed in,
and the victim (or a mail scanner running the page's script) clicks what looked like an activation mail.
"""

from __future__ import annotations

import re

import requests
from sqlalchemy import select

from meter.accounts.models import Reader
from meter.platform.db import db
from meter.social.models import Identity
from tests.conftest import html_of, links_in, past_the_mail_budget, text_of
from tests.functional.test_account_pages import account, csrf, log_in
from tests.functional.test_social import apple_form_post, count, facebook_redirect, form_of, path_of, reader_token_of

from . import test_social as social

# the site with Apple and Facebook pointed at the stand-in (tests/functional/test_social.py's fixtures)
standin, api, site, apple, facebook = social.standin, social.api, social.site, social.apple, social.facebook

VICTIM = "korban@example.com"
VICTIM_PASSWORD = "sandi-korban-asli"
NEWCOMER = "pendatang.baru@example.com"
SELF_SUBMIT = re.compile(r"\.submit\(\)|requestSubmit|http-equiv=\"refresh\"", re.I)


def ask_for_address(client, facebook, address: str, **user):
    """An identity with no address at Facebook signs in; `address` is typed on meter's address page."""
    response = facebook_redirect(client, facebook, email=None, **user)
    assert response.status_code == 303 and response.headers["Location"].endswith("/tempo/login/facebook/address")
    _action, fields = form_of(client.get("/tempo/login/facebook/address").get_data(as_text=True))
    past_the_mail_budget()  # the victim's address had its activation mail a moment ago
    return client.post("/tempo/login/facebook/address", data={**fields, "email": address})


def last_mail(mailbox, deliver, address: str):
    deliver()
    return mailbox.to(address)[-1]["msg"]


def link_of(message, part: str) -> str:
    [link] = [u for u in links_in(message) if part in u]
    return link


def identities(app) -> list[tuple[int, str, str]]:
    with app.app_context():
        return [(i.reader_id, i.provider, i.subject) for i in db.session.scalars(select(Identity))]


def reader_id(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Reader.id).filter_by(email=email))


# --- the takeover ---------------------------------------------------------------------------------------


def test_the_address_page_cannot_link_a_strangers_identity_to_a_verified_account(
    app, client, facebook, verified_reader, mailbox, deliver
):
    victim_id, _token = verified_reader(VICTIM, VICTIM_PASSWORD)
    attacker = app.test_client()
    sent = ask_for_address(attacker, facebook, VICTIM, id="66666", name="Penyerang")
    assert sent.status_code == 200 and VICTIM in sent.get_data(as_text=True)

    message = last_mail(mailbox, deliver, VICTIM)
    text = text_of(message)
    # not the activation mail: a mail of its own that says what the link does, and whose identity it is
    assert "Aktifkan" not in message["Subject"] and "Terima kasih telah mendaftar" not in text
    assert message["Subject"] == "Hubungkan akun Facebook ke akun Tempo Anda?"
    assert "Hubungkan akun Facebook" in text and "Penyerang" in text and "66666" in text
    link = link_of(message, "/tempo/login/facebook/link/")

    # a mail scanner (or the victim) opens the link: a page with a button, and nothing is linked
    scanner = app.test_client()
    page = scanner.get(path_of(link))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and not SELF_SUBMIT.search(html)
    assert "Hubungkan akun Facebook" in html and "Penyerang" in html and VICTIM in html
    assert identities(app) == []
    # without the form's CSRF token a POST links nothing either
    assert scanner.post(path_of(link)).status_code == 400
    assert identities(app) == []

    # the attacker signs in with the same identity again: asked for an address again, not the victim
    again = facebook_redirect(attacker, facebook, email=None, id="66666", name="Penyerang")
    assert again.status_code == 303 and again.headers["Location"].endswith("/tempo/login/facebook/address")
    assert not any(c.startswith("meter_r_tempo=") for c in again.headers.getlist("Set-Cookie"))
    assert count(app, Identity) == 0
    # the victim's password still works, and the victim's account has no other way in
    assert log_in(app.test_client(), VICTIM, VICTIM_PASSWORD).status_code in (200, 303)
    assert reader_id(app, VICTIM) == victim_id


def test_the_owner_who_presses_the_button_links_it_and_is_told(
    app, client, facebook, verified_reader, mailbox, deliver
):
    victim_id, _token = verified_reader(VICTIM, VICTIM_PASSWORD)
    ask_for_address(client, facebook, VICTIM, id="77777", name="Korban di Facebook")
    link = link_of(last_mail(mailbox, deliver, VICTIM), "/tempo/login/facebook/link/")
    owner = app.test_client()
    _action, fields = form_of(owner.get(path_of(link)).get_data(as_text=True))
    done = owner.post(path_of(link), data=fields)
    assert done.status_code == 200 and reader_token_of(done)
    assert identities(app) == [(victim_id, "facebook", "77777")]
    notice = last_mail(mailbox, deliver, VICTIM)
    assert notice["Subject"] == "Facebook sekarang bisa dipakai untuk masuk ke akun Tempo Anda"
    assert "Jika bukan Anda, hapus di Akun Saya" in text_of(notice)
    assert link_of(notice, "/tempo/account").endswith("/tempo/account?lang=id")


def test_the_link_page_does_not_submit_itself(app, client, facebook, mailbox, deliver):
    ask_for_address(client, facebook, NEWCOMER)
    link = link_of(last_mail(mailbox, deliver, NEWCOMER), "/tempo/login/facebook/link/")
    html = app.test_client().get(path_of(link)).get_data(as_text=True)
    assert not SELF_SUBMIT.search(html) and "<script" not in html.split("<main", 1)[-1]
    assert count(app, Reader) == 0 and count(app, Identity) == 0


def test_a_new_address_gets_a_mail_that_says_it_is_a_sign_in_with_the_provider(app, client, facebook, mailbox, deliver):
    ask_for_address(client, facebook, NEWCOMER, id="88888", name="Pendatang")
    message = last_mail(mailbox, deliver, NEWCOMER)
    text = text_of(message)
    assert "Facebook" in message["Subject"] and "Terima kasih telah mendaftar" not in text
    assert "melalui Facebook" in text
    link = link_of(message, "/tempo/login/facebook/link/")
    newcomer = app.test_client()
    _action, fields = form_of(newcomer.get(path_of(link)).get_data(as_text=True))
    done = newcomer.post(path_of(link), data=fields)
    assert done.status_code == 200 and reader_token_of(done)
    assert identities(app) == [(reader_id(app, NEWCOMER), "facebook", "88888")]
    deliver()
    assert len(mailbox.to(NEWCOMER)) == 1  # a new account: its first way in needs no notice


def test_the_page_after_the_address_form_reads_the_same_for_an_account_and_for_none(
    app, facebook, verified_reader, mailbox, deliver
):
    verified_reader(VICTIM, VICTIM_PASSWORD)
    pages = []
    for address in (VICTIM, NEWCOMER):
        sent = ask_for_address(app.test_client(), facebook, address)
        assert sent.status_code == 200
        pages.append(re.sub(r'nonce="[^"]+"', "", sent.get_data(as_text=True)).replace(address, "ADDRESS"))
    assert pages[0] == pages[1]


def test_the_english_mail_names_the_provider_and_the_identity(app, facebook, verified_reader, mailbox, deliver):
    verified_reader(VICTIM, VICTIM_PASSWORD)
    client = app.test_client()
    client.get("/tempo/login?lang=en")  # the language cookie
    ask_for_address(client, facebook, VICTIM, id="55555", name="<b>Mallory</b>")
    message = last_mail(mailbox, deliver, VICTIM)
    assert message["Subject"] == "Connect your Facebook account to your Tempo account?"
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in html_of(message) and "<b>Mallory</b>" not in html_of(message)


# --- the notice for every new way in ----------------------------------------------------------------------


def test_a_verified_address_linked_automatically_is_told_to_the_owner(app, apple, verified_reader, mailbox, deliver):
    victim_id, _token = verified_reader(VICTIM, VICTIM_PASSWORD)
    response = apple_form_post(app.test_client(), apple, sub="apple.korban", email=VICTIM, email_verified="true")
    assert response.status_code == 303
    assert identities(app) == [(victim_id, "apple", "apple.korban")]
    notice = last_mail(mailbox, deliver, VICTIM)
    assert notice["Subject"] == "Apple sekarang bisa dipakai untuk masuk ke akun Tempo Anda"
    assert "Jika bukan Anda, hapus di Akun Saya" in text_of(notice)
    assert link_of(notice, "/tempo/account")


def signed_in_owner(app, verified_reader):
    victim_id, _token = verified_reader(VICTIM, VICTIM_PASSWORD)
    owner = app.test_client()
    log_in(owner, VICTIM, VICTIM_PASSWORD)
    return victim_id, owner


def connect(owner, standin, provider="facebook", **user):
    """Press "connect" on the account page and walk the stand-in's Facebook back to meter."""
    standin.facebook_user = {**standin.facebook_user, **user}
    html = account(owner).get_data(as_text=True)
    assert f'action="/tempo/login/{provider}/connect"' in html
    started = owner.post(f"/tempo/login/{provider}/connect", data={"csrf_token": csrf(html)})
    assert started.status_code == 302, started.get_data(as_text=True)[:300]
    answer = requests.get(started.headers["Location"], allow_redirects=False, timeout=5)
    return owner.get(path_of(answer.headers["Location"]))


def test_the_owner_connects_a_provider_from_the_account_page(app, facebook, verified_reader, mailbox, deliver):
    victim_id, owner = signed_in_owner(app, verified_reader)
    back = connect(owner, facebook, id="12345", email=None)  # no address needed: the owner is signed in
    assert back.status_code == 303 and back.headers["Location"].endswith("/tempo/account")
    assert identities(app) == [(victim_id, "facebook", "12345")]
    page = account(owner).get_data(as_text=True)
    assert "Facebook" in page and 'action="/tempo/account/sign-ins/facebook/remove"' in page
    notice = last_mail(mailbox, deliver, VICTIM)
    assert notice["Subject"] == "Facebook sekarang bisa dipakai untuk masuk ke akun Tempo Anda"
    # the identity now signs the owner in
    signed = facebook_redirect(app.test_client(), facebook, id="12345", email=None)
    assert signed.status_code == 303 and signed.headers["Location"].startswith("https://tempo.co/")


def test_connect_needs_the_csrf_token_and_a_signed_in_owner(app, client, facebook, verified_reader):
    _victim_id, owner = signed_in_owner(app, verified_reader)
    assert owner.post("/tempo/login/facebook/connect").status_code == 400
    stranger = client.post("/tempo/login/facebook/connect", data={"csrf_token": "x"})
    assert stranger.status_code in (303, 400) and count(app, Identity) == 0


def test_an_identity_of_another_account_is_not_moved_by_connect(app, facebook, verified_reader, mailbox, deliver):
    other = facebook_redirect(app.test_client(), facebook, id="99999", email="lain@example.com")
    assert other.status_code == 303
    before = identities(app)
    _victim_id, owner = signed_in_owner(app, verified_reader)
    back = connect(owner, facebook, id="99999")
    assert back.status_code == 303 and identities(app) == before


def test_connect_after_the_session_ended_links_nothing(app, facebook, verified_reader):
    _victim_id, owner = signed_in_owner(app, verified_reader)
    facebook.facebook_user = {**facebook.facebook_user, "id": "4242"}
    html = account(owner).get_data(as_text=True)
    started = owner.post("/tempo/login/facebook/connect", data={"csrf_token": csrf(html)})
    answer = requests.get(started.headers["Location"], allow_redirects=False, timeout=5)
    out = owner.post("/tempo/logout", data={"csrf_token": csrf(owner.get("/tempo/logout").get_data(as_text=True))})
    assert out.status_code in (200, 303)  # the session ends before the provider answers
    owner.get(path_of(answer.headers["Location"]))
    assert count(app, Identity) == 0


# --- an iss that names another issuer, with a state that is nobody's ----------------------------------------


def test_an_iss_mismatch_with_a_bogus_state_is_a_400(app, client, apple):
    response = client.get("/tempo/login/apple/callback?code=x&state=not-a-state&iss=https://evil.example")
    assert response.status_code == 400 and "Proses masuk ini sudah kedaluwarsa" in response.get_data(as_text=True)
