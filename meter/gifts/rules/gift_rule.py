"""The gift rule, in Python: what a gift link answers for an article and a device, given the gift's
state (revoked, expiry, article, device limit) and the devices that already opened it.

`gift.lua` applies the rule in Redis, atomically with the opening; this is its one Python home, used
where the script does not run: the state a giver's listing shows, and whether giving the same article
again needs a fresh link (`gifts.store.state_of`), so that neither calls a gift live that its link
already refuses. The two cannot drift unseen: tests/test_gift_rule.py runs random gifts, devices and
times through the real script in a real Redis and through `answer` here, and compares the outcome,
the device count and what the script recorded. Times are whole epoch seconds, as the script's are.
Nothing here imports anything.
"""

from __future__ import annotations

from typing import NamedTuple

REFUSALS = ("expired", "revoked", "device_limit", "invalid")


def state(revoked: bool, expires: int, now: int) -> str:
    """The gift's state: revoked, expired (from its expiry's second on) or active. A revocation wins
    over the expiry, as in the script, so a revoked gift reads revoked for good."""
    if revoked:
        return "revoked"
    return "expired" if now >= expires else "active"


class Opening(NamedTuple):
    outcome: str  # gift, gift_new (a new device came in), or one of REFUSALS
    devices: int  # the devices that opened it, this one included when it is in (0 for a dead gift)
    counted: bool  # one more gifted read recorded (the giver's listing shows them)


def answer(
    revoked: bool, expires: int, now: int, same_article: bool, devices: int, known: bool, limit: int, record: bool
) -> Opening:
    """The script's answer for a device opening the gift: a dead gift (revoked, expired) or another
    article is refused whoever asks; a device that opened it before always gets in; a new one gets in
    while fewer than `limit` devices did. With `record` False nothing is written, and a new device is
    told "gift" if it would get in. `devices` counts the known device too."""
    live = state(revoked, expires, now)
    if live != "active":
        return Opening(live, 0, False)
    if not same_article:
        return Opening("invalid", 0, False)
    if known:
        return Opening("gift", devices, record)
    if devices >= limit:
        return Opening("device_limit", devices, False)
    if not record:
        return Opening("gift", devices, False)
    return Opening("gift_new", devices + 1, True)
