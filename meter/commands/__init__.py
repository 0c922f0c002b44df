"""Operator commands (`flask sites|readers|meter|mail …`): failures exit non-zero with one line."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import click
from flask import Flask
from flask.cli import AppGroup
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from sqlalchemy import func, select, update

from meter import worker
from meter.domain import metering, sites, subscriptions
from meter.domain.accounts import confirm, mail_budget
from meter.domain.accounts.common import find_reader
from meter.domain.metering import doubts
from meter.domain.policy import PolicyError, set_dotted
from meter.infra import mail
from meter.infra.db import db
from meter.infra.models import ApiKey, Reader, UnlockDoubt, utcnow
from meter.infra.redis_conn import RedisUnavailable

log = logging.getLogger(__name__)
RESEND_GAP = timedelta(hours=1)  # a reader mailed within this is skipped by a bulk resend

sites_cli = AppGroup("sites", help="Publisher sites, their API keys and metering policy.")
keys_cli = AppGroup("keys", help="API keys of a site: create a new one, revoke an old one (rotation).")
readers_cli = AppGroup("readers", help="Look up readers, resend activation mail, set subscriptions.")
meter_cli = AppGroup("meter", help="The meter of one reader.")
mail_cli = AppGroup(
    "mail",
    help="The outbox and the worker that delivers it. When mail backs up: `status`, then `dead` and `retry`.",
)
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def keys_list(slug: str, as_json: bool) -> None:
    """Key prefixes of a site, with their state (the keys themselves are never stored)."""
    site = _site(slug)
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
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
@click.option("--json", "as_json", is_flag=True, help="With --all-unverified: the summary as JSON, no progress bar.")
@click.option(
    "--force", is_flag=True, help="Send even when the address's mail budget (RATELIMIT_RESEND_EMAIL) is spent."
)
def readers_resend(
    slug: str, email: str | None, all_unverified: bool, since: str | None, dry_run: bool, as_json: bool, force: bool
) -> None:
    """Queue the activation mail again, for one reader or for all unverified ones.

    Each mail spends from the address's mail budget, as a reader's own resend does; an address whose
    budget is spent is refused (one reader) or skipped (--all-unverified), unless --force.
    With --all-unverified, readers who got an activation mail within the last hour are skipped, so
    running it twice sends nobody two mails. It ends with a summary: queued, skipped, failed.
    """
    site = _site(slug)
    info = sites.info(site)
    if bool(email) == all_unverified:
        raise click.UsageError("give EMAIL or --all-unverified")
    if email:
        reader = _reader(site, email)
        if reader.verified_at is not None:
            raise click.ClickException(f"{reader.email} is already verified")
        if not force:
            try:
                mail_budget.spend(site.id, reader.email_key)
            except mail_budget.Spent as exc:
                raise click.ClickException(
                    f"the mail budget of {reader.email} is spent: another mail may go in {exc.retry_after} s "
                    "(--force sends it now)"
                ) from None
        confirm.queue_activation(info, reader)
        db.session.commit()
        click.echo(f"queued activation mail to {reader.email}")
        return
    window = _parse_since(since)
    summary = bulk_resend(info, window, dry_run, progress=not as_json, force=force)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **summary}))
        return
    click.echo(
        f"{'would queue' if dry_run else 'queued'}: {summary['queued']}, "
        f"skipped (sent within the hour): {summary['skipped']}, failed: {summary['failed']}"
    )


def bulk_resend(
    site: sites.SiteInfo, window: timedelta | None, dry_run: bool, progress: bool, force: bool = False
) -> dict[str, int]:
    """Queue one activation mail per unverified reader, at most one per reader per hour, and (unless
    `force`) only within the address's mail budget.

    Each reader is claimed by a conditional UPDATE of last_activation_sent_at in the same transaction
    as its outbox row, so a second run (or two at once, or a run after an interrupted one) skips
    whoever already got a mail within the hour, and never queues two.
    """
    query = db.select(Reader.id).filter_by(site_id=site.id, verified_at=None).order_by(Reader.id)
    if window:
        query = query.where(Reader.created_at >= utcnow() - window)
    ids = db.session.scalars(query).all()
    counts = {"queued": 0, "skipped": 0, "failed": 0}
    with _progress(len(ids), "resending activation mail", enabled=progress) as advance:
        for reader_id in ids:
            recent = utcnow() - RESEND_GAP
            fresh = (Reader.id == reader_id) & Reader.verified_at.is_(None)
            fresh &= Reader.last_activation_sent_at.is_(None) | (Reader.last_activation_sent_at <= recent)
            try:
                if dry_run:
                    due = db.session.scalar(db.select(Reader.email_key).where(fresh))
                    counts["queued" if due and (force or not mail_budget.wait(site.id, due)) else "skipped"] += 1
                    continue
                claimed = db.session.execute(update(Reader).where(fresh).values(last_activation_sent_at=utcnow()))
                reader = db.session.get(Reader, reader_id) if claimed.rowcount == 1 else None
                if reader is None or not _within_budget(site, reader, force):
                    db.session.rollback()
                    counts["skipped"] += 1
                    continue
                confirm.queue_activation(site, reader)
                db.session.commit()
                counts["queued"] += 1
            except Exception as exc:  # noqa: BLE001 - one bad row is counted and logged; the run goes on
                db.session.rollback()
                counts["failed"] += 1
                log.warning("resend to reader %s failed: %s", reader_id, exc)
            finally:
                advance()
                db.session.expunge_all()  # 500 000 readers must not pile up in the session
    return counts


def _within_budget(site: sites.SiteInfo, reader: Reader, force: bool) -> bool:
    if force:
        return True
    try:
        mail_budget.spend(site.id, reader.email_key)
    except mail_budget.Spent:
        return False
    return True


@contextlib.contextmanager
def _progress(total: int, label: str, enabled: bool) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr (stdout keeps the summary for scripts)."""
    if not enabled:
        yield lambda: None
        return
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


