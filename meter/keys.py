"""Every Redis key meter uses is built here, and nowhere else.

All keys one access check touches carry the same hash tag `{s<site>:b<bucket>/<buckets>}` (the
compact layout below), so they live in one Redis Cluster slot and one Lua script may touch them all.
The storage layout behind these names is private to `metering.py` and `lua/check.lua`.
"""

from __future__ import annotations

PREFIX = "m"


def subject_for_reader(reader_id: int) -> str:
    return f"r:{reader_id}"


def subject_for_anonymous(anonymous_id: str) -> str:
    return f"a:{anonymous_id}"


def token_used(purpose: str, token_id: str) -> str:
    """A one-time token's redemption mark."""
    return f"{PREFIX}:used:{purpose}:{token_id}"


# --- the compact layout (issue 6) ----------------------------------------------------------------
# Readers are spread over a site's buckets; one bucket's keys share the hash tag `{s<site>:b<n>/<count>}`, so
# the state and the unlocks one access check touches are in one Redis Cluster slot. Small hashes are
# stored by Redis as one packed listpack, which is where the memory goes down (see docs/benchmarks.md).


def bucket_tag(site_id: int, bucket: int, buckets: int) -> str:
    """`buckets` (METER_BUCKETS) is in the name: after a change, no stale bucket of the old layout is read."""
    return f"{{s{site_id}:b{bucket}/{buckets}}}"


def state_bucket(site_id: int, bucket: int, buckets: int) -> str:
    """Cached reader state of a bucket of readers: field reader id → packed state; one expiry."""
    return f"{PREFIX}:{bucket_tag(site_id, bucket, buckets)}:st"


def unlock_bucket(site_id: int, bucket: int, buckets: int, period: str) -> str:
    """A calendar period's unlocks of a bucket of subjects: field subject → packed 64-bit article hashes."""
    return f"{PREFIX}:{bucket_tag(site_id, bucket, buckets)}:u:{period}"


def rolling_unlocks(site_id: int, bucket: int, buckets: int, subject: str) -> str:
    """A rolling window's unlocks of one subject (a string of packed hash + time records)."""
    return f"{PREFIX}:{bucket_tag(site_id, bucket, buckets)}:u:rolling:{subject}"
