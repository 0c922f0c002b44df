"""One mail budget per address and site across every path that mails it (RATELIMIT_RESEND_EMAIL, by
default 1 per 3 minutes and 5 per day), a per-IP limit on resends, and the same answer for any address.

Over HTTP against the app, the suite's Redis and SMTP server; the operator's command through the
CLI runner. The budget follows meter's clock, so the tests travel in time instead of waiting.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from meter.platform import clock
from tests.conftest import links_in
from tests.functional.test_cli import fails, ok
from tests.functional.test_embed import ORIGIN
from tests.functional.test_ratelimit import assert_429

PASSWORD = "rahasia-sekali"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def registration(api, email: str, password: str = PASSWORD):
    return api.post("/v1/readers", json={"email": email, "password": password})


def csrf(client, path: str) -> str:
    return CSRF_RE.search(client.get(path).get_data(as_text=True)).group(1)


def test_registering_one_address_again_and_again_mails_it_once(api, mailbox, deliver):
    """The attack: 19 registrations of one address in a minute put 20 activation mails in its inbox."""
    answers = [registration(api, "korban@example.com", f"sandi-ke-{i:02d}").status_code for i in range(19)]
    deliver()
    assert len(mailbox.to("korban@example.com")) == 1
    assert answers == [202] + [429] * 18


def test_registering_a_verified_address_again_mails_its_owner_once(api, verified_reader, mailbox, deliver):
    """The attack: 5 registrations of a verified address, 5 "already registered" mails."""
    verified_reader("pemilik@example.com")
    clock.travel(timedelta(minutes=4))
    mailbox.clear()
    answers = [registration(api, "pemilik@example.com", f"coba-coba-{i}").status_code for i in range(5)]
    deliver()
    [mail] = mailbox.to("pemilik@example.com")
    assert "/forgot-password" in str(mail["msg"])  # the "already registered" mail
    assert answers == [202] + [429] * 4


def test_every_path_spends_one_budget_of_one_mail_per_3_minutes_and_5_a_day(app, api, client, runner, deliver):
    """Registration, the API, the expired-link form, the activation-sent page, the embed and the operator
    all spend the same budget; the operator's --force overrides it."""
    address = "satu@example.com"
    assert registration(api, address).status_code == 202  # mail 1
    token = api.post("/v1/sessions", json={"email": address, "password": PASSWORD}).get_json()["reader_token"]
    client.set_cookie("meter_r_tempo", token)
    page_csrf = csrf(client, "/tempo/login")

    def by_api():
        return api.post("/v1/readers/resend-activation", json={"email": address})

    def by_form():
        return client.post("/tempo/resend-activation", data={"csrf_token": page_csrf, "email": address})

    def by_page():  # the activation-sent page of a browser that registered (its session names the address)
        return client.post("/tempo/activation-sent", data={"csrf_token": page_csrf})

    def by_embed():
        return client.post("/embed/tempo/resend", data="{}", headers={"Origin": ORIGIN, "Content-Type": "text/plain"})

    assert_429(by_api())
    refused = by_form()
    assert refused.status_code == 429 and "Terlalu banyak percobaan" in refused.get_data(as_text=True)
    with client.session_transaction() as session:
        session["pending"] = {"email": address, "site": 1}
    assert by_page().status_code == 429
    waiting = by_embed()
    assert waiting.status_code == 429 and waiting.get_json()["status"] == "wait"
    assert 0 < int(waiting.headers["Retry-After"]) <= 180
    fails(runner, "readers", "resend-activation", "tempo", address, reason="mail budget")
    assert deliver() == (1, 0)

    ok(runner, "readers", "resend-activation", "tempo", address, "--force")  # the operator overrides
    assert deliver() == (1, 0)

    for path in (by_embed, by_api, by_form, by_page):  # mails 2 to 5, 3 minutes apart
        clock.travel(timedelta(minutes=3, seconds=1))
        assert path().status_code in (200, 202, 303)
        assert deliver() == (1, 0)
    clock.travel(timedelta(minutes=3, seconds=1))
    day = by_api()  # 5 a day: the first leaves the window 24 hours after it was sent
    assert_429(day)
    assert 23 * 3600 < int(day.headers["Retry-After"]) <= 24 * 3600
    assert registration(api, address).status_code == 429
    clock.travel(timedelta(hours=24))
    assert by_api().status_code == 202
    assert deliver() == (1, 0)


def test_the_budget_answers_alike_for_every_kind_of_address(api, verified_reader, register):
    """Spent by the request whatever the address: an unknown one is refused like a known one."""
    verified_reader("verified@example.com")
    register("unverified@example.com")
    clock.travel(timedelta(minutes=4))
    answers = {}
    for email in ("verified@example.com", "unverified@example.com", "unknown@example.com"):
        first, second = (api.post("/v1/readers/resend-activation", json={"email": email}) for _ in range(2))
        answers[email] = (first.status_code, first.get_data(), second.status_code, second.get_json()["detail"])
    assert len(set(answers.values())) == 1, answers
    assert next(iter(answers.values()))[::2] == (202, 429)


def test_each_site_has_its_own_budget_for_an_address(app, api, mailbox, deliver):
    from tests.conftest import Api, make_site

    other = Api(api.client, make_site(app, "koran", ("https://koran.example",)), "koran")
    assert registration(api, "dua@example.com").status_code == 202
    assert registration(other, "dua@example.com").status_code == 202
    deliver()
    assert len(mailbox.to("dua@example.com")) == 2


@pytest.mark.config(RATELIMIT_RESEND_IP="3/hour")
def test_resends_are_limited_per_ip_too(app, api, client):
    assert [
        api.post("/v1/readers/resend-activation", json={"email": f"r{i}@example.com"}).status_code for i in range(2)
    ] == [202, 202]
    token = csrf(client, "/tempo/login")
    assert client.post("/tempo/resend-activation", data={"csrf_token": token, "email": "r9@example.com"}).status_code
    assert_429(api.post("/v1/readers/resend-activation", json={"email": "r3@example.com"}))
    other_ip = {"REMOTE_ADDR": "10.5.5.5"}
    assert (
        api.post("/v1/readers/resend-activation", json={"email": "r4@example.com"}, environ_base=other_ip).status_code
        == 202
    )


def test_the_operators_bulk_resend_skips_spent_budgets_unless_forced(app, api, runner, register, mailbox, deliver):
    link = register("banyak@example.com")
    for _ in range(4):  # 5 mails today
        clock.travel(timedelta(minutes=3, seconds=1))
        assert api.post("/v1/readers/resend-activation", json={"email": "banyak@example.com"}).status_code == 202
    clock.travel(timedelta(hours=2))  # past the bulk resend's own hour, still within the day
    assert ok(runner, "readers", "resend-activation", "tempo", "--all-unverified")[-1].startswith("queued: 0, skipped")
    assert ok(runner, "readers", "resend-activation", "tempo", "--all-unverified", "--force")[-1].startswith(
        "queued: 1"
    )
    deliver()
    assert len(mailbox.to("banyak@example.com")) == 6 and link
    assert all(links_in(m["msg"]) for m in mailbox.to("banyak@example.com"))
