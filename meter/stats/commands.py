"""`flask demo traffic --days 30`: a month of plausible figures for a site's console, on a fresh machine.

Made through the real code paths, with meter's clock moved to each day in turn (`clock.travel`):
anonymous visitors meet the register wall, readers register (`register.register`), most activate
their address a few minutes or hours later (`confirm.activate`), sign in again on later days
(`sessions.login`), read within their quota and meet the quota wall (`judge.decide`, the access
check itself), and a few subscribe (`subscriptions.set_until`). The figures are then those the
signals and the access check's script count.

Two things differ from real traffic, and say why:
- the readers are made up (`demo-traffic-…@example.com`), so their mails are dropped before they
  reach the outbox: a demo must not fill the mail catcher with hundreds of activation mails;
- Redis keeps a day's view counts on its own clock, so the counts of a day a month back expire the
  moment they are written, and the worker rolls up only today and yesterday. The views of older days
  are therefore added to the figures from the very answers the access check gave
  (`stats.add_views`); today's and yesterday's are rolled up as always.

Registered only in development and with DEMO_SITE=1: it makes readers up, which a real site must never get.
"""

from __future__ import annotations

import random
import secrets
import sys
from collections import Counter
from datetime import datetime, time, timedelta

import click
from flask import Flask
from flask.cli import AppGroup
from flask_babel import force_locale

from meter.access import judge
from meter.accounts import confirm, register, sessions, subscriptions
from meter.accounts.models import Reader
from meter.platform import clock, signals
from meter.platform.db import db
from meter.sites import SiteInfo, audited, sites
from meter.stats import rules as stats

demo_cli = AppGroup("demo", help="Demo data for the development site.")
PASSWORD = "demo-traffic-password"
CLASSES = (("free", 0.45), ("metered", 0.45), ("premium", 0.10))


def _drop_mail(_app: Flask, mail, **_: object) -> None:
    if mail.to_addr.startswith("demo-traffic-") and mail in db.session:
        db.session.expunge(mail)


class Day:
    """One simulated day of a site: every answer with `record` true is tallied by reason."""

    def __init__(self, site: SiteInfo, rng: random.Random) -> None:
        self.site, self.rng = site, rng
        self.views: Counter = Counter()

    def read(self, anonymous_id: str, token: str | None = None, cls: str | None = None) -> str:
        cls = cls or self.rng.choices([c for c, _ in CLASSES], [w for _, w in CLASSES])[0]
        article = f"{self.site.slug}:{cls}:{self.rng.randrange(60)}"
        decision = judge.decide(self.site, article, cls, True, reader_token=token, anonymous_id=anonymous_id).decision
        if not decision.revoked and decision.reason != "linked":
            self.views[decision.reason] += 1
        return decision.reason

    def at(self, hour: int, minute: int = 0) -> None:
        """Move meter's clock to this day at hour:minute in the site's time zone."""
        local_day = (clock.now().astimezone(self.site.policy.tz)).date()
        target = datetime.combine(local_day, time(hour, minute), tzinfo=self.site.policy.tz)
        clock.travel(target - clock.now())


def _simulate(site: SiteInfo, day: Day, readers: list[tuple[int, str]], serial: list[int]) -> None:
    rng = day.rng
    weekend = clock.now().astimezone(site.policy.tz).weekday() >= 5
    visitors = rng.randint(25, 45) if weekend else rng.randint(40, 70)
    for _ in range(visitors):
        visitor = "demo-" + secrets.token_hex(6)
        for _ in range(rng.choice((1, 1, 2, 3))):
            day.read(visitor)
    for _ in range(rng.randint(2, 6)):  # newcomers register from the wall
        serial[0] += 1
        email = f"demo-traffic-{serial[0]}@example.com"
        visitor = "demo-" + secrets.token_hex(6)
        day.read(visitor, cls="metered")
        register.register(site, email, PASSWORD, "id", None, visitor)
        reader = db.session.scalar(db.select(Reader).filter_by(site_id=site.id, email=email))
        if reader is None or rng.random() > 0.72:
            continue  # some never confirm their address
        clock.travel(timedelta(minutes=rng.choice((2, 5, 11, 25, 70))))
        activated = confirm.activate(site, confirm.activation_token(reader, None))
        readers.append((reader.id, email))
        for _ in range(rng.randint(1, 4)):
            day.read(visitor, activated.reader_token, "metered")
    for _reader_id, email in rng.sample(readers, min(len(readers), rng.randint(1, 3))):  # returning readers
        signed = sessions.login(site, email, PASSWORD)
        if signed is None:
            continue
        token, reader = signed
        if rng.random() < 0.08 and not reader.is_subscriber():
            subscriptions.set_until(reader, clock.now() + timedelta(days=30))
        for _ in range(rng.randint(1, 4)):
            day.read("demo-" + secrets.token_hex(6), token, rng.choice(("metered", "metered", "premium", "free")))


@demo_cli.command("traffic")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 366), help="How many days back.")
@click.option("--site", "slug", default="demo", show_default=True)
@click.option("--seed", type=int, help="The same seed makes the same traffic.")
@audited()
def traffic(days: int, slug: str, seed: int | None) -> None:
    """Fill the last DAYS days (today included) with plausible traffic through the real code paths."""
    row = sites.by_slug(slug)
    if row is None:
        raise click.ClickException(f"unknown site: {slug}")
    site = sites.info(row)
    rng = random.Random(seed)
    readers: list[tuple[int, str]] = []
    serial = [db.session.scalar(db.select(db.func.count()).select_from(Reader).filter_by(site_id=site.id)) or 0]
    today = stats.today(site)
    totals: Counter = Counter()
    signals.mail_queued.connect(_drop_mail, weak=False)
    try:
        with click.progressbar(range(days - 1, -1, -1), label=f"demo traffic on {slug}", file=sys.stderr) as bar:
            for back in bar:
                clock.reset()
                day = Day(site, rng)
                clock.travel(timedelta(days=-back))
                day.at(7, rng.randrange(60))
                with force_locale("id"):
                    _simulate(site, day, readers, serial)
                date = today - timedelta(days=back)
                if back >= 2:  # Redis has expired these counts already: add them from the answers
                    stats.add_views(site.id, date, dict(day.views))
                totals.update(day.views)
    finally:
        signals.mail_queued.disconnect(_drop_mail)
        clock.reset()
    stats.roll_up()  # today's and yesterday's, as the worker does every minute
    walls = sum(n for reason, n in totals.items() if reason.endswith("_required") or reason == "quota_exhausted")
    click.echo(
        f"{days} days on {slug}: {sum(totals.values())} article views ({walls} walls), "
        f"{len(readers)} activated readers of {serial[0]} registered; see /console/{slug}/"
    )
