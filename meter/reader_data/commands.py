"""`flask readers export SLUG EMAIL` and `flask readers delete SLUG EMAIL [--yes]`: a reader's data, for operators.

What a reader can do on their account page (`meter.reader_data.rules`), for a reader who writes to
the publisher instead: a copy of everything meter holds about them, and its deletion. The export is
the same JSON the reader would download; the deletion is the same as theirs (the figures stay).
Each is logged (no address in the line) and is an audit row naming the reader by id (`common.audited`).
"""

from __future__ import annotations

import json
import logging
import os

import click
from flask.cli import with_appcontext

from meter.accounts import find_reader
from meter.accounts.models import Reader
from meter.platform.redis_conn import RedisUnavailable
from meter.reader_data.rules import erasure, export
from meter.sites import audited, sites

log = logging.getLogger(__name__)


def _site_and_reader(slug: str, email: str) -> tuple[sites.SiteInfo, Reader]:
    site = sites.by_slug(slug)
    if site is None:
        raise click.ClickException(f"unknown site: {slug}")
    reader = find_reader(site.id, email)
    if reader is None:
        raise click.ClickException(f"unknown reader on {slug}: {email}")
    return sites.info(site), reader


@click.command("export")
@click.argument("slug")
@click.argument("email")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the JSON to this file (made readable by its owner only) instead of printing it.",
)
@with_appcontext
@audited(reader=True)
def export_command(slug: str, email: str, output: str | None) -> None:
    """Everything meter holds about one reader, as JSON (what the reader's own download gives)."""
    site, reader = _site_and_reader(slug, email)
    text = json.dumps(export.export(site, reader), ensure_ascii=False, indent=2)
    log.info("operator exported the data of reader %s of site %s", reader.id, site.slug)
    if output is None:
        click.echo(text)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    click.echo(f"wrote the data of {reader.email} to {output}", err=True)


@click.command("delete")
@click.argument("slug")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@with_appcontext
@audited(reader=True)
def delete_command(slug: str, email: str, yes: bool) -> None:
    """Delete one reader and the data that names them; the unlock ledger keeps its rows, unlinked.

    Every token of the reader stops working, the address may register afresh, and the figures
    (GET /v1/stats) stay as they were. Without --yes, asks first.
    """
    site, reader = _site_and_reader(slug, email)
    address = reader.email
    if not yes:
        click.confirm(f"Delete {address} from {site.slug} for good?", abort=True)
    try:
        erased = erasure.erase(site, reader, "operator")
    except RedisUnavailable as exc:
        raise click.ClickException(f"Redis unreachable ({exc}): nothing was deleted; run this again") from None
    click.echo(
        f"deleted {address} from {site.slug}: {erased.sessions} sessions, {erased.identities} sign-ins, "
        f"{erased.mails} mails, {erased.gifts} gifts, {erased.unlocks_unlinked} unlocks unlinked from the ledger"
    )
