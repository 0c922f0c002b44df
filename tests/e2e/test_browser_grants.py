"""Content protection in a real browser: the demo site with `--content-protection on` ships no article
body; meter.js fetches it from the page's data-content-url with the grant of an allowed, counted answer.
A reader at the wall, or a page that asks with `record: false`, never receives the body."""

from __future__ import annotations

import json
import urllib.request

import pytest

from meter.platform.db import db
from meter.sites.rules import sites
from tests.e2e.test_browser import ARGS, CHROMIUM, answered, chromium, live  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
FIRST, SECOND = "koran-harga-beras", "koran-transportasi"
BODY_TEXT = "Paragraf pertama laporan ini"


@pytest.fixture
def protected(live):  # noqa: F811 (the imported fixture)
    runner = live.app.test_cli_runner()
    assert runner.invoke(args=["sites", "grant-keys", "create", "demo"]).exit_code == 0
    assert runner.invoke(args=["sites", "settings", "demo", "--content-protection", "on"]).exit_code == 0
    with live.app.app_context():
        site = sites.by_slug("demo")
        site.policy = {**site.policy, "quota": {**site.policy["quota"], "anonymous": 1}}
        db.session.commit()
        sites.forget_cached()
    return live


def content_answers(page) -> list[int]:
    """The statuses of every answer the page got from the content URL."""
    seen: list[int] = []
    page.on("response", lambda r: seen.append(r.status) if "/demo-site/content/" in r.url else None)
    return seen


def test_the_body_reaches_only_a_reader_whose_read_was_counted(protected, chromium):  # noqa: F811
    base = protected.base
    with urllib.request.urlopen(f"{base}/demo-site/{FIRST}", timeout=10) as answer:
        html = answer.read().decode()
    assert BODY_TEXT not in html and f'data-content-url="/demo-site/content/{FIRST}' in html

    context = chromium.new_context(locale="id-ID")
    page = context.new_page()
    page.set_default_timeout(10_000)
    statuses = content_answers(page)
    page.goto(f"{base}/demo-site/{FIRST}")
    answered(page, "allowed")
    page.wait_for_selector("article[data-meter-content=shown]")
    assert BODY_TEXT in page.locator("[data-meter-body]").inner_text()
    assert statuses == [200]

    page.goto(f"{base}/demo-site/{SECOND}")  # the anonymous quota (1) is used up: the wall
    answered(page, "refused")
    assert page.locator(".meter-wall").is_visible()
    page.wait_for_timeout(300)
    assert statuses == [200]  # nothing asked for the second article: there was no grant to ask with
    assert BODY_TEXT not in page.content()
    context.close()


def test_a_page_forced_to_peek_shows_no_body(protected, chromium):  # noqa: F811
    context = chromium.new_context(locale="id-ID")
    page = context.new_page()
    page.set_default_timeout(10_000)

    def peek(route) -> None:  # what a reader who edits the script's request would send
        body = json.loads(route.request.post_data)
        route.continue_(post_data=json.dumps({**body, "record": False}))

    page.route("**/embed/demo/access*", peek)
    statuses = content_answers(page)
    page.goto(f"{protected.base}/demo-site/{FIRST}")
    answered(page, "allowed")  # would_unlock: allowed, not counted, no grant
    page.wait_for_timeout(300)
    assert statuses == [] and page.get_attribute("article", "data-meter-content") is None
    assert page.locator("[data-meter-body]").inner_text().strip() == ""
    assert BODY_TEXT not in page.content()
    context.close()
