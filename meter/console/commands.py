"""`flask staff create|list|disable|reset|reseal` and `flask audit show`: the console's accounts and its log.

`create` mails nothing: the set-up link is printed alone on the last line, for the operator to hand
to the member (it works once, for STAFF_SETUP_MAX_AGE). Every change is written to the audit log
with "command line" as who did it.
"""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from meter.console.rules import audit, roles
from meter.console.rules import staff_accounts as accounts
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites import audited, parse_since, sites
from meter.social import sealing

staff_cli = AppGroup("staff", help="Publisher console accounts: create (a set-up link), list, disable, reset.")
audit_cli = AppGroup("audit", help="The console's audit log.")


def _member(email: str):
    staff = accounts.find(email)
    if staff is None:
        raise click.ClickException(f"no staff member {email}")
    return staff


@staff_cli.command("create")
@click.argument("email")
@click.option("--site", "slug", required=True, help="The site's slug; run again with another to add a site.")
@click.option("--role", required=True, type=click.Choice(roles.ROLES), help="support < editor < owner.")
@audited()
def staff_create(email: str, slug: str, role: str) -> None:
    """Give EMAIL a role on a site (making the account); a new account's set-up link is printed last."""
    site = sites.by_slug(slug)
    if site is None:
        raise click.ClickException(f"unknown site: {slug}")
    try:
        created = accounts.create(email, site, role)
    except accounts.StaffError as exc:
        raise click.ClickException(str(exc)) from None
    staff = created.staff
    click.echo(f"{'created' if created.new else 'updated'} {staff.email}: {role} on {slug}")
    if created.link is None:
        click.echo("already set up (flask staff reset EMAIL gives a new set-up link)")
        return
    hours = current_app.config["STAFF_SETUP_MAX_AGE"] // 3600
    click.echo(f"set-up link (works once, for {hours} hours; hand it over privately):")
    click.echo(created.link)


@staff_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def staff_list(as_json: bool) -> None:
    """Every staff member, their state and roles."""
    rows = accounts.listing()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        grants = " ".join(f"{slug}:{role}" for slug, role in sorted(row["sites"].items())) or "-"
        click.echo(f"{row['email']}\t{row['state']}\t{grants}")
    click.echo(f"{len(rows)} staff members")


@staff_cli.command("disable")
@click.argument("email")
@audited()
def staff_disable(email: str) -> None:
    """The member can no longer sign in; their sessions end now."""
    staff = _member(email)
    accounts.disable(staff)
    click.echo(f"disabled {staff.email}; every session of theirs has ended")


@staff_cli.command("reset")
@click.argument("email")
@audited()
def staff_reset(email: str) -> None:
    """A new set-up link (password and authenticator again), for a lost phone or password; sessions end."""
    staff = _member(email)
    link = accounts.reset(staff)
    click.echo(f"{staff.email} must set up again; set-up link (works once):")
    click.echo(link)


@staff_cli.command("reseal")
@audited()
def staff_reseal() -> None:
    """Seal the authenticator secrets again with the current SECRET_KEY (before an old key leaves the fallbacks)."""
    try:
        count = accounts.reseal_all()
    except sealing.SealError as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc}: nothing resealed; `flask staff reset` those members") from None
    db.session.commit()
    click.echo(f"resealed {count} authenticator secrets")


@audit_cli.command("show")
@click.option("--site", "slug", help="Only this site's rows.")
@click.option("--since", help="Only rows this recent, such as 7d or 12h.")
@click.option("--limit", default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def audit_show(slug: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Who did what, when, on which site (newest first)."""
    site_id = None
    if slug:
        site = sites.by_slug(slug)
        if site is None:
            raise click.ClickException(f"unknown site: {slug}")
        site_id = site.id
    window = parse_since(since)
    rows = audit.entries(site_id=site_id, since=utcnow() - window if window else None, limit=limit)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "at": e.at.isoformat() + "Z",
                        "actor": e.actor,
                        "site": e.site_slug,
                        "action": e.action,
                        "detail": e.detail,
                    }
                    for e in rows
                ]
            )
        )
        return
    for e in rows:
        click.echo(
            f"{e.at.isoformat(timespec='seconds')}Z\t{e.actor}\t{e.site_slug or '-'}\t{e.action}\t{audit.describe(e.detail)}"
        )
