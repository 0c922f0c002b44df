"""The account page in Chromium (Playwright, Debian's /usr/bin/chromium) against a live meter with the demo
site: at 390 px in Indonesian, reached from the embed's "logged in" link; the password changed there signs
a second browser out, and so does "Akhiri semua sesi lain". Screenshots in tests/screenshots/account-*."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from tests.e2e.test_browser import SHOTS, answered, chromium, live  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

EMAIL = "pembaca.akun@example.com"
PASSWORD = "rahasia-sekali"
NEW_PASSWORD = "sandi-baru-sekali"
PHONE = {"width": 390, "height": 844}


def make_reader(server) -> None:
    from meter.accounts.models import Reader
    from meter.accounts.rules import register as registration
    from meter.platform.clock import utcnow
    from meter.platform.db import db
    from meter.sites.rules.sites import by_slug, info

    with server.app.app_context():
        registration.register(info(by_slug("demo")), EMAIL, PASSWORD, "id", None, None)
        db.session.execute(update(Reader).values(verified_at=utcnow()))
        db.session.commit()


def browser_page(chromium, viewport):  # noqa: F811
    context = chromium.new_context(viewport=viewport, locale="id-ID")
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


def log_in(page, base: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/demo/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Kata sandi", exact=True).fill(password)
    page.get_by_role("button", name="Masuk").click()
    page.wait_for_selector("text=Anda sudah masuk")


def fits(page, width: int) -> None:
    """Nothing wider than the phone: no sideways scrolling, every button inside the screen."""
    for box in (page.locator(sel).bounding_box() for sel in ("main", "header.site")):
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, box
    for button in page.locator("main button, main a.button").all():
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (button.inner_text(), box)


def test_the_account_page_on_a_phone_changes_the_password_and_ends_other_sessions(live, chromium):  # noqa: F811
    base = live.base
    make_reader(live)
    SHOTS.mkdir(exist_ok=True)
    phone_context, phone = browser_page(chromium, PHONE)
    other_context, other = browser_page(chromium, {"width": 1280, "height": 900})
    try:
        phone.goto(f"{base}/demo/account")  # not signed in: the login page, then back here
        phone.wait_for_url(re.compile(r"/demo/login\?next="))
        phone.get_by_label("Email").fill(EMAIL)
        phone.get_by_label("Kata sandi", exact=True).fill(PASSWORD)
        phone.get_by_role("button", name="Masuk").click()
        phone.wait_for_url(f"{base}/demo/account")
        assert phone.locator("h1").inner_text() == "Akun Saya"

        log_in(other, base)  # the second browser: the article shows its "Akun Saya" link
        other.goto(f"{base}/demo-site/nato-siagakan-pasukan")
        answered(other, "allowed")
        account_link = other.locator(".meter-account a")
        assert account_link.inner_text() == "Akun Saya"
        other.screenshot(path=str(SHOTS / "account-link-in-the-article-1280.png"))
        account_link.click()
        other.wait_for_url(re.compile(r"/demo/account"))
        assert other.locator("#account-email").inner_text() == EMAIL
        other.screenshot(path=str(SHOTS / "account-desktop-1280.png"))

        phone.reload()
        sessions = phone.locator("#sessions li")
        assert sessions.count() == 2
        assert "Perangkat ini" in sessions.first.inner_text() and "Chrome" in sessions.first.inner_text()
        assert phone.get_by_role("button", name="Akhiri semua sesi lain").is_visible()
        assert "Akun Saya" in phone.locator("header.site").inner_text()
        fits(phone, PHONE["width"])
        phone.screenshot(path=str(SHOTS / "account-phone-390.png"), full_page=True)

        phone.get_by_label("Kata sandi saat ini").fill(PASSWORD)
        phone.get_by_label("Kata sandi baru (minimal 8 karakter)").fill(NEW_PASSWORD)
        phone.get_by_role("button", name="Ganti Kata Sandi").click()
        phone.wait_for_selector("text=Kata sandi Anda sudah diganti. Semua perangkat lain telah dikeluarkan.")
        assert phone.locator("#sessions li").count() == 1
        fits(phone, PHONE["width"])
        phone.screenshot(path=str(SHOTS / "account-password-changed-phone-390.png"), full_page=True)

        other.goto(f"{base}/demo/account")  # the second browser is signed out
        other.wait_for_url(re.compile(r"/demo/login\?next="))
        assert other.locator("header.site a.account").count() == 0  # its dead login cookie is gone
        other.goto(f"{base}/demo-site/nato-siagakan-pasukan")
        answered(other, "allowed")
        assert other.locator(".meter-account").count() == 0

        log_in(other, base, NEW_PASSWORD)  # back in with the new password; then ended from the phone
        phone.reload()
        assert phone.locator("#sessions li").count() == 2
        phone.get_by_role("button", name="Akhiri semua sesi lain").click()
        phone.wait_for_selector("text=Semua sesi lain telah diakhiri.")
        assert phone.locator("#sessions li").count() == 1
        other.goto(f"{base}/demo/account")
        other.wait_for_url(re.compile(r"/demo/login\?next="))
        other.screenshot(path=str(SHOTS / "account-other-signed-out-1280.png"), full_page=True)
    finally:
        phone_context.close()
        other_context.close()
