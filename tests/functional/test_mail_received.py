"""Each mail as the reader's mail server receives it: the site's sender and Reply-To, a Message-ID in the
sender's domain, Auto-Submitted, text and HTML as multipart/alternative, every URL of the HTML a link,
the footer's why and where to get help, and lifetimes and the free quota as the configuration says.

The mails come from the real flows (register, register again, ask for a reset) through the worker
and the suite's aiosmtpd server; the raw bytes it received are read as well as the parsed message.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from meter import create_app
from meter.platform import clock, mail
from meter.platform.db import db
from meter.sites.rules import sites
from tests.conftest import LINK_RE, Api, _config_dict, flush_redis, html_of, make_site, past_the_mail_budget, text_of
from tests.paths import TESTS_DIR

PASSWORD = "rahasia-sekali"
SETTINGS = [
    "--mail-from",
    "Tempo <no-reply@tempo.co>",
    "--reply-to",
    "bantuan@tempo.co",
    "--support-url",
    "https://tempo.co/bantuan",
    "--premium-name",
    "Laporan Utama",
    "--colour",
    "#0055aa",
]
URL_RE = re.compile(r"(?:https?://|mailto:|www\.)[^\s<>\"]+")


@pytest.fixture
def build(redis_url, smtp_server, database_url):
    """An app made with the test's own settings (lifetimes), on the test's database."""
    controller, mailbox = smtp_server
    made = []
    flush_redis(redis_url)
    mailbox.clear()
    clock.reset()
    sites.forget_cached()

    def make(**overrides):
        base = {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url, "MAIL_PORT": controller.port}
        app = create_app({**_config_dict(), "MAIL_SERVER": "127.0.0.1", **base, **overrides})
        made.append(app)
        return app, Api(app.test_client(), make_site(app), "tempo")

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()
    clock.reset()
    sites.forget_cached()


def configure(app, *args: str) -> None:
    result = app.test_cli_runner().invoke(args=["sites", "settings", "tempo", *args])
    assert result.exit_code == 0, result.output


def deliver(app) -> None:
    with app.app_context():
        assert mail.deliver_due()[1] == 0


def the_three_mails(app, api, mailbox, address: str, locale: str) -> dict:
    """Activation, "already registered" and password reset, as received, for one reader."""
    received = {}
    assert api.post("/v1/readers", json={"email": address, "password": PASSWORD, "locale": locale}).status_code == 202
    deliver(app)
    received["activation"] = mailbox.to(address)[-1]
    [link] = [u for u in LINK_RE.findall(text_of(received["activation"]["msg"])) if "/activate/" in u]
    token = link.rsplit("/", 1)[1].split("?")[0]  # an English link carries ?lang=en
    assert api.post("/v1/activations", json={"token": token}).status_code == 200
    past_the_mail_budget()
    assert api.post("/v1/readers", json={"email": address, "password": "lain-lagi-dong"}).status_code == 202
    deliver(app)
    received["already_registered"] = mailbox.to(address)[-1]
    assert api.post("/v1/password-resets", json={"email": address}).status_code == 202
    deliver(app)
    received["password_reset"] = mailbox.to(address)[-1]
    assert len(mailbox.to(address)) == 3
    return received


class Links(HTMLParser):
    """The hrefs of an HTML part, and its visible text inside and outside links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.inside: list[tuple[str, str]] = []  # (href, text)
        self.outside: list[str] = []
        self._href: str | None = None
        self._hidden = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")
            self.hrefs.append(self._href)
        elif tag in ("style", "title", "head"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None
        elif tag in ("style", "title", "head"):
            self._hidden -= 1

    def handle_data(self, data):
        if self._hidden:
            return
        if self._href is not None:
            self.inside.append((self._href, data))
        else:
            self.outside.append(data)


def raw_headers(envelope) -> dict[str, str]:
    """The header section as sent (unfolded), before any decoding by a parser."""
    head = envelope["raw"].split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = re.sub(r"\r\n[ \t]+", " ", head)
    return {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in unfolded.split("\r\n")}


def check_links(html: str, text: str) -> list[str]:
    """Every URL in the HTML part is inside an <a href> (as its text, it is that href); every URL of
    the text part is a link of the HTML part. Returns the hrefs."""
    links = Links(html)
    assert URL_RE.findall(" ".join(links.outside)) == [], "a URL outside any link"
    for href, shown in links.inside:
        for url in URL_RE.findall(shown):
            assert url == href, (url, href)
    for url in LINK_RE.findall(text):
        assert url in links.hrefs, url
    return links.hrefs


WORDS = {
    "id": {
        "activation": ("2 hari", "2 artikel gratis setiap bulan, kecuali Laporan Utama"),
        "password_reset": ("30 menit", "Link ini berlaku selama 30 menit"),
        "help": "Butuh bantuan? Kunjungi",
        "why": "Anda menerima email ini karena",
        "button": {
            "activation": "Aktifkan Akun",
            "already_registered": "Masuk",
            "password_reset": "Atur Ulang Kata Sandi",
        },
    },
    "en": {
        "activation": ("2 days", "2 free articles every month, except Laporan Utama"),
        "password_reset": ("30 minutes", "This link is valid for 30 minutes"),
        "help": "Need help? Visit",
        "why": "You received this email because",
        "button": {
            "activation": "Activate account",
            "already_registered": "Log in",
            "password_reset": "Reset password",
        },
    },
}


@pytest.mark.parametrize("locale", ["id", "en"])
def test_every_mail_as_received_follows_the_sites_settings_and_the_configuration(build, mailbox, locale):
    app, api = build(ACTIVATION_MAX_AGE=2 * 86400, RESET_MAX_AGE=30 * 60)
    configure(app, *SETTINGS)
    words = WORDS[locale]
    received = the_three_mails(app, api, mailbox, "pembaca@example.com", locale)

    for kind, envelope in received.items():
        msg, raw = envelope["msg"], raw_headers(envelope)
        assert envelope["from"] == "no-reply@tempo.co", kind  # the envelope sender (Return-Path) too
        assert raw["from"] == "Tempo <no-reply@tempo.co>", raw["from"]  # no encoded-word for an ASCII name
        assert msg["Reply-To"] == "bantuan@tempo.co"
        assert re.fullmatch(r"<[^@<>\s]+@tempo\.co>", msg["Message-ID"]), msg["Message-ID"]
        assert msg["Auto-Submitted"] == "auto-generated"
        assert msg.get_content_type() == "multipart/alternative"
        assert [part.get_content_type() for part in msg.iter_parts()] == ["text/plain", "text/html"]
        assert b"multipart/mixed" not in envelope["raw"]

        text, html = text_of(msg), html_of(msg)
        hrefs = check_links(html, text)
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        assert "https://tempo.co/bantuan" in hrefs and "https://tempo.co/bantuan" in text  # where to get help
        assert words["help"] in text and words["help"] in html
        assert words["why"] in text and words["why"] in html
        button = re.search(r'<td[^>]*bgcolor="#0055aa"[^>]*>\s*<a href="([^"]+)"[^>]*>([^<]+)</a>', html)
        assert button, f"{kind}: no button in the site's colour"
        assert button.group(2) == words["button"][kind]
        assert "#b00" not in html  # the old fixed colour

    activation, reset = received["activation"]["msg"], received["password_reset"]["msg"]
    for part in (text_of(activation), html_of(activation)):
        assert all(phrase in part for phrase in words["activation"]), part
    for part in (text_of(reset), html_of(reset)):
        assert all(phrase in part for phrase in words["password_reset"]), part
    assert "3 hari" not in html_of(activation) and "1 jam" not in html_of(reset)
    assert "3 days" not in html_of(activation) and "1 hour" not in html_of(reset)
    copy = re.search(r'<a href="([^"]+/activate/[^"]+)"[^>]*style="[^"]*word-break:break-all', html_of(activation))
    assert copy, "the copy-this-link URL is a link that breaks anywhere"


def test_the_lifetimes_a_mail_states_are_the_links_lifetimes(build, mailbox):
    app, api = build(ACTIVATION_MAX_AGE=2 * 86400, RESET_MAX_AGE=30 * 60)
    received = the_three_mails(app, api, mailbox, "pembaca@example.com", "id")
    [reset_link] = [u for u in LINK_RE.findall(text_of(received["password_reset"]["msg"])) if "/reset-password/" in u]
    clock.travel(timedelta(minutes=30, seconds=5))  # what the mail said, and a moment more
    answer = api.post(
        "/v1/password-resets/confirm",
        json={"token": reset_link.rsplit("/", 1)[1].split("?")[0], "password": "baru-sekali"},
    )
    assert answer.status_code == 400 and answer.get_json()["type"].endswith("token-expired")

    past_the_mail_budget()
    assert api.post("/v1/readers", json={"email": "baru@example.com", "password": PASSWORD}).status_code == 202
    deliver(app)
    [link] = [u for u in LINK_RE.findall(text_of(mailbox.to("baru@example.com")[-1]["msg"])) if "/activate/" in u]
    assert "2 hari" in text_of(mailbox.to("baru@example.com")[-1]["msg"])
    clock.travel(timedelta(days=2, seconds=5))
    answer = api.post("/v1/activations", json={"token": link.rsplit("/", 1)[1].split("?")[0]})
    assert answer.status_code == 400 and answer.get_json()["type"].endswith("token-expired")


def test_without_settings_the_sender_is_the_sites_name_at_the_default_address(build, mailbox):
    app, api = build()  # ACTIVATION_MAX_AGE and RESET_MAX_AGE as shipped: 3 days, 1 hour
    received = the_three_mails(app, api, mailbox, "pembaca@example.com", "id")
    for kind, envelope in received.items():
        msg = envelope["msg"]
        assert raw_headers(envelope)["from"] == "Tempo <no-reply@localhost>", kind  # MAIL_DEFAULT_SENDER's address
        assert msg["Reply-To"] is None
        assert msg["Message-ID"].endswith("@localhost>")
        assert msg["Auto-Submitted"] == "auto-generated"
        html = html_of(msg)
        check_links(html, text_of(msg))
        assert 'bgcolor="#b00"' in html  # the default colour, which is the site's until it sets one
        assert 'Butuh bantuan? Kunjungi <a href="https://tempo.co"' in html  # no support page: the site itself
    activation = received["activation"]["msg"]
    said = text_of(activation)
    assert "3 hari" in said and "2 artikel gratis setiap bulan:" in said  # no premium section
    assert "kecuali" not in text_of(activation)
    assert "Link ini berlaku selama 1 jam" in text_of(received["password_reset"]["msg"])


def test_the_message_id_is_fixed_when_queued_and_a_name_that_needs_it_is_encoded(build, mailbox):
    app, api = build()
    configure(
        app, "--mail-from", "Témpo Média <kabar@tempo.co>", "--reply-to", "", "--support-url", "mailto:bantuan@tempo.co"
    )
    assert api.post("/v1/readers", json={"email": "pembaca@example.com", "password": PASSWORD}).status_code == 202
    with app.app_context():
        from meter.platform.models import OutboxMail

        row = db.session.scalars(db.select(OutboxMail)).one()
        stored = (row.sender, row.reply_to, row.message_id)
    deliver(app)
    [envelope] = mailbox.to("pembaca@example.com")
    msg = envelope["msg"]
    assert stored[0] == "Témpo Média <kabar@tempo.co>" and stored[1] is None
    assert msg["Message-ID"] == stored[2] and stored[2].endswith("@tempo.co>")
    assert raw_headers(envelope)["from"].startswith("=?utf-8?")  # not ASCII: encoded, as it must be
    [sender] = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Témpo Média", "kabar@tempo.co")
    html = html_of(msg)
    assert 'Butuh bantuan? Kirimkan email ke <a href="mailto:bantuan@tempo.co"' in html
    assert "Butuh bantuan? Kirimkan email ke bantuan@tempo.co" in text_of(msg)


def test_a_reply_to_without_a_support_page_says_reply(build, mailbox):
    app, api = build()
    configure(app, "--reply-to", "redaksi@tempo.co")
    assert api.post("/v1/readers", json={"email": "pembaca@example.com", "password": PASSWORD}).status_code == 202
    deliver(app)
    msg = mailbox.to("pembaca@example.com")[-1]["msg"]
    assert msg["Reply-To"] == "redaksi@tempo.co"
    assert "Butuh bantuan? Balas email ini." in text_of(msg) and "Butuh bantuan? Balas email ini." in html_of(msg)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--mail-from", "Tempo <no-reply@tempo.co>\r\nBcc: evil@example.com"),
        ("--mail-from", "Tempo <not an address>"),
        ("--mail-from", "Tempo <pémbaca@tempo.co>"),
        ("--mail-from", "a <b@c.co>, d <e@f.co>"),
        ("--reply-to", "bantuan@tempo.co, evil@example.com"),
        ("--reply-to", "bantuan"),
        ("--support-url", "javascript:alert(1)"),
        ("--support-url", "tempo.co/bantuan"),
        ("--support-url", "mailto:not-an-address"),
        ("--support-url", "https://tempo.co/a b"),
    ],
)
def test_mail_settings_refuse_what_is_not_one_address_or_url(build, option, value):
    app, _api = build()
    result = app.test_cli_runner().invoke(args=["sites", "settings", "tempo", option, value])
    assert result.exit_code != 0, result.output
    with app.app_context():
        assert not (sites.by_slug("tempo").settings or {}).get(option[2:].replace("-", "_"))


