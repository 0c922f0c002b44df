"""The catalogs: every string has its Indonesian, the committed .mo files match the .po files, and
plurals and dates come from Babel in the site's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask_babel import format_date, ngettext

from meter.platform import i18n
from tests.paths import ROOT_DIR

ROOT = ROOT_DIR / "meter" / "translations"


def _po(lang: str):
    with open(ROOT / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f)


def test_every_string_has_its_indonesian():
    with open(ROOT / "messages.pot", "rb") as f:
        template = read_po(f)
    catalog = _po("id")
    missing = [m.id for m in template if m.id and not (catalog.get(m.id) and all(catalog.get(m.id).string))]
    assert missing == []


def test_committed_mo_files_match_the_po_files():
    for lang in ("id",):  # English is the source language: its catalog stays empty

        def norm(value):
            return tuple(value) if isinstance(value, list | tuple) else value

        po = {norm(m.id): norm(m.string) for m in _po(lang) if m.id and m.string and all(m.string)}
        with open(ROOT / lang / "LC_MESSAGES" / "messages.mo", "rb") as f:
            mo = {norm(m.id): norm(m.string) for m in read_mo(f) if m.id}
        assert po == mo, f"{lang}: run pybabel compile -d meter/translations"


def test_plurals_and_dates_in_the_sites_zone(app):
    with app.test_request_context("/?lang=en"):
        assert ngettext("%(num)d free article left", "%(num)d free articles left", 1) == "1 free article left"
        assert ngettext("%(num)d free article left", "%(num)d free articles left", 0) == "0 free articles left"
        # 30 Nov 20:00 UTC is 1 December in Jakarta
        assert format_date(datetime(2026, 11, 30, 20, 0, tzinfo=UTC), "long") == "December 1, 2026"
    with app.test_request_context("/?lang=id"):
        assert i18n.choose_language() == "id"
        assert ngettext("%(num)d free article left", "%(num)d free articles left", 2) == "2 artikel gratis tersisa"
        assert format_date(datetime(2026, 11, 30, 20, 0, tzinfo=UTC), "long") == "1 Desember 2026"


def test_indonesian_has_one_plural_form():
    """Indonesian nouns do not inflect for number ("1 artikel", "2 artikel"): one form, as CLDR says."""
    catalog = _po("id")
    assert (catalog.num_plurals, catalog.plural_expr) == (1, "0")
    assert all(len(m.string) == 1 for m in catalog if m.id and isinstance(m.id, tuple))
    assert i18n.texts("id").ngettext("%(num)d free article left", "%(num)d free articles left", 1) == (
        "1 artikel gratis tersisa"
    )


# What a reader reads, in Tempo's words: capitalised buttons and links, "Klik", "memiliki", two
# sentences where English had a semicolon, and the specific strings a read against Tempo's pages found.
TEMPO_WORDS = {
    "Activate account": "Aktifkan Akun",
    "Send the link": "Kirimkan Link",
    "Send a new link": "Kirimkan Link Baru",
    "Save password": "Simpan Kata Sandi",
    "Continue reading": "Lanjutkan Membaca",
    "No account yet?": "Belum Memiliki Akun?",
    "Register here": "Daftar di Sini",
    "Already have an account?": "Sudah Memiliki Akun?",
    "Log in here": "Masuk di Sini",
    "Back to log in": "Kembali ke Halaman Masuk",
    "Forgot your password? Click here": "Lupa Kata Sandi? Klik di Sini",
    "Forgot your password? Click here:": "Lupa Kata Sandi? Klik di Sini:",
    "Click the button below to activate your account.": "Klik tombol di bawah ini untuk mengaktifkan akun Anda.",
    "Click the link to activate your account and get access to read %(free)s.": (
        "Klik link tersebut untuk mengaktifkan akun Anda dan mendapatkan akses membaca %(free)s."
    ),
    "We sent an activation link to your email. Click it to read more articles.": (
        "Kami telah mengirimkan link aktivasi ke email Anda. Klik link tersebut untuk membaca lebih banyak artikel."
    ),
    "You already have a %(name)s account": "Anda sudah memiliki akun %(name)s",
    "This link is valid for %(lifetime)s.": "Link ini berlaku selama %(lifetime)s.",
    "Register and confirm your email to read %(free)s.": "Daftar dan konfirmasi email Anda untuk membaca %(free)s.",
    "%(num)d free article %(every)s, except %(section)s": "%(num)d artikel gratis %(every)s, kecuali %(section)s",
    "every month": "setiap bulan",
    "Wait a moment before asking for the link again.": "Tunggu sebentar sebelum meminta link lagi.",
    "This link was already used. Please log in.": "Link ini sudah digunakan. Silakan masuk.",
    "Wrong email address? Register again": "Salah alamat email? Daftar lagi",
    "Welcome! You can now read %(free)s.": "Selamat datang! Anda mendapat akses membaca %(free)s.",
    "If you did not receive the email, check your spam folder or": (
        "Jika Anda tidak menerima email, periksa folder spam atau"
    ),
    "Resend now": "Kirimkan Lagi Sekarang",
    "If you did not receive the email,": "Jika Anda tidak menerima email,",
    "Register": "Daftar",
    "If this was not you, ignore this email; your account is safe.": (
        "Jika bukan Anda, abaikan email ini. Akun Anda tetap aman."
    ),
    "If you did not ask for this, ignore this email; your password has not changed.": (
        "Jika Anda tidak memintanya, abaikan email ini. Kata sandi Anda tidak berubah."
    ),
    "Subscribe to read %(section)s and every article.": "Berlangganan untuk membaca %(section)s dan semua artikel.",
    "Subscribe to read every article.": "Berlangganan untuk membaca semua artikel.",
}


def test_the_catalog_speaks_as_tempo_does():
    catalog = _po("id")
    found = {}
    for message in catalog:
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        if key in TEMPO_WORDS:
            found[key] = message.string[0] if isinstance(message.string, tuple) else message.string
    assert found == TEMPO_WORDS
    for message in (m for m in catalog if m.id):  # not the header
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            assert ";" not in text, text  # an English semicolon: two sentences in Indonesian
            assert "punya" not in text and "Tekan " not in text, text
            assert not text.startswith("Buka link"), text
    assert catalog.get("Subscribe to read Laporan Utama and every article.") is None  # from the site's premium name


def test_the_embeds_walls_come_from_the_catalogs_in_tempos_words():
    words = i18n.texts("id")
    assert words.gettext("Subscribe to read %(section)s and every article.", section="Koran Tempo") == (
        "Berlangganan untuk membaca Koran Tempo dan semua artikel."
    )
    from meter.platform.template_helpers import free_articles

    free = free_articles(2, "month", "Laporan Utama", words)
    assert words.gettext("Register and confirm your email to read %(free)s.", free=free) == (
        "Daftar dan konfirmasi email Anda untuk membaca 2 artikel gratis setiap bulan, kecuali Laporan Utama."
    )


def test_lifetimes_are_said_exactly_in_the_readers_language():
    from meter.platform.template_helpers import duration, on_colour

    said = {
        (3 * 86400, "id"): "3 hari",
        (3600, "id"): "1 jam",
        (5400, "id"): "90 menit",
        (36 * 3600, "id"): "36 jam",  # never rounded to "2 hari"
        (3 * 86400, "en"): "3 days",
        (86400, "en"): "1 day",
        (3600, "en"): "1 hour",
        (1800, "en"): "30 minutes",
        (45, "en"): "45 seconds",
    }
    assert {key: duration(*key) for key in said} == said
    assert on_colour("#b00") == "#ffffff" and on_colour("#0055aa") == "#ffffff"
    assert on_colour("#ffcc00") == "#1d1d1f" and on_colour("#fff") == "#1d1d1f"  # a light colour gets dark text


def test_every_indonesian_catalog_has_one_plural_form():
    """Flask-Babel merges the domains (messages, console): one catalog with English plural rules would make
    every Indonesian plural of the other fall back to English (as it did once: the activation mail)."""

    from babel.messages.pofile import read_po

    for po in sorted(Path("meter/translations/id/LC_MESSAGES").glob("*.po")):
        with po.open("rb") as f:
            catalog = read_po(f)
        assert catalog.num_plurals == 1, po
        assert not catalog.fuzzy, f"{po}: a fuzzy header is not compiled"
