"""The catalogs: every string has its Indonesian, the committed .mo files match the .po files, and
plurals and dates come from Babel in the site's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask_babel import format_date, ngettext

from meter.web import i18n

ROOT = Path(__file__).resolve().parent.parent / "meter" / "translations"


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
