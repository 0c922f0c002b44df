"""`flask mail …` (the outbox and its dead letters) and `flask worker`, the background loop that
delivers the outbox and settles unlocks in doubt."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from meter import worker
from meter.platform import mail
from meter.sites.operator import audited

mail_cli = AppGroup(
    "mail",
    help="The outbox and the worker that delivers it. When mail backs up: `status`, then `dead` and `retry`.",
)


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
@audited()
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
