"""The account page `/{site}/account` over HTTP: the login and back, Indonesian and English, CSRF on every
form, password and address changes, sessions with their devices, sign-in methods, the data and deletion."""

from __future__ import annotations

import json
import re
from datetime import datetime

from sqlalchemy import func, select

from meter.accounts.models import Reader
from meter.accounts.rules import passwords
from meter.platform.db import db
from meter.social.models import Identity
from tests.conftest import links_in, past_the_mail_budget

EMAIL = "pembaca@example.com"
PASSWORD = "rahasia-sekali"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; SM-A515F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"


def csrf(html: str) -> str:
    return CSRF_RE.search(html).group(1)


def browser(app, user_agent: str = ANDROID):
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def log_in(client, email=EMAIL, password=PASSWORD, next_url=None):
    page = client.get("/tempo/login", query_string={"next": next_url} if next_url else None)
    data = {"csrf_token": csrf(page.get_data(as_text=True)), "email": email, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post("/tempo/login", data=data)


def account(client, **query):
    return client.get("/tempo/account", query_string=query or None)


def post_form(client, path: str, **fields):
    """POST one of the account page's forms, with the CSRF token of the page."""
    token = csrf(account(client).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **fields})


def test_not_signed_in_goes_to_the_login_page_and_back(app, client, verified_reader):
    verified_reader(EMAIL, PASSWORD)
    away = account(client)
    assert away.status_code == 303 and away.headers["Location"] == "/tempo/login?next=/tempo/account"
    back = log_in(client, next_url="/tempo/account")
    assert back.status_code == 303 and back.headers["Location"] == "/tempo/account"
    assert account(client).status_code == 200
    # only the account page itself: any other path of meter stays refused as a `next`
    other = log_in(app.test_client(), next_url="/tempo/logout")
    assert other.status_code == 200 and "Location" not in other.headers


def test_the_page_in_indonesian_and_english_in_the_sites_colour(app, runner, verified_reader):
    runner.invoke(args=["sites", "settings", "tempo", "--colour", "#1a5f7a"])
    verified_reader(EMAIL, PASSWORD)
    client = browser(app, ANDROID)
    log_in(client)
    html = account(client).get_data(as_text=True)
    for words in (
        "<h1>Akun Saya</h1>",
        EMAIL,
        "Terkonfirmasi",
        "Cara masuk",
        "Email dan kata sandi",
        "Ganti Kata Sandi",
        "Ganti alamat email",
        "Sesi",
        "Chrome · Android",
        "Perangkat ini",
        "Akhiri semua sesi lain",
        "Unduh Data Saya",
        "Hapus Akun Saya",
        "--brand: #1a5f7a",
        'name="viewport"',
    ):
        assert words in html, words
    assert "Perangkat tidak dikenal" in html  # the activation's session, made by the API (no browser)
    english = account(client, lang="en").get_data(as_text=True)
    assert "<h1>My account</h1>" in english and "Change password" in english and "This device" in english
    with app.app_context():
        reader = db.session.scalar(select(Reader))
        reader.subscription_until = datetime(2099, 1, 1, 5)  # naive UTC: noon in Jakarta
        db.session.commit()
    assert "Pelanggan hingga 1 Januari 2099" in account(client, lang="id").get_data(as_text=True)


def test_every_form_needs_its_csrf_token(app, client, verified_reader):
    verified_reader(EMAIL, PASSWORD)
    log_in(client)
    for path in (
        "/tempo/account/password",
        "/tempo/account/email",
        "/tempo/account/sessions/end-others",
        "/tempo/account/sign-ins/google/remove",
        "/tempo/account/delete",
        "/tempo/account/email/anything-at-all",
        "/tempo/account/delete/anything-at-all",
    ):
        response = client.post(path, data={"current_password": PASSWORD, "password": "baru-sekali-123"})
        assert response.status_code == 400, path
    assert client.get("/v1/readers/me").status_code == 401  # (sanity: no API key)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Reader)) == 1


def test_the_header_links_the_account_page_when_signed_in(app, client, verified_reader):
    verified_reader(EMAIL, PASSWORD)
    assert "/tempo/account" not in client.get("/tempo/login").get_data(as_text=True)
    log_in(client)
    assert 'class="account" href="/tempo/account"' in client.get("/tempo/forgot-password").get_data(as_text=True)


