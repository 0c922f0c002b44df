"""`flask demo traffic`: days of plausible figures through the real code paths, shown by the console and
GET /v1/stats alike; its made-up readers' mails never reach the outbox."""

from __future__ import annotations

import json

from meter.accounts.models import Reader
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.stats.commands import traffic


def test_demo_traffic_fills_the_days_through_the_real_paths(app, runner, api):
    done = runner.invoke(traffic, ["--days", "5", "--site", "tempo", "--seed", "7"])
    assert done.exit_code == 0, done.output
    days = api.get("/v1/stats", query_string={}).get_json()["days"][-5:]
    for day in days:
        views = day["views"]
        assert views["registration_required"] > 10 and views["free_content"] > 5
        assert day["registrations"] >= 2
    assert sum(day["activations"] for day in days) >= 5
    assert any(day["median_activation_seconds"] for day in days)
    assert sum(day["views"]["unlocked_now"] for day in days) > 0
    assert sum(day["signins"]["password"] for day in days[1:]) > 0  # returning readers sign in
    with app.app_context():
        readers = db.session.scalars(db.select(Reader)).all()
        assert readers and all(r.email.startswith("demo-traffic-") for r in readers)
        assert db.session.scalar(db.select(db.func.count()).select_from(OutboxMail)) == 0
    again = runner.invoke(traffic, ["--days", "1", "--site", "nope"])
    assert again.exit_code != 0 and "unknown site" in again.output
    assert "demo" not in json.dumps(runner.invoke(args=["--help"]).output.split("Commands:")[1].split())