@readers_cli.command("subscribe")
@click.argument("slug")
@click.argument("email")
@click.option("--until", "until", required=True, help="ISO-8601 date or time; UTC when no offset is given.")
def readers_subscribe(slug: str, email: str, until: str) -> None:
    """Give a reader a subscription until a date."""
    site = _site(slug)
    reader = _reader(site, email)
    subscriptions.set_until(reader, _parse_until(until).replace(tzinfo=UTC))
    click.echo(f"{reader.email} subscribed until {reader.subscription_until.isoformat()}Z")


@readers_cli.command("unsubscribe")
@click.argument("slug")
@click.argument("email")
def readers_unsubscribe(slug: str, email: str) -> None:
    """End a reader's subscription now."""
    site = _site(slug)
    reader = _reader(site, email)
    subscriptions.end(reader)
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


@meter_cli.command("settle")
def meter_settle() -> None:
    """Settle unlocks left in doubt by a lost Redis reply (the mail worker does this on every pass)."""
    pending = db.session.scalar(select(func.count()).select_from(UnlockDoubt))
    kept, forgotten = doubts.settle()
    left = pending - kept - forgotten
    click.echo(f"{kept} into the ledger (found in Redis), {forgotten} forgotten (not in Redis), {left} left")
    if left:
        raise click.ClickException("some remain (Redis unreachable, or too recent to settle): run this again")


@mail_cli.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due, then exit.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls when idle.")
def mail_worker(once: bool, interval: float) -> None:
    """Send queued mail, retrying with back-off until delivered."""
    worker.run(poll_interval=interval, once=once)


@mail_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def mail_status(as_json: bool) -> None:
    """Show the outbox: queued, failing, dead, sent, oldest waiting mail.

    queued: never tried yet; failing: tried, retrying with back-off; dead: given up after
    MAIL_MAX_ATTEMPTS (see `flask mail dead` and `flask mail retry`). The last error is shown too.
    """
    status = mail.outbox_status()
    if as_json:
        click.echo(json.dumps(status))
        return
    oldest = status["oldest_waiting_seconds"]
    click.echo(f"queued:  {status['queued']}")
    click.echo(f"failing: {status['failing']}  (retrying with back-off)")
    click.echo(f"dead:    {status['dead']}  (gave up; flask mail retry --all puts them back)")
    click.echo(f"sent:    {status['sent']}")
    click.echo(f"oldest waiting: {_age(oldest) if oldest is not None else '-'}")
    if status["last_error"]:
        click.echo(f"last error: {status['last_error']}")


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@mail_cli.command("dead")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@click.option("--limit", default=50, show_default=True, help="At most this many, newest first.")
def mail_dead(as_json: bool, limit: int) -> None:
    """List dead letters, with the ids `flask mail retry` takes.

    A dead letter is a mail the worker gave up on after MAIL_MAX_ATTEMPTS failed attempts.
    """
    rows = [
        {
            "id": row.id,
            "kind": row.kind,
            "to": row.to_addr,
            "attempts": row.attempts,
            "dead_at": row.dead_at.isoformat() if row.dead_at else None,
            "last_error": row.last_error,
        }
        for row in mail.dead_letters(limit)
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['id']}\t{row['kind']}\t{row['to']}\t{row['attempts']} attempts\t{row['last_error']}")
    click.echo(f"{len(rows)} dead letters shown")


@mail_cli.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Every dead letter.")
def mail_retry(ids: tuple[int, ...], retry_all: bool) -> None:
    """Put dead letters back in the queue.

    Give their outbox ids (from `flask mail dead`) or --all. They are due at once, with a fresh
    count of attempts; an id that is not a dead letter fails the command and requeues nothing.
    """
    if bool(ids) == retry_all:
        raise click.UsageError("give outbox IDS or --all")
    if ids:
        missing = sorted(set(ids) - set(mail.dead_ids(ids)))
        if missing:
            raise click.ClickException(f"not dead letters (unknown, waiting or sent): {', '.join(map(str, missing))}")
    count = mail.requeue_dead(None if retry_all else list(ids))
    click.echo(f"requeued {count} dead letters; the worker sends them on its next pass")


@click.command("worker")
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between passes when idle.")
def worker_command(once: bool, interval: float) -> None:
    """The background worker: delivers mail, settles unlocks in doubt (see meter/worker.py)."""
    worker.run(poll_interval=interval, once=once)


def init_app(app: Flask) -> None:
    from meter.commands.article_keys import article_keys_cli
    from meter.commands.crawlers import crawlers_cli
    from meter.commands.login_providers import login_providers_cli
    from meter.commands.reader_data import delete_command, export_command
    from meter.commands.site_settings import settings_command
    from meter.commands.staff import audit_cli, staff_cli

    sites_cli.add_command(settings_command)
    sites_cli.add_command(article_keys_cli)
    sites_cli.add_command(login_providers_cli)
    readers_cli.add_command(export_command)
    readers_cli.add_command(delete_command)
    for group in (sites_cli, readers_cli, meter_cli, mail_cli, worker_command, crawlers_cli, staff_cli, audit_cli):
        app.cli.add_command(group)
    if app.config.get("DEMO_SITE") or app.config.get("ENV_NAME") == "development":
        from meter.commands.demo_traffic import demo_cli

        app.cli.add_command(demo_cli)
