"""`flask sites grant-keys create|list|rotate|retire SLUG`: the keys meter signs a site's grants with.

Only the public half is ever shown (in the site's JWK Set, `GET /{site}/.well-known/jwks.json`); the
private half stays sealed in the database. `rotate` is the routine change: the new key signs and the
old one stays published until its grants have expired. `retire` is for a key that leaked: it leaves
the set at once, and the grants it signed are refused as soon as verifiers fetch the set again.
"""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from meter.platform.db import db
from meter.sites.operator import audited, site_of, utc_text
from meter.sites.rules import grant_keys as keys
from meter.sites.rules import sites

grant_keys_cli = AppGroup(
    "grant-keys", help="Keys meter signs grants with (`flask sites settings --content-protection on`, docs/api.md)."
)
ALG = click.option(
    "--alg", type=click.Choice(keys.ALGORITHMS), default="EdDSA", show_default=True, help="Ed25519 or P-256."
)


@grant_keys_cli.command("create")
@click.argument("slug")
@ALG
@audited()
def create(slug: str, alg: str) -> None:
    """Make the site's first grant key (a site that has one rotates it instead)."""
    site = site_of(slug)
    if keys.signing_key(site) is not None:
        raise click.ClickException(f"{slug} has a grant key already: rotate it (flask sites grant-keys rotate {slug})")
    key = keys.create(site, alg)
    db.session.commit()
    sites.forget_cached()
    click.echo(f"new grant key {key.kid} ({alg}) for {slug}; its public key: /{slug}/.well-known/jwks.json")


@grant_keys_cli.command("rotate")
@click.argument("slug")
@ALG
@audited()
def rotate(slug: str, alg: str) -> None:
    """A new key, published now, signs in two minutes; the old one stays in the JWK Set until its grants expire."""
    site = site_of(slug)
    new, old = keys.rotate(site, alg)
    db.session.commit()
    sites.forget_cached()
    if old is None:
        click.echo(f"new grant key {new.kid} ({alg}) for {slug} (it had none)")
        return
    click.echo(
        f"new grant key {new.kid} ({alg}) for {slug}, published now, signing from {utc_text(old.retired_at)}; "
        f"{old.kid} signs until then and stays published until {utc_text(old.published_until)}"
    )


@grant_keys_cli.command("retire")
@click.argument("slug")
@click.argument("kid")
@audited()
def retire(slug: str, kid: str) -> None:
    """Take a key out of signing and out of the JWK Set now (a leaked key); its grants are refused from then on."""
    site = site_of(slug)
    if not keys.retire(site, kid):
        raise click.ClickException(
            f"{slug} has no published grant key {kid!r} (see: flask sites grant-keys list {slug})"
        )
    db.session.commit()
    sites.forget_cached()
    click.echo(f"retired grant key {kid} of {slug}")


@grant_keys_cli.command("list")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def list_keys(slug: str, as_json: bool) -> None:
    """The site's grant keys: next (published, signs soon), signing, published (rotated out, its grants may
    still be valid) or retired."""
    site = site_of(slug)
    rows = [
        {
            "kid": key.kid,
            "alg": key.alg,
            "created_at": utc_text(key.created_at),
            "state": keys.state(key),
            "published_until": utc_text(key.published_until),
        }
        for key in site.grant_keys
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        until = f"\tuntil {row['published_until']}" if row["state"] == "published" else ""
        click.echo(f"{row['kid']}\t{row['alg']}\tcreated {row['created_at'][:10]}\t{row['state']}{until}")