def test_mail_settings_are_shown_normalised_and_cleared_by_an_empty_value(build):
    app, _api = build()
    runner = app.test_cli_runner()
    shown = runner.invoke(args=["sites", "settings", "tempo"]).output
    assert "mail_from\tTempo <no-reply@localhost> (default)" in shown
    assert "reply_to\t-" in shown and "support_url\t-" in shown
    result = runner.invoke(
        args=[
            "sites",
            "settings",
            "tempo",
            "--mail-from",
            '"Tempo, Inc." <No-Reply@TEMPO.co>',
            "--reply-to",
            "x@TEMPO.CO",
        ]
    )
    assert result.exit_code == 0, result.output
    assert 'mail_from\t"Tempo, Inc." <No-Reply@tempo.co>' in result.output
    assert "reply_to\tx@tempo.co" in result.output
    result = runner.invoke(args=["sites", "settings", "tempo", "--mail-from", "kabar@tempo.co"])
    assert "mail_from\tTempo <kabar@tempo.co>" in result.output  # an address alone gets the site's name
    result = runner.invoke(args=["sites", "settings", "tempo", "--mail-from", "", "--reply-to", ""])
    assert "mail_from\tTempo <no-reply@localhost> (default)" in result.output and "reply_to\t-" in result.output


# --- as a reader sees them: the HTML part the server received, in Chromium -----------------------

