"""`flask sites …`: publisher sites, their API keys and their metering policy.

The site's settings (`sites settings`) and its article signing keys (`sites article-keys`) have
modules of their own; `init_app` hangs them under this group.
"""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from meter.platform.db import db
from meter.sites.models import ApiKey
from meter.sites.operator import audited, site_of
from meter.sites.rules import sites
from meter.sites.rules.policy import PolicyError, merge, value_of

MIN_PREFIX = 6  # sites.revoke_key names no key by fewer characters

sites_cli = AppGroup("sites", help="Publisher sites, their API keys and metering policy.")
keys_cli = AppGroup("keys", help="API keys of a site: create a new one, revoke an old one (rotation).")
sites_cli.add_command(keys_cli)


@sites_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Name shown to readers, such as 'Tempo'.")
@click.option("--origin", "origins", multiple=True, help="An origin of the site's pages (repeatable).")
@click.option("--locale", default="id", type=click.Choice(["id", "en"]), show_default=True)
@audited()
def sites_create(slug: str, name: str, origins: tuple[str, ...], locale: str) -> None:
    """Create a site with the default policy; its API key is printed once, on the last line."""
    try:
        site, key = sites.create_site(slug, name, list(origins), locale)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created site {site.slug} ({site.name}); origins: {', '.join(site.origins) or '-'}")
    click.echo("API key (shown once; keep it secret):")
    click.echo(key)


@sites_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def sites_list(as_json: bool) -> None:
    """All sites."""
    rows = [
        {"slug": s.slug, "name": s.name, "origins": s.origins, "locale": s.locale}
        for s in db.session.scalars(db.select(sites.Site).order_by(sites.Site.slug))
    ]
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for row in rows:
            click.echo(f"{row['slug']}\t{row['name']}\t{' '.join(row['origins'])}")


@keys_cli.command("create")
@click.argument("slug")
@audited()
def keys_create(slug: str) -> None:
    """Add an API key to a site (the old ones keep working until revoked)."""
    site = site_of(slug)
    key = sites.new_key(site)
    db.session.commit()
    click.echo(f"new API key for {slug} (shown once):")
    click.echo(key)


@keys_cli.command("revoke")
@click.argument("slug")
@click.argument("key_prefix")
@audited(shown={"key_prefix": lambda typed: typed[: sites.KEY_PREFIX_LEN]})
def keys_revoke(slug: str, key_prefix: str) -> None:
    """Revoke the key that starts with KEY_PREFIX (at least 6 characters, such as mk_AbC1, or the whole key)."""
    site = site_of(slug)
    if len(key_prefix) < MIN_PREFIX:
        raise click.ClickException(
            f"a key prefix needs at least {MIN_PREFIX} characters, such as mk_AbC1; {key_prefix!r} has "
            f"{len(key_prefix)} (the prefixes: flask sites keys list {slug})"
        )
    found = sites.revoke_key(site, key_prefix)
    if found == 0:
        raise click.ClickException(
            f"no live key of {slug} starts with {key_prefix!r} (the prefixes: flask sites keys list {slug})"
        )
    if found > 1:
        raise click.ClickException(
            f"{found} live keys of {slug} start with {key_prefix!r}: give more characters, or the whole key"
        )
    click.echo(f"revoked {key_prefix} of {slug}")


@keys_cli.command("list")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def keys_list(slug: str, as_json: bool) -> None:
    """Key prefixes of a site, with their state (the keys themselves are never stored)."""
    site = site_of(slug)
    rows = [
        {
            "prefix": key.prefix,
            "created_at": key.created_at.isoformat(),
            "state": "revoked" if key.revoked_at else "live",
        }
        for key in db.session.scalars(db.select(ApiKey).filter_by(site_id=site.id).order_by(ApiKey.id))
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['prefix']}…\tcreated {row['created_at'][:10]}\t{row['state']}")


@sites_cli.command("policy")
@click.argument("slug")
@click.option(
    "--set",
    "changes",
    multiple=True,
    metavar="KEY=VALUE",
    help="Such as quota.verified=3, period=week, meters.koran.quota.verified=2, sections.laput=koran "
    "(an empty value removes a meter or a section) or rules.search.arrival=search.",
)
@audited(when=lambda params: bool(params["changes"]))
def sites_policy(slug: str, changes: tuple[str, ...]) -> None:
    """Show the site's policy, or change it with --set."""
    site = site_of(slug)
    policy = dict(site.policy)
    values = {}
    try:
        for change in changes:
            key, sep, value = change.partition("=")
            if not sep:
                raise click.ClickException(f"expected KEY=VALUE, got {change!r}")
            values[key.strip()] = value_of(key.strip(), value.strip())
        # All at once: a rule's arrival and its campaign, or a meter and its rules, are valid only together.
        policy = merge(policy, values)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    if changes:
        site.policy = policy
        db.session.commit()
        sites.forget_cached()
    click.echo(json.dumps(site.policy, indent=2, sort_keys=True))
