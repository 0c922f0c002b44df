"""The operator's command line (`flask sites|readers|meter|mail|worker|crawlers|staff|audit …`), one module per group.

Every command's failure is one line and a non-zero exit (`click.ClickException`), never a traceback;
a configuration error stops the start the same way (`wsgi.py`, `bin/meter`). `init_app` hangs the
groups on the app's CLI; a new group is a module of its own, added to `GROUPS` below.
"""

from __future__ import annotations

from flask import Flask

from meter.access.commands.crawlers import crawlers_cli
from meter.access.commands.metering import meter_cli
from meter.accounts.commands import readers_cli
from meter.console.commands import audit_cli, staff_cli
from meter.mail_commands import mail_cli, worker_command
from meter.reader_data.commands import delete_command, export_command
from meter.sites.commands.article_keys import article_keys_cli
from meter.sites.commands.grant_keys import grant_keys_cli
from meter.sites.commands.settings import settings_command
from meter.sites.commands.sites import sites_cli
from meter.social.commands import login_providers_cli
from meter.stats.experiments_cli import experiments_cli
from meter.webhooks.commands import webhooks_cli

sites_cli.add_command(settings_command)
sites_cli.add_command(article_keys_cli)
sites_cli.add_command(grant_keys_cli)
sites_cli.add_command(login_providers_cli)
sites_cli.add_command(webhooks_cli)
sites_cli.add_command(experiments_cli)
readers_cli.add_command(export_command)
readers_cli.add_command(delete_command)
GROUPS = (sites_cli, readers_cli, meter_cli, mail_cli, worker_command, crawlers_cli, staff_cli, audit_cli)


def init_app(app: Flask) -> None:
    for group in GROUPS:
        app.cli.add_command(group)
    if app.config.get("DEMO_SITE") or app.config.get("ENV_NAME") == "development":
        from meter.stats.commands import demo_cli  # it makes readers up: never in production

        app.cli.add_command(demo_cli)
