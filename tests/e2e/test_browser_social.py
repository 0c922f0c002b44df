"""In Chromium: a reader who never registered clicks "Daftar melalui <provider>" on the demo site's register
wall, signs in at a real OpenID provider (oidc-provider, tests/oidc/, its own login and consent pages),
comes back signed in and verified, and reads the metered article — with no activation mail.

Playwright drives Debian's Chromium (as tests/e2e/test_browser.py) against meter served on a loopback port
with the demo publisher site; screenshots of each step at 390 px (and 1280 px) go to tests/screenshots/.
Skipped, saying why, where Chromium or Node is missing.
"""

from __future__ import annotations

import os
import re
import threading

import pytest
from werkzeug.serving import make_server

from meter import create_app
from meter.dev.redis_server import free_port
from meter.platform import mail
from meter.platform.db import db
from meter.sites.rules import sites
from tests.conftest import _config_dict
from tests.oidc_provider import PASSWORD, OidcProvider, node_or_skip

pytestmark = [pytest.mark.browser, pytest.mark.servers]

CHROMIUM = os.environ.get("METER_CHROMIUM", "/usr/bin/chromium")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"Chromium not found at {CHROMIUM}: browser tests skipped", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")

from tests.e2e.test_browser import answered, chromium, shoot  # noqa: E402, F401  (after the skip: that module needs Chromium too; fixtures)

LABEL = "Akun Demo"


@pytest.fixture
def live(redis_url, smtp_server, database_url, tmp_path):
    import redis as redis_lib

    node_or_skip()
    controller, mailbox = smtp_server
    redis_lib.Redis.from_url(redis_url).flushall()
    mailbox.clear()
    sites.forget_cached()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    provider = OidcProvider(
        [
            {
                "client_id": "meter-demo",
                "client_secret": "demo-secret",
                "redirect_uris": [f"{base}/demo/login/local/callback"],
            }
        ]
    ).start()
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
    secret = tmp_path / "client-secret"
    secret.write_text("demo-secret")
    add = ["sites", "login-providers", "add", "demo", "local", "--kind", "oidc", "--issuer", provider.issuer]
    result = app.test_cli_runner().invoke(
        args=[*add, "--client-id", "meter-demo", "--client-secret-file", str(secret), "--label", LABEL]
    )
    assert result.exit_code == 0, result.output
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, base, mailbox
    server.shutdown()
    provider.stop()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def page(chromium):  # noqa: F811  (the fixture imported from test_browser)
    context = chromium.new_context(viewport={"width": 390, "height": 844}, locale="id-ID")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_a_newcomer_signs_up_with_the_provider_from_the_register_wall_and_reads(live, page):
    app, base, mailbox = live
    article = f"{base}/demo-site/koran-harga-beras"
    page.goto(article)
    answered(page, "refused")
    wall = page.locator(".meter-wall-register")
    button = wall.get_by_role("link", name=f"Daftar melalui {LABEL}")
    assert button.is_visible()
    shoot(page, "social-1-register-wall")

    button.click()
    page.wait_for_selector("text=Sign in to the test provider")  # the provider's own page, on its own origin
    assert not page.url.startswith(base)
    page.get_by_label("Login").fill("newcomer")
    page.get_by_label("Password").fill(PASSWORD)
    shoot(page, "social-2-provider-login")
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_selector("text=Allow access")
    shoot(page, "social-3-provider-consent")
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(article)  # back through meter's callback, signed in, to the article
    answered(page, "allowed")
    assert page.locator("[data-meter-body]").is_visible()
    assert page.locator(".meter-banner").inner_text() == "1 artikel gratis tersisa"
    shoot(page, "social-4-article")

    with app.app_context():
        mail.deliver_due()
    assert mailbox.messages == []  # verified by the provider: no activation mail

    page.goto(f"{base}/demo/login")  # the login page offers the same provider
    assert page.get_by_text("atau Masuk melalui").is_visible()
    assert page.get_by_role("link", name=f"Masuk melalui {LABEL}").is_visible()
    shoot(page, "social-5-login-page")
    assert page.get_by_role("link", name=f"Masuk melalui {LABEL}").get_attribute("href") == "/demo/login/local"


def test_cancelling_at_the_provider_shows_a_way_back(live, page):
    _app, base, _mailbox = live
    page.goto(f"{base}/demo/register?next={base}/demo-site/koran-harga-beras")
    assert page.get_by_text("atau Daftar melalui").is_visible()
    shoot(page, "social-6-register-page")
    page.get_by_role("link", name=f"Daftar melalui {LABEL}").click()
    page.wait_for_selector("text=Sign in to the test provider")
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_selector("text=Proses masuk dibatalkan")
    assert page.url.startswith(f"{base}/demo/login/local/callback")
    shoot(page, "social-7-cancelled")
    page.get_by_role("link", name="Kembali ke halaman masuk").click()
    page.wait_for_url(re.compile(r"/demo/login\?next="))