CHROMIUM = os.environ.get("METER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SHOTS = TESTS_DIR / "screenshots"
MAIL_WIDTHS = (375, 600)


@pytest.mark.browser
@pytest.mark.database_agnostic  # pictures of the mails: the database that queued them does not change them
@pytest.mark.timeout(180)
def test_screenshots_of_every_mail_in_both_languages_at_phone_and_desktop_widths(build, mailbox):
    """tests/screenshots/mail-<kind>-<lang>-<width>.png, to be looked at; and what a look would check
    first: nothing wider than the screen (the 237-character link breaks), the button in the site's
    colour with room around its label."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
    app, api = build()
    configure(app, *SETTINGS)
    received = {lang: the_three_mails(app, api, mailbox, f"pembaca.{lang}@example.com", lang) for lang in ("id", "en")}
    SHOTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for lang, mails in received.items():
                for kind, envelope in mails.items():
                    for width in MAIL_WIDTHS:
                        page = browser.new_page(viewport={"width": width, "height": 800})
                        page.set_content(html_of(envelope["msg"]))
                        overflow = page.evaluate("document.documentElement.scrollWidth")
                        assert overflow <= width, f"{kind} {lang} {width}: {overflow} px wide"
                        cell = page.locator('td[bgcolor="#0055aa"]')
                        colour = cell.evaluate("td => getComputedStyle(td).backgroundColor")
                        assert colour == "rgb(0, 85, 170)", colour
                        box, label = cell.bounding_box(), cell.locator("a").bounding_box()
                        assert box["height"] >= label["height"] + 20 and box["width"] >= label["width"] + 40
                        assert box["x"] + box["width"] <= width
                        page.screenshot(path=str(SHOTS / f"mail-{kind}-{lang}-{width}.png"), full_page=True)
                        page.close()
        finally:
            browser.close()


@pytest.mark.parametrize("sender", ["meter", "", "meter <>"])
def test_the_app_refuses_to_start_without_a_default_sender_address(redis_url, sender):
    with pytest.raises(RuntimeError, match="MAIL_DEFAULT_SENDER"):
        create_app(
            {
                **_config_dict(),
                "SQLALCHEMY_DATABASE_URI": "sqlite://",
                "REDIS_URL": redis_url,
                "MAIL_DEFAULT_SENDER": sender,
            }
        )
