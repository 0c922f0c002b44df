"""`flask sites experiments show|end SLUG`: a meter's experiment, its figures per variant, and its end.

An experiment is set with the rest of the policy (`flask sites policy SLUG --set
experiment='{…}'`, `--set meters.koran.experiment.variants.b.quota.verified=4`); here it is read and
ended. Ending sets its end to now and, with `--adopt VARIANT`, makes that variant's quotas the meter's
own; the experiment stays in the policy with `adopted`, so that its figures are still shown. Both
write an audit row (`cli.sites.experiments.end`).
"""

from __future__ import annotations

import json
from datetime import datetime

import click
from flask.cli import AppGroup

from meter.platform import clock
from meter.platform.db import db
from meter.sites import PolicyError, audited, merge, site_of, sites
from meter.stats import rules as stats

experiments_cli = AppGroup("experiments", help="The meters' experiments: their figures per variant, and their end.")


@experiments_cli.command("show")
@click.argument("slug")
def experiments_show(slug: str) -> None:
    """Each experiment of the site's meters, its figures per variant (as GET /v1/stats gives them), as JSON."""
    site = sites.info(site_of(slug))
    click.echo(json.dumps(stats.experiments(site), indent=2))


@experiments_cli.command("end")
@click.argument("slug")
@click.option("--meter", "meter_name", default="default", show_default=True, help="The meter whose experiment ends.")
@click.option("--adopt", help="A variant whose quotas become the meter's own (the winner).")
@audited()
def experiments_end(slug: str, meter_name: str, adopt: str | None) -> None:
    """End the meter's experiment now; with --adopt, its meter takes that variant's quotas."""
    site = site_of(slug)
    prefix = "" if meter_name == "default" else f"meters.{meter_name}."
    holder = site.policy if not prefix else site.policy.get("meters", {}).get(meter_name)
    experiment = (holder or {}).get("experiment")
    if experiment is None:
        raise click.ClickException(f"{prefix}experiment: the meter {meter_name!r} of {slug} runs no experiment")
    changes: dict = {}
    now = clock.now()
    if now < datetime.fromisoformat(experiment["end"]):
        changes[f"{prefix}experiment.end"] = now.isoformat()
    if adopt is not None:
        variant = experiment["variants"].get(adopt)
        if variant is None:
            raise click.ClickException(
                f"{prefix}experiment.adopted: {adopt!r} is none of its variants ({', '.join(experiment['variants'])})"
            )
        for state, value in variant.get("quota", {}).items():
            changes[f"{prefix}quota.{state}"] = value
        changes[f"{prefix}experiment.adopted"] = adopt
    try:
        policy = merge(site.policy, changes)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    site.policy = policy
    db.session.commit()
    sites.forget_cached()
    shown = f", the meter takes variant {adopt}'s quotas" if adopt else ""
    click.echo(f"ended experiment {experiment['name']} of meter {meter_name} of {slug}{shown}")
