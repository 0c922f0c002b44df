"""`flask sites settings SLUG [--colour #hex] [--subscribe-url URL]`: what readers see of a site."""

from __future__ import annotations

import re

import click
from flask.cli import with_appcontext

from meter.domain import sites
from meter.infra.db import db

COLOUR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


@click.command("settings")
@with_appcontext
@click.argument("slug")
@click.option("--colour", help="Accent colour of the reader pages and walls, such as #b00.")
@click.option("--subscribe-url", help="Where the subscribe wall sends readers (on one of the site's origins).")
def settings_command(slug: str, colour: str | None, subscribe_url: str | None) -> None:
    """Show or change a site's settings (colour, subscribe URL)."""
    site = sites.by_slug(slug)
    if site is None:
        raise click.ClickException(f"no site {slug!r}")
    settings = dict(site.settings or {})
    if colour is not None:
        if not COLOUR_RE.match(colour):
            raise click.ClickException("colour must be #rgb or #rrggbb")
        settings["colour"] = colour.lower()
    if subscribe_url is not None:
        origin = sites.normalise_origin(subscribe_url)
        if origin is None or origin not in (site.origins or []):
            raise click.ClickException("subscribe URL must be on one of the site's origins")
        settings["subscribe_url"] = subscribe_url
    if colour is not None or subscribe_url is not None:
        site.settings = settings
        db.session.commit()
        sites.forget_cached()
    for key in ("colour", "subscribe_url"):
        click.echo(f"{key}\t{settings.get(key, '-')}")
