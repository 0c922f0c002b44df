"""The seed journey over HTTP: register → real mail → activate → the meter, Tempo's rule."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from meter.platform import clock
from tests.conftest import links_in, text_of, token_of


def test_register_mail_activate_and_meter(api, mailbox, deliver):
    response = api.post("/v1/readers", json={"email": "Pembaca@Example.COM", "password": "rahasia-sekali"})
    assert response.status_code == 202
    assert response.get_json() == {"status": "activation_sent"}
    assert mailbox.messages == []  # nothing is sent inside the request
    assert deliver() == (1, 0)

    [mail] = mailbox.to("Pembaca@example.com")  # domain lower-cased, local part kept
    assert "Aktifkan" in mail["msg"]["Subject"]
    assert "2 artikel gratis" in text_of(mail["msg"])
    [link] = [link for link in links_in(mail["msg"]) if "/activate/" in link]
    assert link.startswith("http://meter.test/tempo/activate/")

    activated = api.post("/v1/activations", json={"token": token_of(link)})
    assert activated.status_code == 200
    body = activated.get_json()
    assert body["state"] == "verified" and body["reader_token"]
    token = body["reader_token"]

    a = api.access("tempo:koran:a", reader_token=token)
    assert (a["allowed"], a["reason"], a["meter"]["used"], a["meter"]["remaining"]) == (True, "unlocked_now", 1, 1)
    assert a["reader"] == {"state": "verified", "token": "valid"}
    assert a["degraded"] is False
    b = api.access("tempo:majalah:b", reader_token=token)
    assert (b["allowed"], b["reason"], b["meter"]["used"]) == (True, "unlocked_now", 2)
    again = api.access("tempo:koran:a", reader_token=token)
    assert (again["allowed"], again["reason"], again["meter"]["used"]) == (True, "already_unlocked", 2)
    c = api.access("tempo:koran:c", reader_token=token)
    assert (c["allowed"], c["reason"], c["meter"]["remaining"]) == (False, "quota_exhausted", 0)

    laput = api.access("tempo:laput:1", cls="premium", reader_token=token)
    assert (laput["allowed"], laput["reason"]) == (False, "subscription_required")
    reader_id = body["reader_id"]
    until = (clock.now() + timedelta(days=30)).astimezone().isoformat()
    assert api.put(f"/v1/readers/{reader_id}/subscription", json={"until": until}).status_code == 200
    laput = api.access("tempo:laput:1", cls="premium", reader_token=token)
    assert (laput["allowed"], laput["reason"], laput["reader"]["state"]) == (True, "subscriber", "subscriber")
    assert api.delete(f"/v1/readers/{reader_id}/subscription").status_code == 200
    assert api.access("tempo:laput:1", cls="premium", reader_token=token)["reason"] == "subscription_required"

    news = api.access("tempo:2022-01-31:nato", cls="free")  # an anonymous visitor, nothing to count against
    assert (news["allowed"], news["reason"], news["reader"]["token"]) == (True, "free_content", "none")
    anon_metered = api.access("tempo:koran:a", anonymous_id="visitor-0001")
    assert (anon_metered["allowed"], anon_metered["reason"]) == (False, "registration_required")


def test_period_end_is_the_end_of_the_month_in_jakarta(api, verified_reader):
    _, token = verified_reader()
    answer = api.access("tempo:koran:a", reader_token=token)
    end = answer["meter"]["period_end"]
    assert end.endswith("T00:00:00+07:00") and end[8:10] == "01"


def test_next_calendar_month_gives_the_quota_back(api, verified_reader):
    local = clock.now().astimezone(ZoneInfo("Asia/Jakarta"))  # the site's month, not UTC's
    clock.travel(local.replace(day=15, hour=12) - local)  # mid-month, whatever today is: next month is < 30 days away
    _, token = verified_reader()
    for article in ("a", "b"):
        assert api.access(f"tempo:koran:{article}", reader_token=token)["allowed"]
    assert api.access("tempo:koran:c", reader_token=token)["reason"] == "quota_exhausted"
    local = clock.now().astimezone(ZoneInfo("Asia/Jakarta"))
    next_month = (local.replace(day=28) + timedelta(days=4)).replace(day=1, hour=1, minute=0, second=0, microsecond=0)
    clock.travel(next_month - local)  # just into next month (the reader token, 30 days, still lives)
    fresh = api.access("tempo:koran:c", reader_token=token)
    assert (fresh["allowed"], fresh["reason"], fresh["meter"]["used"]) == (True, "unlocked_now", 1)
    # and last month's article counts anew, once
    assert api.access("tempo:koran:a", reader_token=token)["reason"] == "unlocked_now"
    assert api.access("tempo:koran:b", reader_token=token)["reason"] == "quota_exhausted"


def test_record_false_asks_without_counting(api, verified_reader):
    _, token = verified_reader()
    ask = api.access("tempo:koran:a", reader_token=token, record=False)
    assert (ask["allowed"], ask["reason"], ask["meter"]["used"]) == (True, "would_unlock", 0)
    assert api.access("tempo:koran:a", reader_token=token)["reason"] == "unlocked_now"
    assert api.access("tempo:koran:b", reader_token=token)["meter"]["used"] == 2
    refused = api.access("tempo:koran:c", reader_token=token, record=False)
    assert (refused["allowed"], refused["reason"]) == (False, "quota_exhausted")


def test_registered_reader_is_asked_to_verify(api, mailbox, register):
    register()
    login = api.post("/v1/sessions", json={"email": "pembaca@example.com", "password": "rahasia-sekali"})
    assert login.status_code == 200
    token = login.get_json()["reader_token"]
    assert login.get_json()["reader"]["state"] == "registered"
    answer = api.access("tempo:koran:a", reader_token=token)
    assert (answer["allowed"], answer["reason"], answer["reader"]["state"]) == (
        False,
        "verification_required",
        "registered",
    )
