"""Changes made on the command line are in the audit log: who ("command line"), the command, what was
typed (never a secret, a reader by id), on which site; the site's owner sees them in the console."""

from __future__ import annotations

import json

import click

from meter.accounts.models import Reader
from meter.cli import GROUPS
from meter.platform.db import db
from meter.stats.commands import demo_cli
from tests.console_helpers import staff_client

# Commands that change nothing (they show, or they are the worker): every other command writes its row.
READ_ONLY = {
    "audit show",
    "crawlers show",
    "mail dead",
    "mail status",
    "mail worker",
    "readers show",
    "sites article-keys list",
    "sites experiments show",
    "sites grant-keys list",
    "sites keys list",
    "sites list",
    "sites login-providers list",
    "sites webhooks deliveries",
    "sites webhooks list",
    "staff list",
    "worker",
}


def _audit(runner, *args) -> list[dict]:
    result = runner.invoke(args=["audit", "show", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _ok(runner, *args: str) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def _commands(commands, path: tuple[str, ...] = ()):
    for command in commands:
        if isinstance(command, click.Group):
            yield from _commands(command.commands.values(), (*path, command.name))
        else:
            yield " ".join((*path, command.name)), command


def test_command_line_changes_are_audited_and_shown_to_the_sites_owner(app, runner, api, verified_reader, tmp_path):
    """The finding: `sites policy --set`, `readers subscribe` and `login-providers add` left no row anywhere."""
    verified_reader("pembaca@example.com")
    secret = tmp_path / "secret"
    secret.write_text("the-client-secret-value\n")
    _ok(runner, "sites", "policy", "tempo", "--set", "quota.verified=3")
    _ok(runner, "sites", "policy", "tempo")  # only shown: no row
    _ok(runner, "readers", "subscribe", "tempo", "pembaca@example.com", "--until", "2099-01-01T00:00:00Z")
    add = ["sites", "login-providers", "add", "tempo", "google", "--kind", "google", "--client-id", "the-client"]
    _ok(runner, *add, "--client-secret-file", str(secret))
    refused = runner.invoke(args=["sites", "policy", "tempo", "--set", "quota.verified=many"])
    assert refused.exit_code == 1  # refused: nothing changed, no row

    rows = _audit(runner, "--site", "tempo")
    assert [(e["actor"], e["action"]) for e in rows] == [
        ("command line", "cli.sites.login-providers.add"),
        ("command line", "cli.readers.subscribe"),
        ("command line", "cli.sites.policy"),
    ]
    with app.app_context():
        reader_id = db.session.scalar(db.select(Reader.id).filter_by(email="pembaca@example.com"))
    assert rows[2]["detail"] == {"slug": "tempo", "changes": ["quota.verified=3"]}
    assert rows[1]["detail"] == {"slug": "tempo", "reader": reader_id, "until": "2099-01-01T00:00:00Z"}
    assert "pembaca" not in json.dumps(rows) and "the-client-secret-value" not in json.dumps(rows)
    assert rows[0]["detail"]["client_id"] == "the-client"

    owner = staff_client(app, runner, "own@tempo.co", "tempo", "owner")
    page = owner.get("/console/tempo/audit").get_data(as_text=True)
    for action in ("cli.sites.policy", "cli.readers.subscribe", "cli.sites.login-providers.add"):
        assert f'data-action="{action}"' in page


def test_every_command_that_changes_something_writes_its_row():
    """Each of meter's commands either is marked by the one helper (`meter.sites.operator.audited`) or
    changes nothing."""
    commands = dict(_commands((*GROUPS, demo_cli)))
    assert set(commands) >= READ_ONLY, sorted(READ_ONLY - set(commands))
    unaudited = sorted(
        path
        for path, command in commands.items()
        if path not in READ_ONLY and not getattr(command.callback, "audited", False)
    )
    assert unaudited == []


def test_a_staff_command_writes_one_row_not_two(app, runner, api):
    _ok(runner, "staff", "create", "ed@tempo.co", "--site", "tempo", "--role", "editor")
    _ok(runner, "staff", "reseal")
    assert [e["action"] for e in _audit(runner)] == ["cli.staff.reseal", "staff.create"]


def test_a_key_revoked_by_its_whole_text_is_written_by_its_prefix(app, runner, api):
    second = _ok(runner, "sites", "keys", "create", "tempo").strip().splitlines()[-1]
    _ok(runner, "sites", "keys", "revoke", "tempo", second)
    rows = _audit(runner, "--site", "tempo")
    assert [e["action"] for e in rows] == ["cli.sites.keys.revoke", "cli.sites.keys.create"]
    assert rows[0]["detail"] == {"slug": "tempo", "key_prefix": second[:12]}
    assert second not in json.dumps(rows)