def test_changing_the_password_signs_every_other_device_out(app, verified_reader, mailbox, deliver):
    verified_reader(EMAIL, PASSWORD)
    phone, laptop = browser(app, ANDROID), browser(app, IPHONE)
    log_in(phone)
    log_in(laptop)
    html = account(phone).get_data(as_text=True)
    assert "Chrome · Android" in html and "Safari · iPhone" in html and "Akhiri semua sesi lain" in html
    mailbox.clear()

    wrong = post_form(phone, "/tempo/account/password", current_password="bukan-ini", password="sandi-baru-123")
    assert wrong.status_code == 422 and "Kata sandi salah." in wrong.get_data(as_text=True)
    done = post_form(phone, "/tempo/account/password", current_password=PASSWORD, password="sandi-baru-123")
    assert done.status_code == 303 and "meter_r_tempo=" in done.headers["Set-Cookie"]  # a new login for this one
    page = phone.get(done.headers["Location"]).get_data(as_text=True)
    assert "Kata sandi Anda sudah diganti. Semua perangkat lain telah dikeluarkan." in page
    assert account(laptop).status_code == 303  # out
    deliver()
    assert [m["msg"]["Subject"] for m in mailbox.to(EMAIL)] == ["Kata sandi Tempo Anda sudah diganti"]


def test_ending_the_other_sessions_keeps_this_one(app, verified_reader):
    verified_reader(EMAIL, PASSWORD)
    phone, laptop = browser(app, ANDROID), browser(app, IPHONE)
    log_in(phone)
    log_in(laptop)
    ended = post_form(phone, "/tempo/account/sessions/end-others")
    assert ended.status_code == 303
    page = phone.get("/tempo/account").get_data(as_text=True)
    assert "Semua sesi lain telah diakhiri." in page and "Safari · iPhone" not in page
    assert account(laptop).status_code == 303
    assert log_in(laptop).status_code == 200  # the password still works: only the sessions ended


def test_changing_the_address_on_the_page(app, client, verified_reader, mailbox, deliver):
    verified_reader(EMAIL, PASSWORD)
    log_in(client)
    mailbox.clear()
    asked = post_form(client, "/tempo/account/email", email="baru@example.com", password=PASSWORD)
    assert asked.status_code == 303
    page = client.get("/tempo/account").get_data(as_text=True)
    assert "Kami telah mengirim link ke baru@example.com." in page and "Menunggu konfirmasi dari" in page
    deliver()
    link = next(link for link in links_in(mailbox.to("baru@example.com")[0]["msg"]) if "/account/email/" in link)
    path = link.removeprefix("http://meter.test")
    opened = app.test_client().get(path)  # another browser, as a mail app would open it
    assert opened.status_code == 200 and "document.getElementById" in opened.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Reader.email)) == EMAIL  # a GET changes nothing
    other = app.test_client()
    confirmed = other.post(path, data={"csrf_token": csrf(other.get(path).get_data(as_text=True))})
    assert confirmed.status_code == 200
    assert "Alamat akun Anda sekarang baru@example.com." in confirmed.get_data(as_text=True)
    assert "baru@example.com" in account(client).get_data(as_text=True)
    invalid = other.post(path, data={"csrf_token": csrf(other.get(path).get_data(as_text=True))})
    assert invalid.status_code == 400


def test_a_provider_is_removed_only_while_another_way_in_remains(app, client, verified_reader):
    reader_id, _ = verified_reader(EMAIL, PASSWORD)
    with app.app_context():
        site_id = db.session.get(Reader, reader_id).site_id
        db.session.add(Identity(site_id=site_id, reader_id=reader_id, provider="google", subject="g-1"))
        db.session.commit()
    log_in(client)
    html = account(client).get_data(as_text=True)
    assert "/tempo/account/sign-ins/google/remove" in html
    removed = post_form(client, "/tempo/account/sign-ins/google/remove")
    assert removed.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Identity)) == 0
        db.session.add(Identity(site_id=site_id, reader_id=reader_id, provider="google", subject="g-1"))
        db.session.get(Reader, reader_id).password_hash = passwords.UNUSABLE  # Google is now the only way in
        db.session.commit()
    html = account(client).get_data(as_text=True)
    assert "/tempo/account/sign-ins/google/remove" not in html and "Buat Kata Sandi" in html
    refused = post_form(client, "/tempo/account/sign-ins/google/remove")
    assert refused.status_code == 303
    assert "Ini satu-satunya cara Anda masuk" in client.get("/tempo/account").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Identity)) == 1
    assert post_form(client, "/tempo/account/sign-ins/facebook/remove").status_code == 404


def test_download_my_data(app, verified_reader):
    verified_reader(EMAIL, PASSWORD)
    client = browser(app, ANDROID)
    log_in(client)
    response = client.get("/tempo/account/export")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    data = json.loads(response.get_data(as_text=True))
    assert data["account"]["email"] == EMAIL and "Chrome · Android" in {s["device"] for s in data["sessions"]}
    assert app.test_client().get("/tempo/account/export").status_code == 303  # not signed in: nothing


