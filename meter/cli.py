"""Operator commands (`flask sites|readers|meter|mail …`): failures exit non-zero with one line."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import click
from flask import Flask
from flask.cli import AppGroup

from . import mail, metering, sites
from .accounts import confirm
from .accounts.common import find_reader
from .extensions import db
from .models import ApiKey, Reader, utcnow
from .policy import PolicyError, set_dotted
from .redisconn import RedisUnavailable

sites_cli = AppGroup("sites", help="Publisher sites, their API keys and metering policy.")
keys_cli = AppGroup("keys", help="API keys of a site: create a new one, revoke an old one (rotation).")
readers_cli = AppGroup("readers", help="Look up readers, resend activation mail, set subscriptions.")
meter_cli = AppGroup("meter", help="The meter of one reader.")
mail_cli = AppGroup("mail", help="The outbox and the worker that delivers it.")
sites_cli.add_command(keys_cli)


def _site(slug: str) -> sites.Site:
    site = sites.by_slug(slug)
    if site is None:
        raise click.ClickException(f"unknown site: {slug}")
    return site


def _reader(site: sites.Site, email: str) -> Reader:
    reader = find_reader(site.id, email)
    if reader is None:
        raise click.ClickException(f"unknown reader on {site.slug}: {email}")
    return reader


def _parse_until(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 date: {value}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise click.BadParameter(f"out of range in UTC: {value}") from None


def _parse_since(value: str | None) -> timedelta | None:
    if value is None:
        return None
    m = re.fullmatch(r"(\d+)([hdw])", value)
    if not m:
        raise click.BadParameter("use a number and h, d or w, such as 7d")
    return timedelta(**{{"h": "hours", "d": "days", "w": "weeks"}[m.group(2)]: int(m.group(1))})


# --- sites -------------------------------------------------------------------------------------


@sites_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Name shown to readers, such as 'Tempo'.")
@click.option("--origin", "origins", multiple=True, help="An origin of the site's pages (repeatable).")
@click.option("--locale", default="id", type=click.Choice(["id", "en"]), show_default=True)
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
@click.option("--json", "as_json", is_flag=True)
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
def keys_create(slug: str) -> None:
    """Add an API key to a site (the old ones keep working until revoked)."""
    site = _site(slug)
    key = sites.new_key(site)
    db.session.commit()
    click.echo(f"new API key for {slug} (shown once):")
    click.echo(key)


@keys_cli.command("revoke")
@click.argument("slug")
@click.argument("key_prefix")
def keys_revoke(slug: str, key_prefix: str) -> None:
    """Revoke the key that starts with KEY_PREFIX (at least 6 characters, such as mk_AbC1)."""
    site = _site(slug)
    found = sites.revoke_key(site, key_prefix)
    if found != 1:
        raise click.ClickException(f"{found} live keys of {slug} start with {key_prefix!r}; give exactly one")
    click.echo(f"revoked {key_prefix} of {slug}")


@keys_cli.command("list")
@click.argument("slug")
def keys_list(slug: str) -> None:
    """Key prefixes of a site, with their state."""
    site = _site(slug)
    for key in db.session.scalars(db.select(ApiKey).filter_by(site_id=site.id).order_by(ApiKey.id)):
        click.echo(f"{key.prefix}…\tcreated {key.created_at:%Y-%m-%d}\t{'revoked' if key.revoked_at else 'live'}")


@sites_cli.command("policy")
@click.argument("slug")
@click.option("--set", "changes", multiple=True, metavar="KEY=VALUE", help="Such as quota.verified=3 or period=week.")
def sites_policy(slug: str, changes: tuple[str, ...]) -> None:
    """Show the site's policy, or change it with --set."""
    site = _site(slug)
    policy = dict(site.policy)
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep:
            raise click.ClickException(f"expected KEY=VALUE, got {change!r}")
        try:
            policy = set_dotted(policy, key.strip(), value.strip())
        except PolicyError as exc:
            raise click.ClickException(str(exc)) from None
    if changes:
        site.policy = policy
        db.session.commit()
        sites.forget_cached()
    click.echo(json.dumps(site.policy, indent=2, sort_keys=True))


# --- readers -----------------------------------------------------------------------------------


