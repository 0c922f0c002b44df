"""`flask sites webhooks add|list|remove|rotate-secret|enable|test|deliveries|send-again SLUG …`: the
endpoints that are sent the site's events (Standard Webhooks; docs/api.md, "Webhooks").

A signing secret is printed once, when made or rotated, alone on the last line (like an API key);
afterwards only the endpoint's id and URL are shown. Every change writes its audit row (`audited`);
a URL is written there without its query, which may hold the receiver's own token.
"""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from meter.sites import audited, site_of, utc_text
from meter.webhooks.models import WebhookEndpoint
from meter.webhooks.rules import endpoints
from meter.webhooks.rules import outbox as webhook_outbox

webhooks_cli = AppGroup("webhooks", help="Endpoints sent the site's events, signed (docs/api.md, Webhooks).")

_URL = {"url": endpoints.shown_url}


def _endpoint(site, endpoint_id: int) -> WebhookEndpoint:
    endpoint = endpoints.find(site.id, endpoint_id)
    if endpoint is None:
        raise click.ClickException(
            f"{site.slug} has no webhook endpoint {endpoint_id} (see: flask sites webhooks list)"
        )
    return endpoint


def _state(endpoint: WebhookEndpoint) -> str:
    if endpoint.disabled_at is not None:
        return f"disabled ({endpoint.disabled_reason})"
    return "failing" if endpoint.failing_since is not None else "live"


@webhooks_cli.command("add")
@click.argument("slug")
@click.argument("url")
@click.option(
    "--events",
    multiple=True,
    help=f"Event types to send, comma-separated or repeated (default: all): {', '.join(webhook_outbox.EVENTS)}.",
)
@audited(shown=_URL)
def add(slug: str, url: str, events: tuple[str, ...]) -> None:
    """Send the site's events to URL (https); its signing secret is printed once, on the last line."""
    site = site_of(slug)
    try:
        endpoint, secret = endpoints.add(site, url, list(events))
    except endpoints.EndpointError as exc:
        raise click.ClickException(str(exc)) from None
    chosen = ", ".join(endpoint.events) or "all events"
    click.echo(f"webhook endpoint {endpoint.id} of {slug}: {endpoint.url} ({chosen}); its signing secret (shown once):")
    click.echo(secret)


@webhooks_cli.command("list")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def list_endpoints(slug: str, as_json: bool) -> None:
    """The site's endpoints: id, URL, events, state (never the secrets)."""
    site = site_of(slug)
    rows = [
        {
            "id": endpoint.id,
            "url": endpoint.url,
            "events": endpoint.events or list(webhook_outbox.EVENTS),
            "state": _state(endpoint),
            "created_at": utc_text(endpoint.created_at),
            "last_success_at": utc_text(endpoint.last_success_at),
        }
        for endpoint in endpoints.listing(site.id)
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['id']}\t{row['url']}\t{','.join(row['events'])}\t{row['state']}")


@webhooks_cli.command("remove")
@click.argument("slug")
@click.argument("endpoint_id", type=int)
@audited()
def remove(slug: str, endpoint_id: int) -> None:
    """Stop sending to the endpoint; its deliveries (sent or waiting) go with it."""
    site = site_of(slug)
    endpoint = _endpoint(site, endpoint_id)
    url = endpoint.url
    endpoints.remove(site, endpoint)
    click.echo(f"removed webhook endpoint {endpoint_id} of {slug} ({url})")


@webhooks_cli.command("rotate-secret")
@click.argument("slug")
@click.argument("endpoint_id", type=int)
@audited()
def rotate_secret(slug: str, endpoint_id: int) -> None:
    """A new signing secret, printed once; the old one also signs until WEBHOOK_SECRET_OVERLAP has passed."""
    site = site_of(slug)
    endpoint = _endpoint(site, endpoint_id)
    secret = endpoints.rotate(site, endpoint)
    until = utc_text(endpoint.previous_until)
    click.echo(
        f"webhook endpoint {endpoint_id} of {slug}: a new signing secret; deliveries carry both signatures "
        f"until {until}, then only the new one's (shown once):"
    )
    click.echo(secret)


@webhooks_cli.command("enable")
@click.argument("slug")
@click.argument("endpoint_id", type=int)
@audited()
def enable(slug: str, endpoint_id: int) -> None:
    """Deliver to a disabled endpoint again (its dead deliveries: `send-again`)."""
    site = site_of(slug)
    endpoints.enable(site, _endpoint(site, endpoint_id))
    click.echo(f"webhook endpoint {endpoint_id} of {slug} is live again")


@webhooks_cli.command("test")
@click.argument("slug")
@click.argument("endpoint_id", type=int)
@audited()
def test(slug: str, endpoint_id: int) -> None:
    """Queue a `ping` event for the endpoint; the worker sends it (see `deliveries`)."""
    site = site_of(slug)
    row = endpoints.ping(site, _endpoint(site, endpoint_id))
    click.echo(f"ping {row.msg_id} queued for webhook endpoint {endpoint_id} of {slug}")


@webhooks_cli.command("deliveries")
@click.argument("slug")
@click.option("--endpoint", "endpoint_id", type=int, help="Only this endpoint's.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def deliveries(slug: str, endpoint_id: int | None, limit: int, as_json: bool) -> None:
    """The latest deliveries: event, attempts, last status, next try or when delivered."""
    site = site_of(slug)
    rows = [
        {
            "id": row.id,
            "endpoint": row.endpoint_id,
            "webhook_id": row.msg_id,
            "event": row.event_type,
            "state": "delivered" if row.delivered_at else "dead" if row.dead_at else "waiting",
            "attempts": row.attempts,
            "last_status": row.last_status,
            "last_error": row.last_error,
            "next_attempt_at": None if row.delivered_at or row.dead_at else utc_text(row.next_attempt_at),
            "delivered_at": utc_text(row.delivered_at),
        }
        for row in endpoints.deliveries(site.id, endpoint_id, limit)
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        when = row["delivered_at"] or row["next_attempt_at"] or ""
        click.echo(
            f"{row['id']}\t{row['event']}\t{row['state']}\t{row['attempts']}\t{row['last_status'] or '-'}\t{when}"
        )


@webhooks_cli.command("send-again")
@click.argument("slug")
@click.argument("delivery_id", type=int)
@audited()
def send_again(slug: str, delivery_id: int) -> None:
    """Send a delivery again now, under its own webhook-id (delivered, failing or dead)."""
    site = site_of(slug)
    if not endpoints.send_again(site, delivery_id):
        raise click.ClickException(f"{slug} has no webhook delivery {delivery_id}")
    click.echo(f"webhook delivery {delivery_id} of {slug} is due again")
