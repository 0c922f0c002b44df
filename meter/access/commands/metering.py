"""`flask meter …`: the meter of one reader, and the unlocks a lost Redis reply left in doubt."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from meter.access.models import UnlockDoubt
from meter.access.rules import metering
from meter.access.rules.metering import doubts, journal
from meter.platform.db import db
from meter.platform.redis_conn import RedisUnavailable
from meter.sites import audited, reader_of, site_of, sites

meter_cli = AppGroup("meter", help="The meter of one reader.")


@meter_cli.command("reset")
@click.argument("slug")
@click.argument("email")
@audited(reader=True)
def meter_reset(slug: str, email: str) -> None:
    """Clear this period's unlocks of one reader."""
    site = site_of(slug)
    reader = reader_of(site, email)
    try:
        count = metering.reset(sites.info(site), metering.Subject.reader(reader.id).key)
    except RedisUnavailable as exc:
        raise click.ClickException(
            f"Redis unreachable ({exc}): the cached unlocks of {reader.email} remain; run this again"
        ) from None
    click.echo(f"cleared {count} unlocks of {reader.email}")


@meter_cli.command("settle")
@audited()
def meter_settle() -> None:
    """Write the journaled unlocks into the ledger and settle those left in doubt by a lost Redis reply
    (the worker does both by itself)."""
    try:
        taken = journal.drain()
    except RedisUnavailable as exc:
        raise click.ClickException(f"Redis unreachable ({exc}): the journaled unlocks wait; run this again") from None
    click.echo(f"{taken} journaled unlocks into the ledger")
    pending = db.session.scalar(select(func.count()).select_from(UnlockDoubt))
    kept, forgotten = doubts.settle()
    left = pending - kept - forgotten
    click.echo(f"{kept} into the ledger (found in Redis), {forgotten} forgotten (not in Redis), {left} left")
    if left:
        raise click.ClickException("some remain (Redis unreachable, or too recent to settle): run this again")
