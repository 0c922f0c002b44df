"""`flask readers …`: look a reader up, resend the activation mail, set subscriptions by hand.

Times are shown and taken with their UTC offset, as the API shows and takes them: a time without
one is refused rather than guessed (an operator in Jakarta and a server in UTC would read it
seven hours apart).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import click
from flask.cli import AppGroup
from sqlalchemy import update

from meter.access import metering
from meter.accounts.models import Reader
from meter.accounts.rules import confirm, mail_budget, subscriptions
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites import audited, parse_since, progress, reader_of, site_of, sites, utc_text

log = logging.getLogger(__name__)
RESEND_GAP = timedelta(hours=1)  # a reader mailed within this is skipped by a bulk resend
UNTIL_EXAMPLE = "2027-01-01T00:00:00+07:00"

readers_cli = AppGroup("readers", help="Look up readers, resend activation mail, set subscriptions.")


def parse_until(value: str) -> datetime:
    """An ISO 8601 time with a UTC offset (or Z), as a naive UTC datetime (how the database keeps it)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 time: {value!r}; give one such as {UNTIL_EXAMPLE}") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(
            f"{value!r} has no UTC offset, so it could be any zone's; give one such as {UNTIL_EXAMPLE} "
            "or 2027-01-01T00:00:00Z (the API refuses a time without one too)"
        )
    try:
        return parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise click.BadParameter(f"out of range in UTC: {value}") from None


def _local(site: sites.Site, value: datetime) -> str:
    """A stored UTC time in the site's own zone, for people (the site's policy names the zone)."""
    zone = sites.info(site).policy.timezone
    return f"{value.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


@readers_cli.command("show")
@click.argument("slug")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def readers_show(slug: str, email: str, as_json: bool) -> None:
    """State, subscription and this period's unlocks of one reader (times in UTC, with the offset)."""
    site = site_of(slug)
    reader = reader_of(site, email)
    unlocked = metering.unlocked_articles(sites.info(site), metering.Subject.reader(reader.id).key)
    row = {
        "reader_id": reader.id,
        "email": reader.email,
        "state": reader.state,
        "created_at": utc_text(reader.created_at),
        "verified_at": utc_text(reader.verified_at),
        "subscription_until": utc_text(reader.subscription_until),
        "unlocked": sorted(unlocked),
    }
    if as_json:
        click.echo(json.dumps(row))
        return
    for key, value in row.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        shown = "-" if shown in (None, "") else shown
        if key == "subscription_until" and reader.subscription_until is not None:
            shown = f"{shown} ({_local(site, reader.subscription_until)})"
        click.echo(f"{key}: {shown}")


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
@audited(when=lambda params: not params["dry_run"], reader=True)
def readers_resend(
    slug: str, email: str | None, all_unverified: bool, since: str | None, dry_run: bool, as_json: bool, force: bool
) -> None:
    """Queue the activation mail again, for one reader or for all unverified ones.

    Each mail spends from the address's mail budget (RATELIMIT_RESEND_EMAIL, by default one mail
    per 3 minutes and 5 a day), as the reader's own "Resend now" button does: a second resend
    moments after the first is refused (one reader) or skipped (--all-unverified), unless --force.
    With --all-unverified, readers who got an activation mail within the last hour are skipped, so
    running it twice sends nobody two mails. It ends with a summary: queued, skipped, failed.
    """
    site = site_of(slug)
    info = sites.info(site)
    if bool(email) == all_unverified:
        raise click.UsageError("give EMAIL or --all-unverified")
    if email:
        reader = reader_of(site, email)
        if reader.verified_at is not None:
            raise click.ClickException(f"{reader.email} is already verified: no activation mail is needed")
        if not force:
            try:
                mail_budget.spend(site.id, reader.email_key)
            except mail_budget.Spent as exc:
                raise click.ClickException(
                    f"not sent: the mail budget of {reader.email} (RATELIMIT_RESEND_EMAIL) is spent, so the reader "
                    f"is not mailed twice in a row; the next mail may go in {exc.retry_after} s, or now with --force"
                ) from None
        confirm.queue_activation(info, reader)
        db.session.commit()
        spent = "" if force else " (it spent the address's mail budget: another resend waits, or needs --force)"
        click.echo(f"queued activation mail to {reader.email}{spent}")
        return
    window = parse_since(since)
    summary = bulk_resend(info, window, dry_run, show_progress=not as_json, force=force)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **summary}))
        return
    click.echo(
        f"{'would queue' if dry_run else 'queued'}: {summary['queued']}, "
        f"skipped (sent within the hour): {summary['skipped']}, failed: {summary['failed']}"
    )


def bulk_resend(
    site: sites.SiteInfo, window: timedelta | None, dry_run: bool, show_progress: bool, force: bool = False
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
    with progress(len(ids), "resending activation mail", enabled=show_progress) as advance:
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


@readers_cli.command("subscribe")
@click.argument("slug")
@click.argument("email")
@click.option(
    "--until", "until", required=True, help=f"ISO-8601 time with its UTC offset, such as {UNTIL_EXAMPLE} (or …Z)."
)
@audited(reader=True)
def readers_subscribe(slug: str, email: str, until: str) -> None:
    """Give a reader a subscription until a time."""
    site = site_of(slug)
    reader = reader_of(site, email)
    subscriptions.set_until(reader, parse_until(until).replace(tzinfo=UTC))  # (the figures hear of a new one)
    end = reader.subscription_until
    click.echo(f"{reader.email} subscribed until {utc_text(end)} ({_local(site, end)})")


@readers_cli.command("unsubscribe")
@click.argument("slug")
@click.argument("email")
@audited(reader=True)
def readers_unsubscribe(slug: str, email: str) -> None:
    """End a reader's subscription now."""
    site = site_of(slug)
    reader = reader_of(site, email)
    until = reader.subscription_until
    if until is None or until <= utcnow():
        click.echo(f"{reader.email} had no running subscription; nothing changed")
        return
    subscriptions.end(reader)
    click.echo(f"ended the subscription of {reader.email} (it ran until {utc_text(until)})")