@readers_cli.command("show")
@click.argument("slug")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True)
def readers_show(slug: str, email: str, as_json: bool) -> None:
    """State, subscription and this period's unlocks of one reader."""
    site = _site(slug)
    reader = _reader(site, email)
    unlocked = metering.unlocked_articles(sites.info(site), metering.Subject.reader(reader.id).key)
    row = {
        "reader_id": reader.id,
        "email": reader.email,
        "state": reader.state,
        "created_at": reader.created_at.isoformat(),
        "verified_at": reader.verified_at.isoformat() if reader.verified_at else None,
        "subscription_until": reader.subscription_until.isoformat() if reader.subscription_until else None,
        "unlocked": sorted(unlocked),
    }
    if as_json:
        click.echo(json.dumps(row))
        return
    for key, value in row.items():
        click.echo(f"{key}: {', '.join(value) if isinstance(value, list) else value}")


@readers_cli.command("resend-activation")
@click.argument("slug")
@click.argument("email", required=False)
@click.option("--all-unverified", is_flag=True, help="Every unverified reader of the site.")
@click.option("--since", help="With --all-unverified: only readers registered within, such as 7d or 12h.")
@click.option("--dry-run", is_flag=True, help="Count, send nothing.")
def readers_resend(slug: str, email: str | None, all_unverified: bool, since: str | None, dry_run: bool) -> None:
    """Queue the activation mail again, for one reader or for all unverified ones."""
    site = _site(slug)
    info = sites.info(site)
    if bool(email) == all_unverified:
        raise click.UsageError("give EMAIL or --all-unverified")
    if email:
        reader = _reader(site, email)
        if reader.verified_at is not None:
            raise click.ClickException(f"{reader.email} is already verified")
        confirm.queue_activation(info, reader)
        db.session.commit()
        click.echo(f"queued activation mail to {reader.email}")
        return
    query = db.select(Reader).filter_by(site_id=site.id, verified_at=None).order_by(Reader.id)
    window = _parse_since(since)
    if window:
        query = query.where(Reader.created_at >= utcnow() - window)
    readers = db.session.scalars(query).all()
    recent = utcnow() - timedelta(hours=1)
    queued = skipped = 0
    with click.progressbar(readers, label="resending", show_pos=True) as bar:
        for reader in bar:
            if reader.last_activation_sent_at and reader.last_activation_sent_at > recent:
                skipped += 1
                continue
            if not dry_run:
                confirm.queue_activation(info, reader)
                db.session.commit()
            queued += 1
    click.echo(
        f"{'would queue' if dry_run else 'queued'}: {queued}, skipped (sent within the hour): {skipped}, failed: 0"
    )


@readers_cli.command("subscribe")
@click.argument("slug")
@click.argument("email")
@click.option("--until", "until", required=True, help="ISO-8601 date or time; UTC when no offset is given.")
def readers_subscribe(slug: str, email: str, until: str) -> None:
    """Give a reader a subscription until a date."""
    site = _site(slug)
    reader = _reader(site, email)
    reader.subscription_until = _parse_until(until)
    db.session.commit()
    metering.forget_reader_state(site.id, reader.id)
    click.echo(f"{reader.email} subscribed until {reader.subscription_until.isoformat()}Z")


@readers_cli.command("unsubscribe")
@click.argument("slug")
@click.argument("email")
def readers_unsubscribe(slug: str, email: str) -> None:
    """End a reader's subscription now."""
    site = _site(slug)
    reader = _reader(site, email)
    reader.subscription_until = None
    db.session.commit()
    metering.forget_reader_state(site.id, reader.id)
    click.echo(f"{reader.email} has no subscription")


# --- meter and mail ----------------------------------------------------------------------------


@meter_cli.command("reset")
@click.argument("slug")
@click.argument("email")
def meter_reset(slug: str, email: str) -> None:
    """Clear this period's unlocks of one reader."""
    site = _site(slug)
    reader = _reader(site, email)
    try:
        count = metering.reset(sites.info(site), metering.Subject.reader(reader.id).key)
    except RedisUnavailable as exc:
        raise click.ClickException(
            f"Redis unreachable ({exc}): the cached unlocks of {reader.email} remain; run this again"
        ) from None
    click.echo(f"cleared {count} unlocks of {reader.email}")


@mail_cli.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due, then exit.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls when idle.")
def mail_worker(once: bool, interval: float) -> None:
    """Send queued mail, retrying with back-off until delivered."""
    mail.run_worker(poll_interval=interval, once=once)


def init_app(app: Flask) -> None:
    for group in (sites_cli, readers_cli, meter_cli, mail_cli):
        app.cli.add_command(group)
