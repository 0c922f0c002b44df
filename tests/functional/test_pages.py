"""Reader pages over HTTP: forms with CSRF, the honeypot, the resend cool-down, friendly activation
results, `next` only to the site's origins, and the language choice (?lang=, cookie, Accept-Language)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from meter.accounts.models import Reader
from meter.platform import clock
from meter.platform.db import db
from meter.platform.models import OutboxMail
from tests.conftest import links_in, make_site, past_the_mail_budget, text_of

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    return CSRF_RE.search(page.get_data(as_text=True)).group(1)


def register(client, email="pembaca@example.com", password="rahasia-sekali", path="/tempo/register", **extra):
    token = csrf(client, path)
    return client.post(path, data={"csrf_token": token, "email": email, "password": password, **extra})


def outbox_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(OutboxMail))


def test_register_page_shows_the_seed_words_and_registers(app, client, mailbox, deliver):
    make_site(app)
    html = client.get("/tempo/register").get_data(as_text=True)
    assert "<h1>Daftar</h1>" in html and 'for="email"' in html and 'for="password"' in html
    assert "Sudah Memiliki Akun?" in html and ">Masuk di Sini</a>" in html
    assert 'name="website"' in html and 'tabindex="-1"' in html  # the honeypot
    response = register(client, next="https://tempo.co/koran/a")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/tempo/activation-sent")
    sent = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Kami telah mengirimkan link aktivasi melalui email ke" in sent
    assert "pembaca@example.com" in sent and "akses membaca 2 artikel gratis" in sent
    assert "Kirimkan Lagi Sekarang" in sent
    assert deliver() == (1, 0)
    [message] = mailbox.to("pembaca@example.com")
    assert message["msg"]["Subject"] == "Aktifkan akun Tempo Anda"


def test_honeypot_answers_alike_and_registers_nobody(app, client):
    make_site(app)
    response = register(client, website="http://spam.example")
    assert response.status_code == 303 and "/activation-sent" in response.headers["Location"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Reader)) == 0
    assert outbox_count(app) == 0


def test_forms_without_csrf_are_refused(app, client):
    make_site(app)
    for path in ("/tempo/register", "/tempo/login", "/tempo/forgot-password", "/tempo/activation-sent"):
        assert client.post(path, data={"email": "a@example.com", "password": "rahasia-sekali"}).status_code == 400


def test_errors_sit_next_to_their_fields(app, client):
    make_site(app)
    short = register(client, password="pendek")
    html = short.get_data(as_text=True)
    assert short.status_code == 422
    assert 'aria-describedby="password-error"' in html and 'id="password-error"' in html
    assert "Kata sandi minimal 8 karakter" in html
    bad = register(client, email="bukan-email")
    assert bad.status_code == 422 and 'id="email-error"' in bad.get_data(as_text=True)


def test_resend_waits_for_the_mail_budget_the_server_keeps(app, client, mailbox, deliver):
    make_site(app)
    register(client)
    page = client.get("/tempo/activation-sent").get_data(as_text=True)
    wait = int(re.search(r"disabled>\s*Kirimkan Lagi Sekarang \((\d+)\)", page).group(1))
    assert 170 < wait <= 180  # RATELIMIT_RESEND_EMAIL: 1 per 3 minutes
    token = CSRF_RE.search(page).group(1)
    early = client.post("/tempo/activation-sent", data={"csrf_token": token})
    assert early.status_code == 429 and int(early.headers["Retry-After"]) > 0
    assert outbox_count(app) == 1
    past_the_mail_budget()
    again = client.post("/tempo/activation-sent", data={"csrf_token": token})
    assert again.status_code == 200 and "Link sudah kami kirimkan lagi" in again.get_data(as_text=True)
    assert outbox_count(app) == 2
    # another browser (no session of its own) is held back by the same address's budget in Redis
    other = app.test_client()
    assert register(other).status_code == 429
    with other.session_transaction() as session:
        session["pending"] = {"email": "pembaca@example.com", "site": 1}
    token = csrf(other, "/tempo/activation-sent")
    assert other.post("/tempo/activation-sent", data={"csrf_token": token}).status_code == 429
    assert outbox_count(app) == 2


def test_activation_sent_without_a_registration_goes_to_register(app, client):
    make_site(app)
    response = client.get("/tempo/activation-sent?next=https://tempo.co/a")
    assert response.status_code == 303 and response.headers["Location"].startswith("/tempo/register")


def _activation_path(mailbox, deliver, address="pembaca@example.com") -> str:
    deliver()
    link = next(link for link in links_in(mailbox.to(address)[-1]["msg"]) if "/activate/" in link)
    return link.removeprefix("http://meter.test")


def test_activation_logs_in_and_friendly_pages_for_used_expired_and_bad_links(app, client, mailbox, deliver):
    make_site(app)
    register(client, next="https://tempo.co/koran/a")
    path = _activation_path(mailbox, deliver)
    token = csrf(client, path)
    done = client.post(path, data={"csrf_token": token})
    html = done.get_data(as_text=True)
    assert "Email Anda sudah terkonfirmasi" in html and 'href="https://tempo.co/koran/a"' in html
    assert "meter_r_tempo=" in done.headers["Set-Cookie"] and "HttpOnly" in done.headers["Set-Cookie"]
    used = client.post(path, data={"csrf_token": token})
    assert "Akun sudah aktif" in used.get_data(as_text=True) and "/tempo/login" in used.get_data(as_text=True)
    bad = client.post("/tempo/activate/not-a-token", data={"csrf_token": token})
    assert bad.status_code == 400 and "Link tidak valid" in bad.get_data(as_text=True)

    register(client, email="lambat@example.com")
    late = _activation_path(mailbox, deliver, "lambat@example.com")
    clock.travel(timedelta(days=4))
    expired = client.post(late, data={"csrf_token": token})
    text = expired.get_data(as_text=True)
    assert expired.status_code == 400 and "Link aktivasi kedaluwarsa" in text
    assert 'action="/tempo/resend-activation"' in text  # a way forward: a new link
    mailbox.clear()
    again = client.post("/tempo/resend-activation", data={"csrf_token": token, "email": "lambat@example.com"})
    assert again.status_code == 303 and "/activation-sent" in again.headers["Location"]
    deliver()
    assert mailbox.to("lambat@example.com")


def test_login_returns_to_next_only_on_the_sites_origins(app, client, verified_reader):
    verified_reader()

    def login(next_url):
        token = csrf(client, "/tempo/login")
        data = {"csrf_token": token, "email": "pembaca@example.com", "password": "rahasia-sekali", "next": next_url}
        return client.post("/tempo/login", data=data)

    good = login("https://tempo.co/koran/a")
    assert good.status_code == 303 and good.headers["Location"] == "https://tempo.co/koran/a"
    for forged in ("https://evil.example/", "//evil.example/", "https://tempo.co.evil.example/", "javascript:alert(1)"):
        answer = login(forged)
        assert answer.status_code == 200, forged
        assert "evil" not in answer.get_data(as_text=True) and "javascript:" not in answer.get_data(as_text=True)
    wrong = client.post(
        "/tempo/login",
        data={"csrf_token": csrf(client, "/tempo/login"), "email": "pembaca@example.com", "password": "salah-sekali"},
    )
    assert wrong.status_code == 422 and "Email atau kata sandi salah" in wrong.get_data(as_text=True)


def test_forgot_password_answers_alike_and_mails_a_known_reader(app, client, verified_reader, mailbox, deliver):
    verified_reader()
    mailbox.clear()
    answers = []
    for address in ("pembaca@example.com", "tidak-ada@example.com"):
        token = csrf(client, "/tempo/forgot-password")
        answers.append(client.post("/tempo/forgot-password", data={"csrf_token": token, "email": address}))
    assert [a.status_code for a in answers] == [200, 200]
    strip = [CSRF_RE.sub("", a.get_data(as_text=True)) for a in answers]
    assert strip[0] == strip[1]  # no enumeration
    deliver()
    assert len(mailbox.messages) == 1 and "reset-password/" in text_of(mailbox.messages[0]["msg"])


def test_language_by_query_then_cookie_then_accept_language_then_site(app, client):
    make_site(app)
    indonesian, english_words = "Sudah Memiliki Akun?", "Already have an account?"  # on the register page
    assert indonesian in client.get("/tempo/register").get_data(as_text=True)
    english = client.get("/tempo/register?lang=en")
    assert english_words in english.get_data(as_text=True) and "meter_lang=en" in english.headers["Set-Cookie"]
    assert english_words in client.get("/tempo/register").get_data(as_text=True)  # the cookie
    assert indonesian in client.get("/tempo/register?lang=id").get_data(as_text=True)
    fresh = app.test_client()
    page = fresh.get("/tempo/register", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert english_words in page and '<html lang="en">' in page
    assert indonesian in fresh.get("/tempo/register", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert indonesian in fresh.get("/tempo/register?lang=xx").get_data(as_text=True)


def test_mail_keeps_the_readers_language_not_the_requests(app, client, mailbox, deliver):
    make_site(app)
    register(client, path="/tempo/register?lang=en")  # registered in English
    deliver()
    [message] = mailbox.to("pembaca@example.com")
    assert message["msg"]["Subject"] == "Activate your Tempo account"
    assert "2 free articles" in text_of(message["msg"])
    mailbox.clear()
    past_the_mail_budget()
    token = csrf(client, "/tempo/activation-sent?lang=id")  # now the pages speak Indonesian
    client.post("/tempo/activation-sent?lang=id", data={"csrf_token": token})
    deliver()
    [again] = mailbox.to("pembaca@example.com")
    assert again["msg"]["Subject"] == "Activate your Tempo account"


def test_unknown_site_is_404(client):
    assert client.get("/nope/register").status_code == 404


def test_site_settings_give_pages_and_walls_their_colour_and_subscribe_url(app, client, runner):
    make_site(app)
    assert "--brand: #b00" in client.get("/tempo/register").get_data(as_text=True)
    result = runner.invoke(
        args=["sites", "settings", "tempo", "--colour", "#0055AA", "--subscribe-url", "https://tempo.co/langganan"]
    )
    assert result.exit_code == 0, result.output
    assert "colour\t#0055aa" in result.output
    assert "--brand: #0055aa" in client.get("/tempo/register").get_data(as_text=True)
    answer = client.post(
        "/embed/tempo/access",
        data='{"article": {"id": "tempo:laput:1", "class": "premium"}}',
        headers={"Origin": "https://tempo.co"},
    ).get_json()
    assert answer["colour"] == "#0055aa" and answer["wall"]["actions"][0]["url"] == "https://tempo.co/langganan"
    for bad in (["--colour", "red;}"], ["--subscribe-url", "https://evil.example/x"]):
        refused = runner.invoke(args=["sites", "settings", "tempo", *bad])
        assert refused.exit_code != 0
    assert runner.invoke(args=["sites", "settings", "nope"]).exit_code != 0


def test_forms_work_over_https_where_csrf_wants_a_same_origin_referer(app, client):
    make_site(app)
    page = client.get("/tempo/login", base_url="https://meter.test")
    assert page.headers["Referrer-Policy"] == "same-origin"  # a browser sends the Referer back to us only
    token = CSRF_RE.search(page.get_data(as_text=True)).group(1)
    data = {"csrf_token": token, "email": "a@example.com", "password": "rahasia-sekali"}
    without = client.post("/tempo/login", data=data, base_url="https://meter.test")
    assert without.status_code == 400  # what "Referrer-Policy: no-referrer" did to every form on HTTPS
    referer = {"Referer": "https://meter.test/tempo/login"}
    with_referer = client.post("/tempo/login", data=data, base_url="https://meter.test", headers=referer)
    assert with_referer.status_code == 422  # the form was read: wrong credentials, not a CSRF refusal
