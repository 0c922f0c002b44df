"""The figures (GET /v1/stats): counted inside the access check's one script call, rolled up by the worker,
exact for a journey driven through the API, and surviving a loss of Redis's data but for what was not
rolled up yet."""

from __future__ import annotations

from datetime import datetime, timedelta

from meter import worker
from meter.platform import clock
from meter.sites.rules.policy import Policy
from meter.stats import rules as stats
from tests.conftest import flush_redis, links_in


def _figures(api, **query) -> list[dict]:
    response = api.get("/v1/stats", query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["site"] == "tempo" and body["timezone"] == "Asia/Jakarta"
    return body["days"]


def _today(api) -> dict:
    return _figures(api)[-1]


def _roll_up(app) -> None:
    with app.app_context():
        stats.roll_up()


def _journey(api, mailbox, deliver) -> str:
    """3 register walls, a registration, an activation, 2 unlocks, a re-read, a quota wall, a free read,
    a login, a subscription; asks with record false that count nothing; returns the reader token."""
    for n in range(3):
        assert api.access(f"tempo:koran:{n}", anonymous_id="visitor-0001")["reason"] == "registration_required"
    assert api.access("tempo:koran:0", anonymous_id="visitor-0001", record=False)["allowed"] is False
    api.post("/v1/readers", json={"email": "pembaca@example.com", "password": "rahasia-sekali"})
    deliver()
    link = next(x for x in links_in(mailbox.to("pembaca@example.com")[-1]["msg"]) if "/activate/" in x)
    activated = api.post("/v1/activations", json={"token": link.rsplit("/activate/", 1)[1].split("?")[0]})
    token = activated.get_json()["reader_token"]
    answers = [api.access(f"tempo:koran:{a}", reader_token=token)["reason"] for a in ("a", "b", "a", "c")]
    assert answers == ["unlocked_now", "unlocked_now", "already_unlocked", "quota_exhausted"]
    assert api.access("tempo:berita:1", cls="free")["reason"] == "free_content"  # nobody to count against
    assert api.access("tempo:koran:d", reader_token=token, record=False)["reason"] == "quota_exhausted"
    login = api.post("/v1/sessions", json={"email": "pembaca@example.com", "password": "rahasia-sekali"})
    reader_id = login.get_json()["reader"]["reader_id"]
    api.put(f"/v1/readers/{reader_id}/subscription", json={"until": "2099-01-01T00:00:00+07:00"})
    api.put(f"/v1/readers/{reader_id}/subscription", json={"until": "2099-02-01T00:00:00+07:00"})  # not a new one
    assert api.access("tempo:laput:1", cls="premium", reader_token=token)["reason"] == "subscriber"
    return token


EXPECTED_VIEWS = {
    "registration_required": 3,
    "unlocked_now": 2,
    "already_unlocked": 1,
    "quota_exhausted": 1,
    "free_content": 1,
    "subscriber": 1,
}


def _views(day: dict) -> dict:
    return {reason: n for reason, n in day["views"].items() if n}


def test_a_journey_is_counted_exactly_live_and_after_the_roll_up(app, api, mailbox, deliver):
    _journey(api, mailbox, deliver)
    live = _today(api)  # nothing rolled up yet: today's views read live from Redis
    assert _views(live) == EXPECTED_VIEWS
    assert (live["registrations"], live["activations"], live["subscriptions_started"]) == (1, 1, 1)
    assert live["signins"] == {"password": 1} and live["median_activation_seconds"] is not None
    assert set(live["views"]) >= set(stats.REASONS)  # every reason, 0 where nothing happened

    with app.app_context():
        worker.run_once()  # mail, doubts, and the roll-up (the first pass of a worker rolls up at once)
    rolled = _today(api)
    assert _views(rolled) == EXPECTED_VIEWS  # moved to SQL, not counted twice
    _roll_up(app)
    assert _views(_today(api)) == EXPECTED_VIEWS  # a second roll-up finds nothing more


def test_the_figures_survive_a_loss_of_redis_but_for_what_was_not_rolled_up(app, api, mailbox, deliver, redis_url):
    token = _journey(api, mailbox, deliver)
    _roll_up(app)
    assert api.access("tempo:koran:a", reader_token=token)["reason"] == "subscriber"  # not rolled up: lost below
    flush_redis(redis_url)
    after = _today(api)
    assert _views(after) == EXPECTED_VIEWS
    assert (after["registrations"], after["activations"]) == (1, 1)
    assert api.access("tempo:koran:a", reader_token=token)["reason"] == "subscriber"
    _roll_up(app)
    assert _views(_today(api)) == {**EXPECTED_VIEWS, "subscriber": 2}


def test_answers_given_without_the_script_are_counted_with_the_next_call(app, api, redis_url):
    """Nobody to count against (no token, no anonymous id): no Redis call; the count rides along."""
    for _ in range(3):
        assert api.access("tempo:koran:x")["reason"] == "registration_required"
    assert _views(_today(api)) == {}  # waiting in the process
    assert api.access("tempo:koran:x", anonymous_id="visitor-0002")["reason"] == "registration_required"
    assert _views(_today(api)) == {"registration_required": 4}


def test_days_follow_the_sites_time_zone(app, api):
    """23:30 in Jakarta is still 16:30 UTC of the same day; 00:30 Jakarta is the next day."""
    now = clock.now()
    late = now.astimezone(Policy.from_dict({}).tz).replace(hour=23, minute=30, second=0, microsecond=0)
    clock.travel(late - now)
    api.access("tempo:berita:1", cls="free", anonymous_id="visitor-0003")
    clock.travel(timedelta(hours=1))
    api.access("tempo:berita:1", cls="free", anonymous_id="visitor-0003")
    _roll_up(app)
    days = _figures(api, **{"from": late.date().isoformat(), "to": (late.date() + timedelta(days=1)).isoformat()})
    assert [d["views"]["free_content"] for d in days] == [1, 1]
    assert days[0]["date"] == late.date().isoformat()


def test_the_range_is_checked(app, api):
    assert len(_figures(api)) == 30
    assert api.get("/v1/stats", query_string={"from": "2026-02-30"}).status_code == 422
    assert api.get("/v1/stats", query_string={"from": "2026-11-02", "to": "2026-11-01"}).status_code == 422
    assert api.get("/v1/stats", query_string={"from": "2025-01-01", "to": "2026-11-01"}).status_code == 422
    year = _figures(api, **{"from": "2025-11-02", "to": "2026-11-02"})
    assert len(year) == 366 and year[0]["date"] == "2025-11-02"
    assert datetime.fromisoformat(year[-1]["date"]).date().isoformat() == "2026-11-02"
    assert api.client.get("/v1/stats").status_code == 401
