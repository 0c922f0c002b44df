"""The Indonesian words of docs/glossary.md: no banned variant in an Indonesian catalog or a template,
and the buttons in Title Case as Tempo writes them.

The banned variants are read from the glossary's table, so that the rule has one home (the docs)."""

from __future__ import annotations

import re

from babel.messages.pofile import read_po

from tests.paths import ROOT_DIR

ROOT = ROOT_DIR
GLOSSARY = ROOT / "docs" / "glossary.md"
CATALOGS = sorted((ROOT / "meter" / "translations" / "id" / "LC_MESSAGES").glob("*.po"))
TEMPLATES = sorted(p for p in (ROOT / "meter" / "templates").rglob("*") if p.suffix in (".html", ".txt"))


def banned() -> list[str]:
    """The backticked words of the table's last column."""
    words = []
    for line in GLOSSARY.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and not set(cells[0]) <= {"-"} and cells[0] != "Term (English)":
            words += re.findall(r"`([^`]+)`", cells[2])
    return words


def _pattern(word: str) -> re.Pattern:
    return re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)", re.IGNORECASE)


def indonesian_strings():
    for path in CATALOGS:
        with path.open("rb") as f:
            for message in read_po(f):
                if message.id:
                    strings = message.string if isinstance(message.string, tuple) else (message.string,)
                    yield path.name, message.id, " ".join(strings)


def test_the_glossary_bans_something():
    assert {"tautan", "mengeklik", "surel", "data yang menyebut nama Anda"} <= set(banned())


def test_no_banned_variant_in_the_indonesian_catalogs():
    patterns = [(word, _pattern(word)) for word in banned()]
    found = [
        (name, word, text)
        for name, _msgid, text in indonesian_strings()
        for word, pattern in patterns
        if pattern.search(text)
    ]
    assert found == []


def test_no_banned_variant_in_the_templates():
    patterns = [(word, _pattern(word)) for word in banned()]
    found = [
        (str(path.relative_to(ROOT)), word)
        for path in TEMPLATES
        for word, pattern in patterns
        if pattern.search(path.read_text())
    ]
    assert found == []


BUTTONS = {
    "Activate account": "Aktifkan Akun",
    "Reset password": "Atur Ulang Kata Sandi",
    "Delete my account": "Hapus Akun Saya",
    "Change password": "Ganti Kata Sandi",
    "Set a password": "Buat Kata Sandi",
    "Download my data": "Unduh Data Saya",
    "Copy link": "Salin Link",
    "Confirm new address": "Konfirmasi Alamat Baru",
    "Resend now": "Kirimkan Lagi Sekarang",
    "Log in with your email instead": "Masuk dengan Email",
}


def test_buttons_are_in_title_case_as_tempo_writes_them():
    said = {msgid: text for _name, msgid, text in indonesian_strings() if msgid in BUTTONS}
    assert said == BUTTONS
