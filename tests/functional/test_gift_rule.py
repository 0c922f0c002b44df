"""The gift rule has one Python home (meter.gifts.rules.gift_rule) and one in Redis (gift.lua): random gifts
(revoked or not, an expiry around now to the microsecond, a device limit, the devices that opened
it), asked by a known or a new device for its article or another, recorded or only asked, with the
gift already in Redis or loaded from SQL by the same call, run through the real script in a real
Redis and through the Python copy: the outcome, the device count and what the script wrote must be
the same, and the state the giver's listing shows (`store.state_of`) must be the one the link is
judged by. Change either copy alone and this fails."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
import redis as redis_lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meter.access.rules.metering.layout import hash64
from meter.gifts.models import Gift
from meter.gifts.rules import gift_rule, store
from meter.platform import redis_keys

SCRIPT = resources.files("meter.gifts.rules").joinpath("gift.lua")
NOW = 1_800_000_000
SITE = 1
_serial = itertools.count()


@pytest.fixture(scope="module")
def script(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    yield client, client.register_script(SCRIPT.read_text("utf-8"))
    client.close()


def moment(epoch: int, micros: int) -> datetime:
    """Naive UTC, as SQL stores it."""
    return (datetime.fromtimestamp(epoch, UTC) + timedelta(microseconds=micros)).replace(tzinfo=None)


def a_gift(revoked: bool, expires: datetime, limit: int) -> Gift:
    return Gift(
        article_id="the-article",
        expires_at=expires,
        devices=limit,
        revoked_at=moment(NOW - 60, 0) if revoked else None,
    )


def run_lua(script, gift: Gift, now: int, article: str, devices: int, known: bool, record: bool, warm: bool):
    """The script's reply, the gifted reads it counted, whether the device is now in, and how many are:
    as hot.py calls it, with the gift's state already in Redis (`warm`) or sent from SQL."""
    client, lua = script
    nonce = f"n{next(_serial)}"
    keys = [redis_keys.gift_state(SITE, nonce), redis_keys.gift_devices(SITE, nonce)]
    device = hash64("r:asker")
    opened = [hash64(f"a:other-{i}") for i in range(devices - (1 if known else 0))] + ([device] if known else [])
    packed, packed_devices = store.packed_state(gift), b"".join(opened)
    if warm:
        client.hset(keys[0], "s", packed)
        if opened:
            client.sadd(keys[1], *opened)
        packed, packed_devices = b"", b""
    argv = [now, hash64(article), device, "1" if record else "0", packed, packed_devices, store.KEY_GRACE]
    outcome, count = lua(keys=keys, args=argv, client=client)
    counted = int(client.hget(keys[0], "c") or 0)
    inside = bool(client.sismember(keys[1], device))
    size = client.scard(keys[1])
    client.delete(*keys)
    return outcome.decode(), count, counted, inside, size


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)
@given(
    revoked=st.booleans(),
    expires_in=st.integers(min_value=-2, max_value=2),
    expires_micros=st.sampled_from([0, 1, 500_000, 999_999]),
    now_micros=st.sampled_from([0, 1, 500_000, 999_999]),
    same_article=st.booleans(),
    limit=st.integers(min_value=0, max_value=4),
    devices=st.integers(min_value=0, max_value=5),
    known=st.booleans(),
    record=st.booleans(),
    warm=st.booleans(),
)
def test_the_python_rule_answers_as_the_script_does(
    script, revoked, expires_in, expires_micros, now_micros, same_article, limit, devices, known, record, warm
):
    if known and devices == 0:
        devices = 1  # a known device is one of the gift's devices
    gift = a_gift(revoked, moment(NOW + expires_in, expires_micros), limit)
    now = moment(NOW, now_micros)
    now_epoch = int(now.replace(tzinfo=UTC).timestamp())  # as hot.py sends it
    article = "the-article" if same_article else "another-article"

    outcome, count, counted, inside, size = run_lua(script, gift, now_epoch, article, devices, known, record, warm)

    expected = gift_rule.answer(revoked, NOW + expires_in, now_epoch, same_article, devices, known, limit, record)
    assert (outcome, count, counted == 1) == expected
    assert inside == (known or outcome == "gift_new")
    assert size == devices + (outcome == "gift_new")
    state = store.state_of(gift, now)  # what the giver's listing shows, and whether giving again renews it
    assert state == (outcome if outcome in ("revoked", "expired") else "active")
