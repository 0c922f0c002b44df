"""The reader's way back to the article: a resent link keeps `next`, an activated page without one
offers the site's home, and a mailed link opens its page in the mail's language."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from tests.conftest import links_in, make_site, past_the_mail_budget, token_of
from tests.functional.test_pages import CSRF_RE, csrf, register

ARTICLE = "https://tempo.co/koran/harga-beras"
ENGLISH_BROWSER = {"Accept-Language": "en-US,en;q=0.9"}


def last_activation_link(mailbox, deliver, address="pembaca@example.com") -> str:
    deliver()
    return next(link for link in links_in(mailbox.to(address)[-1]["msg"]) if "/activate/" in link)


def next_of(app, link: str) -> str | None:
    """The `next` an activation link carries (what its page will offer as "Lanjutkan membaca")."""
    from meter.platform import tokens

    with app.app_context():
        return tokens.load(tokens.ACTIVATION, token_of(link)).payload.get("n")


def activated_page(client, link: str, headers=None) -> str:
    path = link.removeprefix("http://meter.test")
    token = csrf(client, path)
    done = client.post(path, data={"csrf_token": token}, headers=headers or {})
    assert done.status_code == 200, done.get_data(as_text=True)
    return done.get_data(as_text=True)


def test_resend_now_keeps_the_way_back_to_the_article(app, client, mailbox, deliver):
    make_site(app)
    sent = register(client, next=ARTICLE)
    assert sent.status_code == 303 and "next=" in sent.headers["Location"]
    assert next_of(app, last_activation_link(mailbox, deliver)) == ARTICLE
    page = client.get(sent.headers["Location"]).get_data(as_text=True)  # the activation-sent page, with its form
    past_the_mail_budget()
    form = dict(zip(("csrf_token",), CSRF_RE.findall(page), strict=False))
    form["next"] = ARTICLE  # the page's hidden field, as the browser sends it
    again = client.post(sent.headers["Location"], data=form)
    assert again.status_code == 200 and "Link sudah kami kirimkan lagi" in again.get_data(as_text=True)
    link = last_activation_link(mailbox, deliver)
    assert next_of(app, link) == ARTICLE
    html = activated_page(client, link)
    assert f'id="continue" href="{ARTICLE}"' in html and "Lanjutkan Membaca" in html


def test_the_apis_resend_and_the_embeds_keep_next_too(app, client, api, register, mailbox, deliver):
    register(next=ARTICLE)
    past_the_mail_budget()
    assert (
        api.post("/v1/readers/resend-activation", json={"email": "pembaca@example.com", "next": ARTICLE}).status_code
        == 202
    )
    assert next_of(app, last_activation_link(mailbox, deliver)) == ARTICLE
    past_the_mail_budget()
    login = api.post("/v1/sessions", json={"email": "pembaca@example.com", "password": "rahasia-sekali"})
    client.set_cookie("meter_r_tempo", login.get_json()["reader_token"])
    headers = {"Origin": "https://tempo.co", "Content-Type": "text/plain"}
    sent = client.post("/embed/tempo/resend", data=json.dumps({"url": ARTICLE}), headers=headers)
    assert sent.status_code == 200
    assert next_of(app, last_activation_link(mailbox, deliver)) == ARTICLE
    past_the_mail_budget()
    foreign = client.post("/embed/tempo/resend", data=json.dumps({"url": "https://evil.example/"}), headers=headers)
    assert foreign.status_code == 200 and next_of(app, last_activation_link(mailbox, deliver)) is None
    past_the_mail_budget()
    garbage = client.post("/embed/tempo/resend", data="not json", headers=headers)
    assert garbage.status_code == 200  # the body is optional: anything but {"url": …} is ignored


def test_an_activated_page_without_next_offers_the_sites_home(app, client, mailbox, deliver):
    make_site(app, origins=("https://www.tempo.co", "https://tempo.co"))
    register(client)
    html = activated_page(client, last_activation_link(mailbox, deliver))
    assert 'id="continue"' not in html
    assert '<a class="button" id="home" href="https://www.tempo.co/">Lanjut ke Tempo</a>' in html


def test_indonesian_mail_links_open_indonesian_pages_in_an_english_browser(app, client, mailbox, deliver):
    make_site(app)
    register(client)
    link = last_activation_link(mailbox, deliver)
    assert parse_qs(urlsplit(link).query) == {"lang": ["id"]}
    confirm_page = client.get(link.removeprefix("http://meter.test"), headers=ENGLISH_BROWSER)
    assert '<html lang="id">' in confirm_page.get_data(as_text=True)
    assert "Email Anda sudah terkonfirmasi" in activated_page(client, link, headers=ENGLISH_BROWSER)


def test_every_mailed_link_carries_the_mails_language(app, api, register, mailbox, deliver):
    register("satu@example.com")
    register("two@example.com", locale="en")
    past_the_mail_budget()
    api.post("/v1/readers", json={"email": "satu@example.com", "password": "rahasia-sekali"})  # "already" mail
    api.post("/v1/password-resets", json={"email": "two@example.com"})
    deliver()
    for address, lang in (("satu@example.com", "id"), ("two@example.com", "en")):
        # meter's own links (a mail's footer may also link the site's help page, which is the site's)
        links = [
            link for m in mailbox.to(address) for link in links_in(m["msg"]) if link.startswith("http://meter.test/")
        ]
        assert links and all(parse_qs(urlsplit(link).query).get("lang") == [lang] for link in links), links


def test_the_quota_walls_date_never_breaks_across_lines(app, client):
    make_site(app, policy={"quota": {"anonymous": 0, "registered": 0, "verified": 0}, "period": "month"})
    body = {"article": {"id": "tempo:koran:a", "class": "metered"}, "record": True, "url": ARTICLE}
    headers = {"Origin": "https://tempo.co", "Content-Type": "text/plain"}
    answer = client.post("/embed/tempo/access", data=json.dumps(body), headers=headers).get_json()
    assert answer["wall"]["kind"] == "quota", answer
    text = answer["wall"]["body"]
    date = text.rsplit("pada ", 1)[1].rstrip(".")
    assert " " not in date and date.count("\u00a0") == 2, repr(date)  # "1 Desember 2026", joined by no-break spaces
