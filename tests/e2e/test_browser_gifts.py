"""A gift in a real browser: a subscriber on the demo site clicks "Hadiahkan artikel ini", copies the link,
and a friend in a fresh browser context (no cookies) opens it and reads the article without a wall.
Screenshots at 390 px (and 1280) in tests/screenshots/: gift-made-*, gift-opened-*, gift-without-link-*."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from meter.accounts.models import Reader
from meter.accounts.rules.emails import lookup_key
from meter.accounts.rules.passwords import hash_password
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites.rules import sites
from tests.e2e.test_browser import ARGS, CHROMIUM, WIDTHS, answered, chromium, live, shoot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "pelanggan@example.com", "rahasia-sekali"


def make_subscriber(server) -> None:
    with server.app.app_context():
        site = sites.by_slug("demo")
        site.policy = {**site.policy, "gifts": {"per_period": 10, "days": 14, "devices": 10}}
        reader = Reader(
            site_id=site.id,
            email=EMAIL,
            email_key=lookup_key(EMAIL),
            password_hash=hash_password(PASSWORD),
            verified_at=utcnow(),
            subscription_until=utcnow() + timedelta(days=30),
        )
        db.session.add(reader)
        db.session.commit()
        sites.forget_cached()


def test_a_subscriber_gifts_an_article_and_a_friend_reads_it_without_a_wall(live, chromium):  # noqa: F811 (the imported fixtures)
    make_subscriber(live)
    article = f"{live.base}/demo-site/koran-harga-beras"
    giver = chromium.new_context(
        viewport={"width": WIDTHS["phone"], "height": 844},
        locale="id-ID",
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = giver.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{live.base}/demo/login?next={article}")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Kata sandi").fill(PASSWORD)
    page.get_by_role("button", name="Masuk").click()
    page.wait_for_url(article)
    answered(page, "allowed")

    button = page.get_by_role("button", name="Hadiahkan artikel ini (10 tersisa)")
    button.click()
    link = page.locator(".meter-gift-link input")
    link.wait_for()
    assert page.get_by_role("button", name="Hadiahkan artikel ini (9 tersisa)").is_visible()
    assert "dapat membaca artikel ini selama 14 hari" in page.locator(".meter-gift-made").inner_text()
    page.get_by_role("button", name="Salin Link").click()
    page.get_by_role("button", name="Tersalin").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == link.input_value()
    assert re.fullmatch(re.escape(article) + r"\?gift=[A-Za-z0-9_-]{32}", copied)
    shoot(page, "gift-made")
    giver.close()

    friend = chromium.new_context(viewport={"width": WIDTHS["phone"], "height": 844}, locale="id-ID")
    page = friend.new_page()
    page.set_default_timeout(10_000)
    page.goto(article)  # without the link: the wall
    answered(page, "refused")
    assert page.locator(".meter-wall-register").is_visible()
    shoot(page, "gift-without-link")
    page.goto(copied)
    answered(page, "allowed")
    assert page.locator("[data-meter-body]").is_visible()
    assert page.locator(".meter-wall").count() == 0
    assert page.locator(".meter-gift").count() == 0  # not a subscriber: no gift button
    assert "Paragraf pertama" in page.locator("[data-meter-body]").inner_text()
    shoot(page, "gift-opened")
    friend.close()
