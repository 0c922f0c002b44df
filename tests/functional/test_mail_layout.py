"""Every kind of mail, in both languages, goes through the one layout (meter/templates/mail/_layout.html):
a viewport, every URL a link, the site's colour, the footer that says why it came and where to get help,
valid HTML (html-validate, tests/htmlvalidate); every lifetime it states is its setting's; the quota with
its period and the premium section it leaves out; and the site's name as the site now says it.

The mails are rendered as their flows render them (tests/mail_kinds.py), without a round trip through
SMTP: tests/functional/test_mail_received.py holds what the wire adds (headers, multipart).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from email.utils import parseaddr
from pathlib import Path

import pytest

from tests.functional.test_mail_received import CHROMIUM, CHROMIUM_ARGS, SETTINGS, check_links, configure
from tests.mail_kinds import queued_kinds, render_all, template_kinds
from tests.paths import TESTS_DIR

HTMLVALIDATE = TESTS_DIR / "htmlvalidate"
HTMLVALIDATE_BIN = HTMLVALIDATE / "node_modules" / ".bin" / "html-validate"
LANGS = ("id", "en")
WHY = {"id": "Anda menerima email ini karena", "en": "You received this email because"}
WITH_BUTTON = {"activation", "activation_again", "already_registered", "password_reset", "password_changed"} | {
    "email_change",
    "account_deletion",
    "social_link",
    "social_signup",
    "sign_in_added",
}
HELP = {"id": "Butuh bantuan? Kunjungi", "en": "Need help? Visit"}


def test_every_kind_is_here():
    """Each kind meter queues has its templates; the kinds rendered below are every template's (asserted there)."""
    assert len(queued_kinds()) >= 9 and queued_kinds() <= template_kinds(), queued_kinds() ^ template_kinds()


@pytest.fixture
def tempo(app, api):
    """The site as Tempo sets it: sender, reply address, support page, premium section, colour."""
    configure(app, *SETTINGS)
    return app


@pytest.mark.parametrize("lang", LANGS)
def test_every_mail_kind_goes_through_the_one_layout(tempo, lang):
    rows = render_all(tempo, "tempo", lang)
    assert {row.kind for row in rows.values()} == template_kinds()
    for name, row in rows.items():
        html, text = row.body_html, row.body_text
        assert html.startswith("<!doctype html>") and "<head>" in html, name
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html, name
        hrefs = check_links(html, text)  # every URL of the HTML inside an <a href>; the text's links too
        assert "https://tempo.co/bantuan" in hrefs, f"{name}: no support link"
        assert HELP[lang] in html and HELP[lang] in text, name
        assert WHY[lang] in html and WHY[lang] in text, f"{name}: no footer saying why"
        assert "border-top:4px solid #0055aa" in html, f"{name}: not in the site's colour"
        assert "#b00" not in html, f"{name}: the old fixed colour"
        if name in WITH_BUTTON:
            button = re.search(r'<td[^>]*bgcolor="#0055aa"[^>]*>\s*<a href="([^"]+)"', html)
            assert button, f"{name}: no button in the site's colour"
        # no hidden text: no preheader in the background's colour, no invisible padding
        assert "display:none" not in html and "&#8199;" not in html and "&#847;" not in html, name
        assert "opacity:0" not in html and "font-size:1px" not in html, name


def test_html_validate_passes_every_mail_kind(tempo, tmp_path):
    if shutil.which("node") is None:
        pytest.skip("Node.js not found: html-validate (tests/htmlvalidate) cannot run")
    if not HTMLVALIDATE_BIN.exists():
        pytest.skip("html-validate not installed: run `make htmlvalidate` (npm ci in tests/htmlvalidate)")
    files, report = [], tmp_path / "report.json"  # a file: Node cuts a long stdout short when it exits
    for lang in LANGS:
        for name, row in render_all(tempo, "tempo", lang).items():
            path = tmp_path / f"{name}-{lang}.html"
            path.write_text(row.body_html)
            files.append(str(path))
    done = subprocess.run(
        [str(HTMLVALIDATE_BIN), "--config", str(HTMLVALIDATE / "mail.json"), "--formatter", f"json={report}", *files],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HTMLVALIDATE,
    )
    found = [
        (Path(result["filePath"]).name, m["ruleId"], m["message"], m["line"])
        for result in json.loads(report.read_text() if report.exists() else "[]")
        for m in result["messages"]
    ]
    assert done.returncode == 0 and found == [], found or done.stderr


# --- stated lifetimes: each from its setting, in the mail's language --------------------------------

