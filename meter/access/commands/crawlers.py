"""`flask crawlers show` and `flask crawlers update [--from FILE] [--operator NAME]`: the search engines'
published crawler address ranges (meter.access.rules.crawlers.ranges).

Without --from, each operator's published list is downloaded from its `feed` address (Yandex has no
feed: its list is kept unless a file gives one). With --from FILE, the file is either a whole list in
meter's own shape (`{"operators": {NAME: {"prefixes": […]}}}`, as `show --json` prints it) or one
operator's published file (`{"creationTime", "prefixes": […]}`) with --operator. Every list is checked
before anything is written (`RangesError`); an operator whose download fails keeps its list, and the
command then exits non-zero. Running processes pick the new file up within a minute.
"""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from meter.access.rules.crawlers import CRAWLERS, ranges
from meter.sites import audited

crawlers_cli = AppGroup("crawlers", help="Search engines' crawler address ranges (policy crawlers: verified).")
TIMEOUT = 10.0


def _download(url: str) -> dict:
    import requests

    response = requests.get(url, timeout=TIMEOUT, headers={"Accept": "application/json"})
    response.raise_for_status()
    return response.json()


@crawlers_cli.command("update")
@click.option("--from", "source", type=click.Path(exists=True, dir_okay=False), help="A file instead of downloading.")
@click.option("--operator", type=click.Choice(sorted(CRAWLERS)), help="The operator a published file is of.")
@audited()
def update(source: str | None, operator: str | None) -> None:
    """Refresh the crawler address ranges (from the operators' published lists, or a file)."""
    failed: list[str] = []
    if source is not None:
        try:
            with open(source, encoding="utf-8") as f:
                document = json.load(f)
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"cannot read {source}: {exc}") from None
        if operator is not None:
            feeds = {operator: document}
        elif isinstance(document, dict) and isinstance(document.get("operators"), dict):
            unknown = sorted(set(document["operators"]) - set(CRAWLERS))
            if unknown:
                raise click.ClickException(f"unknown operators: {', '.join(unknown)}")
            feeds = document["operators"]
        else:
            raise click.ClickException('give --operator NAME for one operator\'s file, or a file with "operators"')
        origin = f"the file {source}"
    else:
        feeds = {}
        for name, entry in ranges.current().document["operators"].items():
            if not entry.get("feed"):
                continue
            try:
                feeds[name] = _download(entry["feed"])
            except Exception as exc:  # noqa: BLE001 (any failure: this operator keeps its list)
                click.echo(f"{name}: kept, the download failed: {exc}", err=True)
                failed.append(name)
        origin = "the operators' published feeds"
    try:
        counts = ranges.update(feeds, origin) if feeds else {}
    except ranges.RangesError as exc:
        raise click.ClickException(f"nothing written: {exc}") from None
    for name, count in sorted(counts.items()):
        click.echo(f"{name}: {count} networks")
    click.echo(f"written to {ranges.path()}")
    if failed:
        raise click.ClickException(f"not updated: {', '.join(failed)}")


@crawlers_cli.command("show")
@click.option("--json", "as_json", is_flag=True, help="The whole list, in the shape update --from takes.")
def show(as_json: bool) -> None:
    """Where each operator's list comes from, when it was taken, and how many networks it has."""
    document = ranges.current().document
    if as_json:
        click.echo(ranges.dump(document), nl=False)
        return
    for name, entry in document["operators"].items():
        click.echo(
            f"{name}\t{len(entry['prefixes'])} networks\ttaken {entry.get('taken') or '?'}"
            f"\tpublished {entry.get('creationTime') or '?'}\tfrom {entry.get('copied_from') or '?'}"
        )
