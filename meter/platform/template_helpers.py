"""What templates compute rather than state: a lifetime in words, a text colour that reads on the site's,
the free quota with its period and what it leaves out.

Why: the mails said "3 hari" and "1 jam" in the catalogs while the lifetimes are settings
(ACTIVATION_MAX_AGE, RESET_MAX_AGE); an operator who shortened one made every mail promise what the
link did not keep. And the button's colour is the site's, which may be light. And "2 artikel gratis"
alone let a reader think the two were for ever, and for every section: the quota is said with its
period and the premium section it excludes, from the site's policy and settings, in one phrase that the
pages, the walls and the mails share.
"""

from __future__ import annotations

import re

from babel.units import format_unit
from flask import Flask
from flask_babel import get_locale
from flask_babel import gettext as babel_gettext
from flask_babel import ngettext as babel_ngettext

UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
HEX_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def duration(seconds: int | float, locale: str | None = None) -> str:
    """`seconds` in the largest unit that says it exactly, in the current language with its plural:
    "3 hari", "1 jam", "90 menit"; "3 days", "1 hour". Never rounded: a link's lifetime is a promise."""
    seconds = max(int(seconds), 0)
    where = locale or get_locale() or "id"
    for unit, size in UNITS:
        if seconds >= size and seconds % size == 0:
            return format_unit(seconds // size, f"duration-{unit}", length="long", locale=where)
    return format_unit(seconds, "duration-second", length="long", locale=where)


ROLLING_RE = re.compile(r"^rolling:([0-9]+)d$")


def every(period: str, words=None) -> str:
    """The policy's period as "every month" / "setiap bulan", "every 30 days" / "setiap 30 hari"."""
    gettext = words.gettext if words is not None else babel_gettext
    ngettext = words.ngettext if words is not None else babel_ngettext
    rolling = ROLLING_RE.match(period or "")
    if rolling:
        return ngettext("every %(num)d day", "every %(num)d days", int(rolling.group(1)))
    calendar = {
        "day": gettext("every day"),
        "week": gettext("every week"),
        "month": gettext("every month"),
        "year": gettext("every year"),
    }
    return calendar.get(period, calendar["month"])


def free_articles(count: int, period: str, section: str | None = None, words=None) -> str:
    """The free quota as Tempo says it: "2 artikel gratis setiap bulan, kecuali Laporan Utama".

    `words` is a `meter.platform.i18n.Texts` outside a request (the embed's walls), else Flask-Babel's."""
    ngettext = words.ngettext if words is not None else babel_ngettext
    when = every(period, words)
    if section:
        return ngettext(
            "%(num)d free article %(every)s, except %(section)s",
            "%(num)d free articles %(every)s, except %(section)s",
            count,
            every=when,
            section=section,
        )
    return ngettext("%(num)d free article %(every)s", "%(num)d free articles %(every)s", count, every=when)


def site_free_articles(site) -> str:
    """`free_articles` of a site (a SiteInfo): its verified readers' quota, period and premium section."""
    return free_articles(site.policy.quota_verified, site.policy.period, site.premium_name)


def on_colour(colour: str) -> str:
    """Near-black or white, whichever reads better on `colour` (#rgb or #rrggbb; WCAG relative luminance)."""
    if not HEX_RE.match(colour or ""):
        return "#ffffff"
    digits = colour[1:]
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)

    def channel(i: int) -> float:
        c = int(digits[i : i + 2], 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    # contrast with white (1.05 / (L + 0.05)) against contrast with #1d1d1f (≈ (L + 0.05) / 0.062)
    return "#ffffff" if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.0622 else "#1d1d1f"


def init_app(app: Flask) -> None:
    """`duration`, `on_colour` and `free_articles` for every template: the mails and the reader pages."""
    app.add_template_global(duration)
    app.add_template_global(on_colour)
    app.add_template_global(site_free_articles, "free_articles")