def test_deleting_the_account_on_the_page(app, client, api, verified_reader):
    verified_reader(EMAIL, PASSWORD)
    log_in(client)
    wrong = post_form(client, "/tempo/account/delete", password="bukan-ini")
    assert wrong.status_code == 422
    deleted = post_form(client, "/tempo/account/delete", password=PASSWORD)
    assert deleted.status_code == 200 and "Akun Anda sudah dihapus" in deleted.get_data(as_text=True)
    assert "meter_r_tempo=;" in deleted.headers["Set-Cookie"]
    assert account(client).status_code == 303
    assert api.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD}).status_code == 401


def test_without_a_password_the_deletion_is_confirmed_by_mail(app, client, verified_reader, mailbox, deliver):
    reader_id, _ = verified_reader(EMAIL, PASSWORD)
    log_in(client)
    with app.app_context():
        db.session.get(Reader, reader_id).password_hash = passwords.UNUSABLE
        db.session.commit()
    past_the_mail_budget()
    mailbox.clear()
    asked = post_form(client, "/tempo/account/delete")
    assert asked.status_code == 303
    assert "Klik link itu untuk mengonfirmasi penghapusan." in client.get("/tempo/account").get_data(as_text=True)
    deliver()
    link = next(link for link in links_in(mailbox.to(EMAIL)[0]["msg"]) if "/account/delete/" in link)
    path = link.removeprefix("http://meter.test")
    shown = client.get(path).get_data(as_text=True)
    assert "document.getElementById" not in shown and "Hapus Akun Saya" in shown  # a person presses it
    with app.app_context():
        assert db.session.get(Reader, reader_id) is not None
    done = client.post(path, data={"csrf_token": csrf(shown)})
    assert done.status_code == 200 and "Akun Anda sudah dihapus" in done.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Reader, reader_id) is None
    again = client.post(path, data={"csrf_token": csrf(client.get(path).get_data(as_text=True))})
    assert again.status_code == 400


def test_bad_links_are_pages_not_errors(app, client, verified_reader):
    verified_reader(EMAIL, PASSWORD)
    for path in ("/tempo/account/email/", "/tempo/account/delete/"):
        for token in ("x", "a" * 3000, "%00%ff", "eyJ9.bogus.sig"):
            page = client.get(path + token)
            assert page.status_code in (200, 404), (path, token)
            if page.status_code == 200:
                posted = client.post(path + token, data={"csrf_token": csrf(page.get_data(as_text=True))})
                assert posted.status_code == 400 and "Link tidak valid" in posted.get_data(as_text=True)


def test_the_account_page_leads_back_to_the_article_and_the_site(app, client, verified_reader):
    verified_reader(EMAIL, PASSWORD)
    log_in(client)
    article = "https://tempo.co/koran/beras"
    page = account(client, next=article).get_data(as_text=True)
    assert f'<a href="{article}">← Kembali ke Tempo</a>' in page
    assert '<a href="https://tempo.co/">← Kembali ke Tempo</a>' in account(client).get_data(as_text=True)
    elsewhere = account(client, next="https://evil.example/").get_data(as_text=True)
    assert (
        'href="https://evil.example/">' not in elsewhere and 'href="https://tempo.co/">← Kembali ke Tempo' in elsewhere
    )


def test_after_deletion_or_logout_the_page_offers_no_account_but_the_way_on(app, client, verified_reader):
    verified_reader(EMAIL, PASSWORD)
    log_in(client)
    deleted = post_form(client, "/tempo/account/delete", password=PASSWORD).get_data(as_text=True)
    assert "Akun Anda sudah dihapus" in deleted
    assert 'class="account"' not in deleted  # no "Akun Saya" for the account that is gone
    assert 'href="https://tempo.co/">Kembali ke Tempo</a>' in deleted
    verified_reader("lain@example.com", PASSWORD)
    log_in(client, email="lain@example.com")
    page = client.get("/tempo/logout").get_data(as_text=True)
    out = client.post("/tempo/logout", data={"csrf_token": csrf(page)})
    assert out.status_code == 200 and 'class="account"' not in out.get_data(as_text=True)


def test_sessions_show_device_network_and_last_use_this_device_first(app, verified_reader):
    verified_reader(EMAIL, PASSWORD)
    phone, office = browser(app), browser(app, IPHONE)
    phone.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    office.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    log_in(office)
    log_in(phone)
    page = account(phone).get_data(as_text=True)
    rows = re.findall(r"<li><span><strong>(.*?)</strong>(.*?)</small>", page, re.S)
    assert rows[0][0] == "Chrome · Android"  # this device first
    assert "Perangkat ini" in rows[0][1] and "Jaringan ini · Terakhir dipakai" in rows[0][1]
    [office_row] = [rest for device, rest in rows if device == "Safari · iPhone"]
    assert "Perangkat ini" not in office_row and "Jaringan 198.51.100.0/24 · Terakhir dipakai" in office_row
