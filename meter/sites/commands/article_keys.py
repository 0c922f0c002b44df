"""`flask sites article-keys create|list|revoke SLUG`: the secrets a publisher signs article descriptors with.

A secret is printed once, when made, alone on the last line (like an API key); only its id (`kid`)
is shown afterwards. Rotation: create a new key, sign with it, then revoke the old one.
"""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from meter.access import article_signing
from meter.platform.db import db
from meter.sites.models import ArticleKey
from meter.sites.operator import audited, site_of
from meter.sites.rules import sites

article_keys_cli = AppGroup(
    "article-keys", help="Keys to sign article descriptors with (`flask sites settings --signed-articles required`)."
)


@article_keys_cli.command("create")
@click.argument("slug")
@audited()
def create(slug: str) -> None:
    """Make a signing key; its secret is printed once, on the last line."""
    site = site_of(slug)
    kid, secret = article_signing.new_key(site)
    db.session.commit()
    sites.forget_cached()
    click.echo(f"new article signing key {kid} for {slug}; sign with kid {kid} and this secret (shown once):")
    click.echo(secret)


@article_keys_cli.command("list")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def list_keys(slug: str, as_json: bool) -> None:
    """The site's signing keys by id, with their state (never the secrets)."""
    site = site_of(slug)
    rows = [
        {
            "kid": key.kid,
            "created_at": key.created_at.isoformat() + "Z",
            "state": "revoked" if key.revoked_at else "live",
        }
        for key in db.session.scalars(db.select(ArticleKey).filter_by(site_id=site.id).order_by(ArticleKey.id))
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['kid']}\tcreated {row['created_at'][:10]}\t{row['state']}")


@article_keys_cli.command("revoke")
@click.argument("slug")
@click.argument("kid")
@audited()
def revoke(slug: str, kid: str) -> None:
    """Stop accepting signatures made with this key (within SITE_CACHE_TTL in every process)."""
    site = site_of(slug)
    if not article_signing.revoke(site, kid):
        raise click.ClickException(
            f"{slug} has no live article signing key {kid!r} (see: flask sites article-keys list {slug})"
        )
    db.session.commit()
    sites.forget_cached()
    click.echo(f"revoked article signing key {kid} of {slug}")
