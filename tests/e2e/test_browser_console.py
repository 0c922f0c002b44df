"""The publisher console in a real browser (Playwright driving Debian's Chromium, as tests/e2e/test_browser.py).

A staff member is made on the command line, sets up from the printed link (password, and a code the
test computes from the secret on the set-up page, as an authenticator app would), signs in, and sees
on the dashboard the exact figures of a journey the test has just driven through the API; finds a
reader, resends the activation mail (the suite's SMTP server receives it), changes the verified quota
from 2 to 3 and sees the next access check follow it. Screenshots of the dashboard and the reader
page at 390 and 1280 px go to tests/screenshots/.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from meter.platform.db import db
from meter.sites.rules import sites
from meter.stats import rules as stats
from tests.conftest import Api, links_in, past_the_mail_budget
from tests.console_helpers import PASSWORD, code
from tests.e2e.test_browser import chromium, live, page, shoot  # noqa: F401 - the browser fixtures

pytestmark = pytest.mark.browser

STAFF = "redaksi@tempo.co"
READER = "pembaca@example.com"
NEWCOMER = "lupa.aktivasi@example.com"


def _api(server) -> Api:
    with server.app.app_context():
        key = sites.new_key(sites.by_slug("demo"))
        db.session.commit()
    return Api(server.app.test_client(), key, "demo")


def _journey(api: Api, server, mailbox) -> str:
    """3 register walls, 1 registration, 1 activation, 2 unlocks, 1 quota wall; returns the reader token."""
    for n in range(3):
        assert api.access(f"demo:koran:{n}", anonymous_id="visitor-0001")["reason"] == "registration_required"
    assert api.post("/v1/readers", json={"email": READER, "password": "rahasia-sekali"}).status_code == 202
    server.deliver()
    link = next(x for x in links_in(mailbox.to(READER)[-1]["msg"]) if "/activate/" in x)
    token = api.post("/v1/activations", json={"token": link.rsplit("/activate/", 1)[1].split("?")[0]}).get_json()
    reader_token = token["reader_token"]
    assert api.access("demo:koran:a", reader_token=reader_token)["reason"] == "unlocked_now"
    with server.app.app_context():
        stats.roll_up()  # part of the figures rolled up into SQL, the rest read live from Redis
    assert api.access("demo:koran:b", reader_token=reader_token)["reason"] == "unlocked_now"
    assert api.access("demo:koran:c", reader_token=reader_token)["reason"] == "quota_exhausted"
    return reader_token


def _figure(browser_page, name: str) -> int:
    return int(browser_page.locator(f'[data-figure="{name}"] .value').inner_text())


def test_a_staff_member_sets_up_signs_in_sees_the_figures_helps_a_reader_and_steers_the_policy(live, page, mailbox):  # noqa: F811
    api = _api(live)
    reader_token = _journey(api, live, mailbox)

    runner = live.app.test_cli_runner()
    made = runner.invoke(args=["staff", "create", STAFF, "--site", "demo", "--role", "owner"])
    assert made.exit_code == 0, made.output
    link = made.output.strip().splitlines()[-1]
    assert link.startswith(f"{live.base}/console/setup/")

    page.goto(link)
    assert page.locator("figure.qr svg").is_visible()  # the QR code, drawn on the server
    secret = page.locator("#totp-secret").get_attribute("data-secret")
    page.locator("#password").fill(PASSWORD)
    page.locator("#confirm").fill(PASSWORD)
    page.locator("#code").fill(code(secret))
    page.locator("form button[type=submit]").click()
    page.wait_for_selector("a.button[href='/console/signin']")
    page.goto(link)  # the link worked once
    assert page.locator("h1").count() == 1 and page.locator("#password").count() == 0

    page.goto(f"{live.base}/console/signin")
    page.locator("#email").fill(STAFF)
    page.locator("#password").fill(PASSWORD)
    page.locator("#code").fill(code(secret, steps_ahead=1))  # the set-up's code may not serve twice
    page.locator("form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/console/demo/$"))

    figures = {
        name: _figure(page, name)
        for name in ("registration_required", "registrations", "activations", "unlocked_now", "quota_exhausted")
    }
    assert figures == {
        "registration_required": 3,
        "registrations": 1,
        "activations": 1,
        "unlocked_now": 2,
        "quota_exhausted": 1,
    }
    walls = page.locator("#chart-walls svg.chart.wide")  # (the narrow drawing is a phone's)
    assert walls.is_visible()
    bars = {
        (rect.get_attribute("data-series"), int(rect.get_attribute("data-value")))
        for rect in walls.locator("rect[data-series]").all()
    }
    assert bars == {("registration_required", 3), ("quota_exhausted", 1)}
    points = page.locator("#chart-accounts circle[data-value='1']")
    assert {p.get_attribute("data-series") for p in points.all()} >= {"registrations", "activations"}
    shoot(page, "console-dashboard")

    # A newcomer who has not confirmed the address: support finds them and resends the mail.
    assert api.post("/v1/readers", json={"email": NEWCOMER, "password": "rahasia-sekali"}).status_code == 202
    live.deliver()
    assert len(mailbox.to(NEWCOMER)) == 1
    past_the_mail_budget()  # the registration's mail spent the address's budget for 3 minutes
    page.goto(f"{live.base}/console/demo/readers")
    page.locator("#q").fill("lupa")
    page.locator("form[role=search] button").click()
    page.locator(f"a:text-is('{NEWCOMER}')").click()
    page.wait_for_url(re.compile(r"/console/demo/readers/\d+$"))
    assert page.locator("#reader-state").get_attribute("data-state") == "registered"
    page.locator("form[action$='/resend'] button").click()
    page.wait_for_selector("p.notice")
    live.deliver()
    assert len(mailbox.to(NEWCOMER)) == 2  # the suite's SMTP server received the resent mail
    assert "/activate/" in " ".join(links_in(mailbox.to(NEWCOMER)[-1]["msg"]))
    page.reload()
    assert page.locator("tr[data-kind=activation][data-status=sent]").count() == 2
    shoot(page, "console-reader")

    # The policy: the verified quota from 2 to 3, the change shown before it is saved.
    assert api.access("demo:koran:d", reader_token=reader_token)["reason"] == "quota_exhausted"
    page.goto(f"{live.base}/console/demo/policy")
    page.locator("#quota_verified").fill("3")
    page.locator("button[name=preview]").click()
    row = page.locator("tr[data-key='quota.verified']")
    expect(row.locator("td")).to_have_text(["2", "3"])  # (waits for the preview's page to load)
    with live.app.app_context():
        assert sites.by_slug("demo").policy["quota"]["verified"] == 2  # nothing saved by the preview
    page.locator("button[name=save]").click()
    page.wait_for_selector("p.notice")
    assert api.access("demo:koran:d", reader_token=reader_token)["reason"] == "unlocked_now"

    everything = json.loads(runner.invoke(args=["audit", "show", "--json"]).output)
    of_demo = json.loads(runner.invoke(args=["audit", "show", "--site", "demo", "--since", "1d", "--json"]).output)
    assert {(e["actor"], e["action"]) for e in everything} >= {(STAFF, "staff.setup"), (STAFF, "console.signin")}
    assert {(e["actor"], e["action"]) for e in of_demo} >= {
        ("command line", "staff.create"),
        (STAFF, "reader.view"),
        (STAFF, "reader.resend_activation"),
        (STAFF, "policy.change"),
    }
    assert next(e for e in of_demo if e["action"] == "policy.change")["detail"] == {"quota.verified": "2 -> 3"}
