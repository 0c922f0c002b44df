"""What the command groups share: looking up a site or a reader by what the operator typed, a
`--since` window, the progress bar, and the audit row of every command that changes something
(`audited`). Every refusal is a `click.ClickException`: one line, exit 1, never a traceback."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from sqlalchemy import event
from sqlalchemy.orm import Session

from meter.accounts import find_reader
from meter.accounts.models import Reader
from meter.console import audit
from meter.platform.db import db
from meter.sites.rules import sites


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


# --- the audit row of a command -------------------------------------------------------------------


def audited(
    when: Callable[[dict], bool] | None = None,
    reader: bool = False,
    shown: dict[str, Callable[[Any], Any]] | None = None,
) -> Callable:
    """Decorate a command that changes something (placed right above its `def`): it writes an audit row
    with "command line" as who, `cli.<the command's words>` as what (`cli.sites.policy`), the site of
    its SLUG and what was typed as the detail (a reader named by id, never by address; files by path,
    never their content; a flag only when given).

    The row joins the command's first commit, so a change is never without its row; a command that
    commits nothing writes it once it has run. A refused command (an exception before any commit)
    writes none. When the command's own domain already wrote a row in that transaction (`flask staff
    create` writes `staff.create`), that row is the command's. `when(params)` says whether a run
    changes anything (`sites policy` without --set only shows: no row). With `reader`, the command's
    EMAIL is a reader's of the site: the row names the reader's id, found before the command runs (a
    deletion leaves none to find after). `shown` says how a parameter is written where what was typed
    may hold a secret (a key revoked by its whole text is written by its prefix)."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def run(**params):
            if when is not None and not when(params):
                return command(**params)
            detail = _detail(params, reader, shown or {})
            trail = _Trail(_action(click.get_current_context()), detail, params.get("slug"))
            session = db.session()
            session.info.pop(audit.RECORDED, None)
            session.info[_TRAIL] = trail
            try:
                result = command(**params)
            finally:
                session.info.pop(_TRAIL, None)
            trail.after_success()
            return result

        run.audited = True  # type: ignore[attr-defined]  # the test that no changing command goes without reads it
        return run

    return decorate


def _action(ctx: click.Context) -> str:
    words = []
    while ctx.parent is not None:  # the root is the program (`flask`)
        words.append(ctx.info_name or ctx.command.name or "?")
        ctx = ctx.parent
    return "cli." + ".".join(reversed(words))


def _detail(params: dict, reader: bool, shown: dict[str, Callable[[Any], Any]]) -> dict:
    detail = {}
    for name, value in params.items():
        if value is None or value is False or value == () or name == "as_json":
            continue
        if reader and name == "email":
            site = sites.by_slug(params.get("slug", ""))
            found = find_reader(site.id, value) if site is not None else None
            if found is not None:
                detail["reader"] = found.id
            continue
        value = shown[name](value) if name in shown else value
        detail[name] = list(value) if isinstance(value, tuple) else value
    return detail


_TRAIL = "meter.command_trail"  # the running command's _Trail, in its session's info


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    trail = session.info.get(_TRAIL)
    if trail is not None:
        trail.before_commit(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    if _TRAIL in session.info:
        session.info.pop(audit.RECORDED, None)  # a domain row rolled back is no row


class _Trail:
    """One command's audit row: added to its first commit, or written after it when it made none."""

    def __init__(self, action: str, detail: dict, slug: str | None) -> None:
        self.action, self.detail, self.slug = action, detail, slug
        self.done = False

    def before_commit(self, session) -> None:
        if self.done:
            return
        self.done = True
        if not session.info.get(audit.RECORDED):  # else the domain's own row in this transaction is the command's
            self._record(commit=False)

    def after_success(self) -> None:
        if not self.done:
            self.done = True
            self._record(commit=True)

    def _record(self, commit: bool) -> None:
        site = sites.by_slug(self.slug) if self.slug else None
        audit.record(self.action, site=site, detail=self.detail, commit=commit)
