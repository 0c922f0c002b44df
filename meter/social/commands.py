"""`flask sites login-providers SLUG | add SLUG NAME … | remove SLUG NAME | reseal`: a site's sign-in providers.

Secrets are read from files (never from the command line, where `ps` and shell history would keep
them), sealed before they are stored, and never printed. Every process sees a change within
SITE_CACHE_TTL: the buttons appear (or go) without a restart.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from meter.platform.db import db
from meter.sites import audited, sites
from meter.social.rules import providers

MAX_SECRET_FILE = 8192


class _ListOrCommand(AppGroup):
    """`login-providers SLUG` lists; `login-providers add|remove …` changes (a slug is never a command name)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


login_providers_cli = _ListOrCommand(
    "login-providers",
    help="Sign in with other accounts: `login-providers SLUG` lists them; add and remove change them.",
)


def _site(slug: str) -> sites.Site:
    site = sites.by_slug(slug)
    if site is None:
        raise click.ClickException(f"unknown site: {slug}")
    return site


def _read_secret(path: str, option: str) -> str:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_SECRET_FILE:
            raise click.ClickException(f"{option}: the file is larger than {MAX_SECRET_FILE} bytes")
        return file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as exc:
        raise click.ClickException(f"{option}: cannot read {path} ({type(exc).__name__})") from None


@login_providers_cli.command("list", hidden=True)
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def list_providers(slug: str, as_json: bool) -> None:
    """The site's sign-in providers (never their secrets), with the redirect URI to register at each."""
    rows = providers.listing(_site(slug))
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo(f"{slug} has no sign-in providers (add one: flask sites login-providers add {slug} NAME --kind …)")
    for row in rows:
        extra = f"\tteam {row['team_id']} key {row['key_id']}" if row["kind"] == "apple" else ""
        click.echo(
            f"{row['name']}\t{row['kind']}\t{row['label']}\tclient {row['client_id']}\t"
            f"issuer {row['issuer'] or '-'}\tredirect URI {row['redirect_uri']}{extra}"
        )


@login_providers_cli.command("add")
@click.argument("slug")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(providers.KINDS), help="What the provider is.")
@click.option("--client-id", required=True, help="The client (app, Services) id the provider gave.")
@click.option(
    "--client-secret-file",
    type=click.Path(dir_okay=False),
    help="A file holding the client secret (not for apple: see --private-key-file).",
)
@click.option("--issuer", help="The OpenID Connect issuer URL (kind oidc only; found by its discovery document).")
@click.option("--label", help="The button's text (default: Google, Apple, Facebook; for oidc the name).")
@click.option("--team-id", help="Apple: your Apple Developer team id.")
@click.option("--key-id", help="Apple: the id of the Sign in with Apple private key.")
@click.option(
    "--private-key-file",
    type=click.Path(dir_okay=False),
    help="Apple: the private key file (.p8) the client secret is signed with.",
)
@audited()
def add(
    slug: str,
    name: str,
    kind: str,
    client_id: str,
    client_secret_file: str | None,
    issuer: str | None,
    label: str | None,
    team_id: str | None,
    key_id: str | None,
    private_key_file: str | None,
) -> None:
    """Add a sign-in provider, or replace the one of that NAME (the name is in its URLs)."""
    site = _site(slug)
    if kind == "apple":
        if not private_key_file or client_secret_file:
            raise click.ClickException("kind apple takes --private-key-file (with --team-id, --key-id), no secret file")
        secret = _read_secret(private_key_file, "--private-key-file")
    else:
        if not client_secret_file or private_key_file:
            raise click.ClickException(f"kind {kind} takes --client-secret-file")
        secret = _read_secret(client_secret_file, "--client-secret-file")
    try:
        _row, replaced = providers.add(
            site, name, kind, client_id, secret, issuer=issuer, label=label, team_id=team_id, key_id=key_id
        )
    except providers.ProviderError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    sites.forget_cached()
    click.echo(f"{'replaced' if replaced else 'added'} sign-in provider {name} ({kind}) of {slug}")
    click.echo(f"register this redirect URI at the provider: {providers.redirect_uri(slug, name)}")


@login_providers_cli.command("remove")
@click.argument("slug")
@click.argument("name")
@audited()
def remove(slug: str, name: str) -> None:
    """Remove a sign-in provider; the readers it signed in keep their accounts."""
    site = _site(slug)
    if not providers.remove(site, name):
        raise click.ClickException(f"{slug} has no sign-in provider {name!r} (see: flask sites login-providers {slug})")
    db.session.commit()
    sites.forget_cached()
    click.echo(f"removed sign-in provider {name} of {slug}; readers it signed in keep their accounts")


@login_providers_cli.command("reseal")
@audited()
def reseal() -> None:
    """Seal every site's provider secrets with the current SECRET_KEY: run it before the old key leaves
    SECRET_KEY_FALLBACKS (docs/operations.md, rotating SECRET_KEY)."""
    done, failed = providers.reseal_all()
    db.session.commit()
    sites.forget_cached()
    click.echo(f"resealed {done} provider secret(s) with the current SECRET_KEY")
    if failed:
        raise click.ClickException(
            f"no configured key opens: {', '.join(failed)} (add the old key to SECRET_KEY_FALLBACKS, or add them again)"
        )
