"""`flask sites settings SLUG [--colour #hex] [--subscribe-url URL] [--premium-name TEXT] …`: a site's settings."""

from __future__ import annotations

import re

import click
from flask.cli import with_appcontext

from meter.domain import sites
from meter.infra.db import db

COLOUR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
SHOWN = ("colour", "subscribe_url", "premium_name", "signed_articles", "amp_counts_on")


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


def _choice(*allowed: str):
    def check(_site: sites.Site, value: str) -> str:
        if value not in allowed:
            raise click.ClickException(f"one of: {', '.join(allowed)}")
        return value

    return check


CHECKS = {
    "colour": _colour,
    "subscribe_url": _subscribe_url,
    "premium_name": _premium_name,
    "signed_articles": _choice("optional", "required"),
    "amp_counts_on": _choice("pingback", "authorization"),
}


@click.command("settings")
@with_appcontext
@click.argument("slug")
@click.option("--colour", help="Accent colour of the reader pages and walls, such as #b00.")
@click.option("--subscribe-url", help="Where the subscribe wall sends readers (on one of the site's origins).")
@click.option(
    "--premium-name", help='The subscriber-only section, named on walls and in mails (Tempo: "Laporan Utama").'
)
@click.option(
    "--signed-articles",
    help="required: the embed and AMP trust an article's class only when signed (docs/api.md); optional (default).",
)
@click.option("--amp-counts-on", help="pingback (default) or authorization: when an AMP view counts.")
def settings_command(slug: str, **given: str | None) -> None:
    """Show or change a site's settings: what readers see, and how far the pages it serves are trusted."""
    site = sites.by_slug(slug)
    if site is None:
        raise click.ClickException(f"no site {slug!r}")
    settings = dict(site.settings or {})
    changes = {name: CHECKS[name](site, value) for name, value in given.items() if value is not None}
    if changes:
        settings.update(changes)
        site.settings = settings
        db.session.commit()
        sites.forget_cached()
    for key in SHOWN:
        click.echo(f"{key}\t{settings.get(key) or '-'}")
