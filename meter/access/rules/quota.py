"""The meter's rule, in Python: what a check answers, given the reader's state, the article's class,
the reader's unlocks in the period and the site's three quotas.

`check.lua` applies the rule in Redis, atomically with the count; this is its one Python home, used
where the script does not run: the answer without a subject, the refusal's reason, the degraded
answer while Redis is away, and each state's quota. The two cannot drift unseen:
tests/functional/test_quota_rule.py runs random quotas and meter states through the real script in a real
Redis and through `answer` here, and compares (the degraded answer too, where it must agree).
Nothing here imports anything: the policy, the metering package and the tests all use it.
"""

from __future__ import annotations

from typing import NamedTuple


class Quotas(NamedTuple):
    anonymous: int
    registered: int
    verified: int


def limit(quotas: Quotas, state: str) -> int:
    """The quota of a reader in this state (a subscriber reads without one; shown as the verified quota)."""
    if state == "anonymous":
        return quotas.anonymous
    if state == "registered":
        return quotas.registered
    return quotas.verified


def refusal(quotas: Quotas, state: str, article_class: str) -> str:
    """What would help a refused reader: subscribe, register, confirm the address, or wait."""
    if article_class == "premium":
        return "subscription_required"
    if state == "anonymous" and max(quotas.registered, quotas.verified) > quotas.anonymous:
        return "registration_required"
    if state == "registered" and quotas.verified > quotas.registered:
        return "verification_required"
    return "quota_exhausted"


def answer(quotas: Quotas, state: str, article_class: str, used: int, unlocked: bool, record: bool) -> str:
    """The reason check.lua answers (allowed: free_content, subscriber, already_unlocked, unlocked_now;
    would_unlock for a check that only asks; else the refusal)."""
    if article_class == "free":
        return "free_content"
    if state == "subscriber":
        return "subscriber"
    if article_class == "premium":
        return refusal(quotas, state, article_class)
    if unlocked:
        return "already_unlocked"
    if used >= limit(quotas, state):
        return refusal(quotas, state, article_class)
    return "unlocked_now" if record else "would_unlock"


def degraded_answer(quotas: Quotas, state: str, article_class: str, unlocked: bool, mode: str) -> str:
    """The answer while Redis is away: what the rule says without counting (free, subscribers,
    premium refused, an article already unlocked), and for any other metered article the site's
    `degraded_mode`: degraded_allow or degraded_deny (the count cannot be kept, so the quota is not
    applied either way)."""
    if article_class == "free" or state == "subscriber" or article_class == "premium" or unlocked:
        return answer(quotas, state, article_class, 0, unlocked, record=False)
    return "degraded_allow" if mode == "allow" else "degraded_deny"
