"""Every console page in a real browser (Playwright driving Debian's Chromium), in Indonesian, at a
phone's 390 px and a desktop's 1280 px: the page never scrolls sideways (a table becomes stacked
cards below 600 px, a chart keeps its axes, the section tabs wrap), and no English word of the short
list nor a dotted code is in what the browser shows. Screenshots of each page at both widths go to
tests/screenshots/console-pages/ (not committed: tests/screenshots/ is ignored).

The data is tests/console_data.py's (every state a page can show) and two weeks of `flask demo
traffic` for the charts."""

from __future__ import annotations

import re

import pytest

from meter.sites.rules import sites
from tests import console_data
from tests.console_helpers import create_staff, english_or_codes
from tests.e2e.test_browser import SHOTS, WIDTHS, chromium, live  # noqa: F401 - the browser fixtures

pytestmark = [pytest.mark.database_agnostic, pytest.mark.browser, pytest.mark.xdist_group("browser")]

FOLDER = SHOTS / "console-pages"


# What is cut on a phone though the page itself does not scroll: a box that scrolls sideways (a table,
# the section tabs; not the figures table, a grid of numbers that scrolls in its own box on purpose),
# a chart's label outside its box (the value axis scrolled away, the first day cut).
CUT = """() => {
  const cut = [];
  const seen = (el) => el.getClientRects().length > 0;
  for (const box of document.querySelectorAll("nav.sections, .table-wrap:not(.scroll), .chart-box")) {
    if (seen(box) && box.scrollWidth > box.clientWidth + 1) cut.push(`${box.className || box.tagName}: ${box.scrollWidth} > ${box.clientWidth}`);
  }
  for (const chart of document.querySelectorAll("svg.chart")) {
    if (!seen(chart)) continue;
    const frame = chart.closest(".chart-box").getBoundingClientRect();
    for (const text of chart.querySelectorAll("text")) {
      const r = text.getBoundingClientRect();
      if (r.left < frame.left - 0.5 || r.right > frame.right + 0.5) cut.push(`chart label ${text.textContent} outside its box`);
    }
  }
  return cut;
}"""


def _name(path: str) -> str:
    name = "setup" if path.startswith("/console/setup/") else path.removeprefix("/console/")
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "home"


def _look(page, base: str, path: str, problems: dict) -> None:
    """Open `path` in Indonesian and look at it at each width; what is wrong goes into `problems`."""
    page.goto(f"{base}{path}{'&' if '?' in path else '?'}lang=id")
    assert page.locator("html").get_attribute("lang") == "id", path
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(50)
        wide = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
        if wide[0] > wide[1]:
            problems[f"{path} at {width} px"] = f"the page scrolls sideways: {wide[0]} > {wide[1]}"
        cut = page.evaluate(CUT) if width < 600 else []
        if cut:
            problems[f"{path} at {width} px, cut"] = cut
        words = english_or_codes(page.locator("body").inner_text())
        if words:
            problems[f"{path} at {width} px, words"] = words
        page.screenshot(path=str(FOLDER / f"{_name(path)}-{label}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})


def test_every_console_page_fits_a_phone_and_a_desktop_in_indonesian(live, chromium):  # noqa: F811
    with live.app.app_context():
        sites.create_site("other", "Other", ["https://other.example"])
    runner = live.app.test_cli_runner()
    traffic = runner.invoke(args=["demo", "traffic", "--days", "14", "--site", "demo", "--seed", "7"])
    assert traffic.exit_code == 0, traffic.output
    filled = console_data.fill(live.app, runner, "demo", "other")
    cookie = filled.owner.get_cookie("meter_console", path="/console/")
    FOLDER.mkdir(parents=True, exist_ok=True)
    problems: dict = {}
    context = chromium.new_context(viewport={"width": WIDTHS["desktop"], "height": 900}, locale="id-ID")
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        setup = "/" + create_staff(runner, "baru@tempo.co", "demo", "editor").split("/", 3)[3]
        for path in ("/console/signin", setup):  # before signing in
            _look(page, live.base, path, problems)
        context.add_cookies([{"name": "meter_console", "value": cookie.value, "url": f"{live.base}/console/"}])
        for path in [*console_data.pages(filled), "/console/demo/no-such-page"]:
            _look(page, live.base, path, problems)
            assert "/signin" not in page.url, path
    finally:
        context.close()
    assert problems == {}, "\n".join(f"{where}: {what}" for where, what in problems.items())