LIFETIMES = {
    "activation": ("ACTIVATION_MAX_AGE", 2 * 3600, {"id": "2 jam", "en": "2 hours"}),
    "activation_again": ("ACTIVATION_MAX_AGE", 2 * 3600, {"id": "2 jam", "en": "2 hours"}),
    "social_link": ("ACTIVATION_MAX_AGE", 2 * 3600, {"id": "2 jam", "en": "2 hours"}),
    "social_signup": ("ACTIVATION_MAX_AGE", 2 * 3600, {"id": "2 jam", "en": "2 hours"}),
    "password_reset": ("RESET_MAX_AGE", 45 * 60, {"id": "45 menit", "en": "45 minutes"}),
    "email_change": ("EMAIL_CHANGE_MAX_AGE", 3600, {"id": "1 jam", "en": "1 hour"}),
    "account_deletion": ("ACCOUNT_DELETION_MAX_AGE", 2 * 86400, {"id": "2 hari", "en": "2 days"}),
}


@pytest.mark.config(
    ACTIVATION_MAX_AGE=2 * 3600, RESET_MAX_AGE=45 * 60, EMAIL_CHANGE_MAX_AGE=3600, ACCOUNT_DELETION_MAX_AGE=2 * 86400
)
@pytest.mark.parametrize("lang", LANGS)
def test_every_stated_lifetime_is_its_settings(tempo, lang):
    rows = render_all(tempo, "tempo", lang)
    for name, (_setting, _seconds, said) in LIFETIMES.items():
        for part in (rows[name].body_text, rows[name].body_html):
            assert said[lang] in part, f"{name} ({lang}) does not say {said[lang]}"
            assert not re.search(r"\b1 (hari|day)\b", part), f"{name} ({lang}) still says 1 day"
    said_anywhere = {name for name, row in rows.items() if re.search(r"berlaku|valid for", row.body_text)}
    assert said_anywhere <= set(LIFETIMES), said_anywhere - set(LIFETIMES)  # every lifetime said is tested here


# --- the quota, with its period and what it leaves out ------------------------------------------------


@pytest.mark.parametrize(
    ("period", "lang", "said"),
    [
        ("month", "id", "2 artikel gratis setiap bulan, kecuali Laporan Utama"),
        ("month", "en", "2 free articles every month, except Laporan Utama"),
        ("week", "id", "2 artikel gratis setiap minggu, kecuali Laporan Utama"),
        ("rolling:30d", "id", "2 artikel gratis setiap 30 hari, kecuali Laporan Utama"),
        ("rolling:1d", "en", "2 free articles every 1 day, except Laporan Utama"),
    ],
)
def test_the_activation_mail_says_the_quotas_period_and_exclusion(tempo, period, lang, said):
    result = tempo.test_cli_runner().invoke(args=["sites", "policy", "tempo", "--set", f"period={period}"])
    assert result.exit_code == 0, result.output
    rows = render_all(tempo, "tempo", lang)
    assert said in rows["activation"].body_text and said in rows["activation"].body_html


def test_the_pages_say_the_quotas_period_and_exclusion(tempo, client):
    page = client.get("/tempo/register?lang=id").get_data(as_text=True)
    assert "Daftar dan konfirmasi email Anda untuk membaca 2 artikel gratis setiap bulan, kecuali Laporan Utama." in (
        page
    )


# --- the site's name ---------------------------------------------------------------------------------


def test_a_sites_name_is_set_by_flask_sites_settings_and_its_mails_read_it(app, api):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["sites", "settings", "tempo", "--name", "Tempo.co"])
    assert result.exit_code == 0, result.output
    assert "name\tTempo.co" in result.output
    rows = render_all(app, "tempo", "id")
    activation = rows["activation"]
    assert activation.subject == "Aktifkan akun Tempo.co Anda"
    assert parseaddr(activation.sender)[0] == "Tempo.co"  # the default sender is the site's name
    assert "Tempo.co" in activation.body_html and "Tempo.co" in activation.body_text
    for bad in ("", "   ", "x" * 201, "Tempo\r\nBcc: a@b.c"):
        result = runner.invoke(args=["sites", "settings", "tempo", "--name", bad])
        assert result.exit_code != 0, bad
    assert "name\tTempo.co" in runner.invoke(args=["sites", "settings", "tempo"]).output


# --- at a phone's width, in Chromium -------------------------------------------------------------------

SHOTS = Path(os.environ.get("METER_MAIL_SHOTS", TESTS_DIR / "screenshots"))


@pytest.mark.browser
@pytest.mark.database_agnostic
@pytest.mark.timeout(300)
def test_every_mail_kind_fits_a_phone_in_both_languages(tempo):
    """mail-all-<kind>-<lang>-375.png (METER_MAIL_SHOTS, else tests/screenshots), to be looked at; and
    what a look checks first: nothing wider than a 375 px screen, the button inside it."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for lang in LANGS:
                for name, row in render_all(tempo, "tempo", lang).items():
                    page = browser.new_page(viewport={"width": 375, "height": 800})
                    page.set_content(row.body_html)
                    wide = page.evaluate("document.documentElement.scrollWidth")
                    assert wide <= 375, f"{name} {lang}: {wide} px wide"
                    page.screenshot(path=str(SHOTS / f"mail-all-{name}-{lang}-375.png"), full_page=True)
                    page.close()
        finally:
            browser.close()
