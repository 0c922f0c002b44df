"""How the meter is laid out in Redis: which key and field hold a subject, and how values are packed.

Readers are spread over a site's METER_BUCKETS buckets; the keys of one bucket share one hash tag
(`redis_keys.bucket_tag`), so everything one check touches is in one Redis Cluster slot. Small
hashes are kept by Redis as one packed listpack, which is where the memory goes down (see
docs/benchmarks.md). `check.lua` reads and writes exactly these shapes.
"""

from __future__ import annotations

import hashlib
import struct

from flask import current_app

from meter.platform import redis_keys
from meter.sites import Period

CALENDAR_GRACE = 7 * 86400  # keep a finished period's data a while (late pingbacks, support)
U32_MAX = 0xFFFFFFFF  # times are packed as 32-bit epochs (until 2106)


def hash64(value: str) -> bytes:
    """The 8-byte hash Redis keeps instead of an article or session id (BLAKE2b: fast, no structure)."""
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def reader_subject(reader_id: int) -> str:
    """How the meter (Redis and the ledger) names a reader."""
    return f"r:{reader_id}"


def anonymous_subject(anonymous_id: str) -> str:
    """How the meter names an anonymous visitor (the publisher's or meter's anonymous id)."""
    return f"a:{anonymous_id}"


def buckets() -> int:
    return current_app.config["METER_BUCKETS"]


def place(subject: str, count: int | None = None) -> tuple[int, bytes]:
    """(bucket, field) of a subject key (`r:<id>` | `a:<anonymous id>`).

    Readers: field = the id in decimal (Redis packs it as an integer), bucket = id modulo METER_BUCKETS
    (ids are sequential, so buckets fill evenly). Anonymous ids: field = "a" + their 64-bit hash.
    """
    if count is None:
        count = buckets()
    kind, _, rest = subject.partition(":")
    if kind == "r":
        reader_id = int(rest)
        return reader_id % count, str(reader_id).encode()
    digest = hash64(rest)
    return int.from_bytes(digest, "big") % count, b"a" + digest


def pack_state(verified: bool, sub_until: int, session_ids: list[str]) -> bytes:
    """A reader's cached state: "0"/"1" (verified), the subscription's end (4-byte epoch), session hashes."""
    return (
        (b"1" if verified else b"0")
        + struct.pack(">I", min(max(sub_until, 0), U32_MAX))
        + b"".join(hash64(s) for s in session_ids)
    )


def pack_unlocks(entries: dict[str, int], rolling: bool) -> bytes:
    """Unlocks as the script keeps them: 8-byte article hashes, each followed by a 4-byte time if rolling."""
    ordered = sorted(entries.items(), key=lambda item: item[1])
    if rolling:
        return b"".join(hash64(a) + struct.pack(">I", min(max(t, 0), U32_MAX)) for a, t in ordered)
    return b"".join(hash64(a) for a, _t in ordered)


def unpack_hashes(packed: bytes, rolling: bool) -> set[bytes]:
    """The article hashes of packed unlocks."""
    size = 12 if rolling else 8
    return {packed[i : i + 8] for i in range(0, len(packed) - 7, size)}


def unlocks_key(site_id: int, subject: str, period: Period, bucket: int, count: int, meter: str = "default") -> str:
    """The key of a meter's unlocks of a period: each meter has keys of its own, in the subject's bucket
    (so one check still touches one slot), laid out alike, so a reader costs the same in every meter."""
    if period.rolling_seconds:
        return redis_keys.rolling_unlocks(site_id, bucket, count, subject, meter)
    return redis_keys.unlock_bucket(site_id, bucket, count, period.label, meter)


def unlock_place(site_id: int, subject: str, period: Period, meter: str = "default") -> tuple[str, bytes]:
    """(key, field) that hold a subject's unlocks of a meter's period (a rolling window's key has no field)."""
    count = buckets()
    bucket, field = place(subject, count)
    return unlocks_key(site_id, subject, period, bucket, count, meter), field


def state_place(site_id: int, reader_id: int) -> tuple[str, bytes]:
    """(key, field) of a reader's cached state."""
    count = buckets()
    bucket, field = place(reader_subject(reader_id), count)
    return redis_keys.state_bucket(site_id, bucket, count), field
