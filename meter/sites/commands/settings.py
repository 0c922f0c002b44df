"""`flask sites settings SLUG [--name TEXT] [--colour #hex] [--premium-name TEXT] …`: a site's settings.

The mail settings (`--mail-from`, `--reply-to`, `--support-url`) are checked here, once, so that what
reaches a mail header is always one well-formed address; an empty value goes back to the default.
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from urllib.parse import urlsplit

import click
from flask.cli import with_appcontext

from meter.accounts import emails
from meter.platform.db import db
from meter.sites.operator import audited, site_of
from meter.sites.rules import grant_keys as keys
from meter.sites.rules import sites

COLOUR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
NAMED_ADDRESS_RE = re.compile(r'^\s*(?:"?([^"<>]*?)"?\s*<([^<>\s]+)>|([^<>\s]+))\s*$')
SHOWN = (
    "colour",
    "subscribe_url",
    "premium_name",
    "mail_from",
    "reply_to",
    "support_url",
    "signed_articles",
    "amp_counts_on",
    "amp_links_max",
    "grants",
    "content_protection",
    "grant_lifetime",
)
AMP_LINKS_LIMIT = 100  # the highest `amp_links_max` (a reader's devices, not a crowd's)


def _colour(site: sites.Site, value: str) -> str:
    if not COLOUR_RE.match(value):
        raise click.ClickException("colour must be #rgb or #rrggbb")
    return value.lower()


def _subscribe_url(site: sites.Site, value: str) -> str:
    origin = sites.normalise_origin(value)
    if origin is None or origin not in (site.origins or []):
        raise click.ClickException("subscribe URL must be on one of the site's origins")
    return value


def _premium_name(site: sites.Site, value: str) -> str:
    value = value.strip()
    if len(value) > 80 or any(ch < " " or ch == "\x7f" for ch in value):
        raise click.ClickException("premium name must be at most 80 printable characters (empty: none)")
    return value


def _printable(value: str) -> bool:
    return not any(ch < " " or ch == "\x7f" for ch in value)


def _address(value: str, what: str) -> str:
    """One deliverable-looking ASCII address (no SMTPUTF8: Flask-Mail and many relays cannot send it)."""
    try:
        return emails.normalise(value)
    except emails.BadEmail as exc:
        raise click.ClickException(f"{what}: {exc}") from None


def _mail_from(_site: sites.Site, value: str) -> str:
    """`Name <address>` or an address alone (the site's name is then used)."""
    if not value.strip():
        return ""
    match = NAMED_ADDRESS_RE.match(value)
    if match is None or not _printable(value):
        raise click.ClickException('mail-from must be "Name <address>" or an address')
    name = (match.group(1) or "").strip()
    address = _address(match.group(2) or match.group(3), "mail-from")
    if len(name) > 100:
        raise click.ClickException("mail-from: the name must be at most 100 characters")
    return str(Address(display_name=name, addr_spec=address)) if name else address


def _reply_to(_site: sites.Site, value: str) -> str:
    return _address(value.strip(), "reply-to") if value.strip() else ""


def _support_url(_site: sites.Site, value: str) -> str:
    """An http(s) page or a mailto: address, anywhere (a publisher's help desk is often elsewhere)."""
    value = value.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if len(value) > 2048 or not _printable(value) or " " in value:
        raise click.ClickException("support URL must be one http(s) or mailto: URL")
    if parts.scheme == "mailto":
        return "mailto:" + _address(parts.path, "support URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.ClickException("support URL must be one http(s) or mailto: URL")
    return value


def _choice(*allowed: str):
    def check(_site: sites.Site, value: str) -> str:
        if value not in allowed:
            raise click.ClickException(f"one of: {', '.join(allowed)}")
        return value

    return check


def _amp_links_max(_site: sites.Site, value: str) -> int:
    """How many AMP reader ids one account may link (its AMP sessions, the oldest dropped); 0: none."""
    if not (value.strip().isascii() and value.strip().isdigit()) or int(value) > AMP_LINKS_LIMIT:
        raise click.ClickException(f"amp-links-max must be a whole number from 0 to {AMP_LINKS_LIMIT}")
    return int(value)


def _grant_lifetime(_site: sites.Site, value: str) -> int:
    """Seconds a grant is valid: long enough for the reader's browser to fetch the body with it."""
    low, high = keys.LIFETIME_MIN, keys.LIFETIME_MAX
    if not (value.strip().isascii() and value.strip().isdigit()) or not low <= int(value) <= high:
        raise click.ClickException(f"grant-lifetime must be a whole number of seconds from {low} to {high}")
    return int(value)


CHECKS = {
    "colour": _colour,
    "subscribe_url": _subscribe_url,
    "premium_name": _premium_name,
    "mail_from": _mail_from,
    "reply_to": _reply_to,
    "support_url": _support_url,
    "signed_articles": _choice("optional", "required"),
    "amp_counts_on": _choice("pingback", "authorization"),
    "amp_links_max": _amp_links_max,
    "grants": _choice("off", "on"),
    "content_protection": _choice("off", "on"),
    "grant_lifetime": _grant_lifetime,
}


def _name(value: str) -> str:
    """The name readers see: in every mail's subject, greeting and signature, and the default sender's name."""
    value = value.strip()
    if not value or len(value) > 200 or not _printable(value):
        raise click.ClickException("name must be 1 to 200 printable characters")
    return value


@click.command("settings")
@with_appcontext
@click.argument("slug")
@click.option("--name", help='The site\'s name as readers see it, in its pages and mails (Tempo: "Tempo.co").')
@click.option("--colour", help="Accent colour of the reader pages and walls, such as #b00.")
@click.option("--subscribe-url", help="Where the subscribe wall sends readers (on one of the site's origins).")
@click.option(
    "--premium-name", help='The subscriber-only section, named on walls and in mails (Tempo: "Laporan Utama").'
)
@click.option(
    "--mail-from",
    help="The sender of the site's mails, \"Name <address>\" (default: the site's name with MAIL_DEFAULT_SENDER's "
    "address). The address's domain must let meter's mail server send for it (SPF, DKIM).",
)
@click.option("--reply-to", help="Where replies to the site's mails go (default: the sender).")
@click.option("--support-url", help="Where readers get help (an http(s) page or mailto:), named in every mail.")
@click.option(
    "--signed-articles",
    help="required: the embed and AMP trust an article's class only when signed (docs/api.md); optional (default).",
)
@click.option("--amp-counts-on", help="pingback (default) or authorization: when an AMP view counts.")
@click.option(
    "--amp-links-max",
    help=f"AMP reader ids one account may link, each a session on its account page (default "
    f"{sites.AMP_LINKS_MAX}, the oldest dropped; 0: AMP logins link none).",
)
@click.option("--grants", help="on: every allowed, counted answer of POST /v1/access carries a grant; off (default).")
@click.option(
    "--content-protection",
    help="on: the embed's answers carry grants and meter.js fetches the article's body from the page's "
    "data-content-url with one (docs/api.md); off (default). Needs a grant key (flask sites grant-keys create).",
)
@click.option(
    "--grant-lifetime",
    help=f"Seconds a grant is valid ({keys.LIFETIME_MIN}-{keys.LIFETIME_MAX}; default {sites.GRANT_LIFETIME}).",
)
@audited(when=lambda params: any(v is not None for k, v in params.items() if k != "slug"))
def settings_command(slug: str, **given: str | None) -> None:
    """Show or change a site's settings: what readers see, and how far the pages it serves are trusted."""
    site = site_of(slug)
    name = given.pop("name")
    if name is not None:
        site.name = _name(name)
    settings = dict(site.settings or {})
    changes = {name: CHECKS[name](site, value) for name, value in given.items() if value is not None}
    if changes:
        settings.update(changes)
        site.settings = settings
    if changes or name is not None:
        db.session.commit()
        sites.forget_cached()
    click.echo(f"name\t{site.name}")
    for key in SHOWN:
        value = settings.get(key) or "-"
        if key == "amp_links_max":
            value = settings.get(key, f"{sites.AMP_LINKS_MAX} (default)")
        elif key == "grant_lifetime":
            value = settings.get(key, f"{sites.GRANT_LIFETIME} (default)")
        elif key == "mail_from":
            value = sites.mail_sender(sites.info(site)) + ("" if settings.get(key) else " (default)")
        click.echo(f"{key}\t{value}")
