"""What the command groups share: looking up a site or a reader by what the operator typed, a
`--since` window, and the progress bar. Every refusal is a `click.ClickException`: one line, exit 1, never a traceback."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from meter.domain import sites
from meter.domain.accounts.common import find_reader
from meter.infra.models import Reader


def site_of(slug: str) -> sites.Site:
    site = sites.by_slug(slug)
    if site is None:
        raise click.ClickException(f"unknown site: {slug} (see: flask sites list)")
    return site


def parse_since(value: str | None) -> timedelta | None:
    """A `--since` window such as 12h, 7d or 2w; None when not given."""
    if value is None:
        return None
    m = re.fullmatch(r"(\d+)([hdw])", value)
    if not m:
        raise click.BadParameter("use a number and h, d or w, such as 7d")
    return timedelta(**{{"h": "hours", "d": "days", "w": "weeks"}[m.group(2)]: int(m.group(1))})


def reader_of(site: sites.Site, email: str) -> Reader:
    reader = find_reader(site.id, email)
    if reader is None:
        raise click.ClickException(f"unknown reader on {site.slug}: {email}")
    return reader


def utc_text(value: datetime | None) -> str | None:
    """A stored time (naive, in UTC) as ISO 8601 with its offset, as the API writes it."""
    return value.replace(tzinfo=UTC).isoformat() if value is not None else None


@contextlib.contextmanager
def progress(total: int, label: str, enabled: bool) -> Iterator[Callable[[], None]]:
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
