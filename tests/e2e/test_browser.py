"""The reader's journey in a real browser: Playwright driving Debian's Chromium against a live server.

The server is meter itself (werkzeug, threaded, on a free loopback port) with the demo publisher site
at /demo-site/, the suite's real Redis and real SMTP server. Screenshots of the register page, the
activation-sent page and the quota wall, at phone (390px) and desktop (1280px) widths, are written
to tests/screenshots/. Skipped, with the reason printed, only where Chromium cannot be had.
"""

from __future__ import annotations

import os
import re
import threading
import time

import pytest
from werkzeug.serving import make_server

from meter import create_app
from meter.dev.redis_server import free_port
from meter.platform import clock, mail
from meter.platform.db import db
from meter.sites.rules import sites
from tests.conftest import _config_dict, links_in, past_the_mail_budget
from tests.paths import TESTS_DIR

pytestmark = [pytest.mark.database_agnostic, pytest.mark.browser, pytest.mark.xdist_group("browser")]

CHROMIUM = os.environ.get("METER_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = TESTS_DIR / "screenshots"
WIDTHS = {"phone": 390, "desktop": 1280}
EMAIL = "pembaca.baru@example.com"
PASSWORD = "rahasia-sekali"

if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"Chromium not found at {CHROMIUM}: browser tests skipped (make test installs it with apt-get when root)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
expect = sync_api.expect


class LiveServer:
    def __init__(self, app, port: int) -> None:
        self.app, self.base = app, f"http://127.0.0.1:{port}"
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def deliver(self) -> None:
        with self.app.app_context():
            mail.deliver_due()


@pytest.fixture
def live(redis_url, smtp_server, database_url):
    import redis as redis_lib

    controller, mailbox = smtp_server
    redis_lib.Redis.from_url(redis_url).flushall()
    mailbox.clear()
    sites.forget_cached()
    clock.reset()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(
        {
            **_config_dict(),
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": controller.port,
            "PUBLIC_BASE_URL": base,
            "DEMO_SITE": True,
        }
    )
    with app.app_context():
        sites.create_site("demo", "Demo Tempo", [base])
    server = LiveServer(app, port)
    server.thread.start()
    yield server
    server.server.shutdown()
    clock.reset()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": WIDTHS["desktop"], "height": 900}, locale="id-ID")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def shoot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)
        page.screenshot(path=str(SHOTS / f"{name}-{label}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})


def answered(page, state: str) -> None:
    page.wait_for_selector(f"article[data-meter-state={state}]")


def test_the_newcomer_journey_through_the_demo_site(live, page, mailbox):
    base = live.base
    article = f"{base}/demo-site/koran-harga-beras"
    page.goto(article)
    answered(page, "refused")
    wall = page.locator(".meter-wall-register")
    assert wall.is_visible() and "Daftar untuk terus membaca" in wall.inner_text()
    assert page.locator("[data-meter-body]").is_hidden()

    wall.get_by_role("link", name="Daftar di Sini").click()
    page.wait_for_url(re.compile(r"/demo/register\?"))
    assert page.locator("h1").inner_text() == "Daftar"
    assert page.get_by_label("Email").is_visible()
    honeypot = page.locator("#website").bounding_box()  # off-screen for people, there for bots
    assert honeypot["x"] + honeypot["width"] <= 0
    shoot(page, "register")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Kata sandi (minimal 8 karakter)").fill(PASSWORD)
    page.get_by_role("button", name="Daftar").click()

    page.wait_for_url(re.compile(r"/demo/activation-sent"))
    assert page.locator("#address").inner_text() == EMAIL
    assert "akses membaca 2 artikel gratis" in page.locator(".benefit").inner_text()
    resend = page.locator("#resend")
    assert resend.is_disabled() and re.search(r"Kirimkan Lagi Sekarang \(\d+\)", resend.inner_text())
    shoot(page, "activation-sent")

    live.deliver()
    [message] = mailbox.to(EMAIL)
    [link] = [link for link in links_in(message["msg"]) if "/activate/" in link]
    assert link.startswith(f"{base}/demo/activate/")
    page.goto(link)  # the confirm page submits its POST by itself
    page.wait_for_selector("text=Email Anda sudah terkonfirmasi")
    page.get_by_role("link", name="Lanjutkan Membaca").click()

    page.wait_for_url(article)
    answered(page, "allowed")
    assert page.locator("[data-meter-body]").is_visible()
    assert page.locator(".meter-banner").inner_text() == "1 artikel gratis tersisa"

    page.goto(f"{base}/demo-site/koran-transportasi")
    answered(page, "allowed")
    assert page.locator(".meter-banner").inner_text() == "0 artikel gratis tersisa"

    page.goto(f"{base}/demo-site/majalah-tambang")
    answered(page, "refused")
    quota = page.locator(".meter-wall-quota")
    assert "Anda sudah membaca semua artikel gratis" in quota.inner_text()
    assert page.locator("[data-meter-body]").is_hidden()
    shoot(page, "quota-wall")

    page.goto(article)  # re-reading an unlocked article is free
    answered(page, "allowed")

    page.goto(f"{base}/demo-site/laput-anggaran")
    answered(page, "refused")
    assert "Artikel ini khusus pelanggan" in page.locator(".meter-wall-subscribe").inner_text()

    page.goto(f"{base}/demo/logout")
    page.get_by_role("button", name="Keluar").click()
    page.wait_for_selector("text=Anda sudah keluar")
    page.goto(f"{base}/demo-site/nato-siagakan-pasukan")
    answered(page, "allowed")
    assert page.locator("[data-meter-body]").is_visible()
    assert page.locator(".meter-wall").count() == 0
    page.goto(article)  # logged out again: the wall, not the reader's unlocks
    answered(page, "refused")


def test_resend_cool_down_is_visible_and_english_with_lang(live, page):
    page.goto(f"{live.base}/demo/register?lang=en")
    assert page.locator("h1").inner_text() == "Register"
    page.get_by_label("Email").fill("reader@example.com")
    page.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/demo/activation-sent"))  # English sticks (cookie), without ?lang
    resend = page.locator("#resend")
    first = resend.inner_text()
    assert resend.is_disabled() and re.fullmatch(r"Resend now \((\d+)\)", first)
    # The page's CSP forbids eval, so no wait_for_function; expect polls without it, for as long as the
    # page's one-second timer takes on a busy machine (a fixed 1.5 s wait read it before it ticked).
    expect(resend).not_to_have_text(first, timeout=20_000)
    later = int(re.search(r"\d+", resend.inner_text()).group())
    assert later < int(re.search(r"\d+", first).group())
    assert "You can ask again in" in page.locator("#resend-wait").inner_text()


def test_a_forged_next_is_not_followed(live, page):
    with live.app.app_context():
        from meter.accounts.rules import register as registration
        from meter.sites.rules.sites import by_slug, info

        site = info(by_slug("demo"))
        registration.register(site, "forged@example.com", PASSWORD, "id", None, None)
    from sqlalchemy import update

    from meter.accounts.models import Reader
    from meter.platform.clock import utcnow

    with live.app.app_context():
        db.session.execute(update(Reader).values(verified_at=utcnow()))
        db.session.commit()
    page.goto(f"{live.base}/demo/login?next=https://evil.example/phish")
    page.get_by_label("Email").fill("forged@example.com")
    page.get_by_label("Kata sandi", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Masuk").click()
    page.wait_for_selector("text=Anda sudah masuk")
    assert page.url.startswith(live.base)
    assert "evil.example" not in page.content()


def test_unverified_reader_sees_the_verify_wall_and_resends(live, page, mailbox):
    page.goto(f"{live.base}/demo/register")
    page.get_by_label("Email").fill("belum@example.com")
    page.get_by_label("Kata sandi (minimal 8 karakter)").fill(PASSWORD)
    page.get_by_role("button", name="Daftar").click()
    page.wait_for_url(re.compile(r"/demo/activation-sent"))
    page.goto(f"{live.base}/demo/login?next={live.base}/demo-site/koran-harga-beras")
    page.get_by_label("Email").fill("belum@example.com")
    page.get_by_label("Kata sandi", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Masuk").click()
    page.wait_for_url(f"{live.base}/demo-site/koran-harga-beras")
    answered(page, "refused")
    wall = page.locator(".meter-wall-verify")
    assert "Konfirmasi email Anda untuk terus membaca" in wall.inner_text()
    assert "Jika Anda tidak menerima email," in wall.locator(".meter-actions").inner_text()  # Tempo's lead-in
    shoot(page, "verify-wall")
    live.deliver()
    mailbox.clear()
    past_the_mail_budget()  # the registration's mail spent the address's budget for 3 minutes
    wall.get_by_role("button", name="Kirimkan Lagi Sekarang").click()
    page.wait_for_selector("text=Terkirim. Periksa email Anda.")
    assert wall.locator("button").is_disabled()  # and it counts down before it can be used again
    live.deliver()
    assert len(mailbox.to("belum@example.com")) == 1


PRERENDER = """
Object.defineProperty(document, "prerendering", {configurable: true, get: () => true});
window.__show = () => {
  Object.defineProperty(document, "prerendering", {configurable: true, get: () => false});
  document.dispatchEvent(new Event("prerenderingchange"));
};
"""


def test_a_prerendered_page_counts_only_once_shown(live, page):
    from sqlalchemy import func, select

    from meter.access.models import Unlock
    from meter.sites.models import Site

    with live.app.app_context():
        site = db.session.scalar(select(Site).filter_by(slug="demo"))
        site.policy = {**site.policy, "quota": {**site.policy["quota"], "anonymous": 2}}
        db.session.commit()

        def unlocks() -> int:
            return db.session.scalar(select(func.count()).select_from(Unlock))

    sites.forget_cached()
    page.add_init_script(PRERENDER)
    page.goto(f"{live.base}/demo-site/koran-harga-beras")
    answered(page, "allowed")  # decided, shown to the prerenderer...
    page.wait_for_timeout(300)
    with live.app.app_context():
        assert unlocks() == 0  # ...but nothing counted
    page.evaluate("window.__show()")
    deadline = time.monotonic() + 30  # the count's POST, on a busy machine: polled, not a fixed 5 s
    while time.monotonic() < deadline:
        with live.app.app_context():
            if unlocks() == 1:
                break
        page.wait_for_timeout(100)
    with live.app.app_context():
        assert unlocks() == 1


def _header(page) -> list[str]:
    return [link.inner_text() for link in page.locator("#account a:not([hidden])").all() if link.is_visible()]


def test_the_demo_header_follows_the_reader_and_the_language(live, page, mailbox):
    """The demo site learns who reads only from the embed's answer (`logged_in`): Masuk and Daftar for
    a visitor, Keluar once logged in; `?lang=en` makes it, and meter's walls through it, English."""
    page.goto(f"{live.base}/demo-site/")
    page.wait_for_selector("article[data-meter-state=allowed]")  # its lead story: free, never counted
    assert _header(page) == ["Masuk", "Daftar", "English"]
    page.goto(f"{live.base}/demo/register?next={live.base}/demo-site/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Kata sandi (minimal 8 karakter)").fill(PASSWORD)
    page.get_by_role("button", name="Daftar").click()
    page.wait_for_url(re.compile(r"/demo/activation-sent"))
    live.deliver()
    [link] = [link for link in links_in(mailbox.to(EMAIL)[0]["msg"]) if "/activate/" in link]
    page.goto(link)
    page.wait_for_selector("text=Email Anda sudah terkonfirmasi")
    page.get_by_role("link", name="Lanjutkan membaca").click()
    page.wait_for_selector("article[data-meter-state=allowed]")
    assert _header(page) == ["Keluar", "English"]

    page.goto(f"{live.base}/demo-site/laput-anggaran?lang=en")
    answered(page, "refused")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "This article is for subscribers" in page.locator(".meter-wall-subscribe").inner_text()
    assert _header(page) == ["Log out", "Bahasa Indonesia"]
    page.goto(f"{live.base}/demo-site/")  # English sticks (the demo's own cookie)
    page.wait_for_selector("article[data-meter-state=allowed]")
    assert page.locator("h1").inner_text() == "Latest news and reports"


def test_controls_use_the_texts_typeface_and_dates_stay_whole_on_a_phone(live, page):
    page.goto(f"{live.base}/demo/register")
    fonts = page.evaluate(
        "[...document.querySelectorAll('body, button, input[type=email]')].map(e => getComputedStyle(e).fontFamily)"
    )
    assert len(set(fonts)) == 1, fonts
    with live.app.app_context():
        site = db.session.scalar(db.select(sites.Site).filter_by(slug="demo"))
        site.policy = {**site.policy, "quota": {"anonymous": 0, "registered": 0, "verified": 0}}
        db.session.commit()
    sites.forget_cached()
    page.set_viewport_size({"width": WIDTHS["phone"], "height": 900})
    page.goto(f"{live.base}/demo-site/koran-harga-beras")
    answered(page, "refused")
    wall = page.locator(".meter-wall-quota p").first
    assert re.search(r"\d{1,2}\u00a0\w+\u00a0\d{4}", wall.inner_text()), wall.inner_text()
    shoot(page, "quota-wall-date")
