"""Webhooks at scale (soak tier): 1,000 registrations, a receiver that fails 30% of the requests it gets,
and every reader.registered delivered, each verified by `standardwebhooks` and each webhook-id once.

The registrations are made by the domain's own function (`meter.accounts.rules.register.register`,
what POST /v1/readers calls after validation): over HTTP they would meet the per-address rate limit
of registrations (RATELIMIT_REGISTER_IP) and spend most of the minute on Argon2; the event is written
by the same function either way. Retries are made due at once (WEBHOOK_RETRY_BASE=0) so the worker's
passes, not the clock, bound the test.
"""

from __future__ import annotations

import random

import pytest

from meter.accounts.rules.register import register
from meter.sites.rules import sites
from meter.webhooks.rules import delivery
from tests.webhook_receiver import Receiver

pytestmark = [
    pytest.mark.soak,
    pytest.mark.database_agnostic,  # delivery under failures; the webhooks tests run on both databases
    pytest.mark.config(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_BASE=0.0),
]

COUNT = 1000


def test_a_thousand_registrations_reach_a_receiver_that_fails_30_percent(app, api, runner):
    chance = random.Random(27)
    receiver = Receiver(answer=lambda _delivery: 500 if chance.random() < 0.3 else 200).start()
    try:
        result = runner.invoke(
            args=["sites", "webhooks", "add", "tempo", receiver.url, "--events", "reader.registered"]
        )
        assert result.exit_code == 0, result.output
        receiver.secret = result.output.strip().splitlines()[-1]
        with app.test_request_context():
            site = sites.info_by_slug("tempo")
            for n in range(COUNT):
                register(site, f"pembaca{n}@example.com", "rahasia-sekali", "id", None, None)
        passes = 0
        while len(receiver.verified) < COUNT and passes < 100:
            with app.app_context():
                delivery.deliver_due()
            passes += 1
        ids = receiver.ids("reader.registered")
        assert len(ids) == COUNT and len(set(ids)) == COUNT
        assert receiver.refused == []
        emails = {d.payload["data"]["reader"]["email"] for d in receiver.verified}
        assert emails == {f"pembaca{n}@example.com" for n in range(COUNT)}
        assert receiver.requests > COUNT * 1.3  # the failures were real and retried
    finally:
        receiver.stop()
