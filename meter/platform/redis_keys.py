"""Every Redis key meter uses is built here, and nowhere else.

All keys one access check touches carry the same hash tag `{s<site>:b<bucket>/<buckets>}` (the
compact layout below), so they live in one Redis Cluster slot and one Lua script may touch them all.
The values behind these names are described where they are used: the meter's in
`meter/access/rules/metering/layout.py` and `check.lua`.
"""

from __future__ import annotations

PREFIX = "m"


# --- the meter (the compact layout of meter.access.rules.metering.layout) --------------------------------


def bucket_tag(site_id: int, bucket: int, buckets: int) -> str:
    """`buckets` (METER_BUCKETS) is in the name: after a change, no stale bucket of the old layout is read."""
    return f"{{s{site_id}:b{bucket}/{buckets}}}"


def state_bucket(site_id: int, bucket: int, buckets: int) -> str:
    """Cached reader state of a bucket of readers: field reader id → packed state; one expiry."""
    return f"{PREFIX}:{bucket_tag(site_id, bucket, buckets)}:st"


def _unlocks(meter: str) -> str:
    """The unlocks' part of a key: `u` for the site's default meter (the names it had before meters),
    `u.<name>` for a named meter (meter names have no colon, so no two meters' keys can meet)."""
    return "u" if meter == "default" else f"u.{meter}"


def unlock_bucket(site_id: int, bucket: int, buckets: int, period: str, meter: str = "default") -> str:
    """A meter's calendar period's unlocks of a bucket of subjects: field subject → packed 64-bit article hashes."""
    return f"{PREFIX}:{bucket_tag(site_id, bucket, buckets)}:{_unlocks(meter)}:{period}"


def rolling_unlocks(site_id: int, bucket: int, buckets: int, subject: str, meter: str = "default") -> str:
    """A meter's rolling window's unlocks of one subject (a string of packed hash + time records)."""
    return f"{PREFIX}:{bucket_tag(site_id, bucket, buckets)}:{_unlocks(meter)}:rolling:{subject}"


def stats_bucket(site_id: int, bucket: int, buckets: int, day: str) -> str:
    """A day's answers of the access check counted by its script, per bucket: field reason → count.
    Drained into SQL by the worker (meter.stats.rules); in the check's slot, so counting costs no call."""
    return f"{PREFIX}:{bucket_tag(site_id, bucket, buckets)}:stats:{day}"


def ledger_journal(site_id: int, bucket: int, buckets: int) -> str:
    """The bucket's unlocks answered and not yet known to be in the ledger: a list of "time\tperiod\tsubject\t
    article id" (then "\tmeter" for a named meter), pushed by the check's script with the unlock, taken into SQL by the worker
    (meter.access.rules.metering.journal). No expiry, so `volatile-lru` never evicts it: it holds what SQL lacks."""
    return f"{PREFIX}:{bucket_tag(site_id, bucket, buckets)}:journal"


def amp_link(site_id: int, bucket: int, buckets: int, rid: str) -> str:
    """An AMP reader id linked to a reader by a login: "reader_id:session_id" (meter.access.rules.amp_readers),
    in the bucket of the rid's own anonymous meter, so the check that judges the rid reads it too."""
    return f"{PREFIX}:{bucket_tag(site_id, bucket, buckets)}:amp:{rid}"


def amp_links_of(site_id: int, reader_id: int) -> str:
    """The AMP reader ids a reader's logins linked (a set), so that the reader's export and deletion find
    them: each link itself lives under its rid's key (`amp_link`), which names no reader in its name."""
    return f"{PREFIX}:amp-of:{site_id}:{reader_id}"


# --- accounts ---------------------------------------------------------------------------


def mail_budget(site_id: int, email_key: str) -> str:
    """The mails sent to an address on a site within the budget's longest window (a sorted set of send
    times; meter.accounts.rules.mail_budget)."""
    return f"{PREFIX}:mail:{site_id}:{email_key}"


def social_state(site_id: int, provider: str, state: str) -> str:
    """A started sign-in at a provider, until its callback takes it (meter.social.rules.state)."""
    return f"{PREFIX}:social:{site_id}:{provider}:{state}"


# --- clients and gifts ------------------------------------------------------------------------


def crawler_dns(operator: str, address_hash: str) -> str:
    """Whether DNS verified an address (its 64-bit hash in hex: no address is kept) as `operator`'s
    crawler: "1" (kept a day) or "0" (an hour) (meter.access.rules.crawlers.dns_check). One key, read alone."""
    return f"{PREFIX}:crawler:{operator}:{address_hash}"


def gift_tag(site_id: int, nonce: str) -> str:
    """A gift's own hash tag: its state and its devices share one slot, so one script reads both."""
    return f"{{g{site_id}:{nonce}}}"


def gift_state(site_id: int, nonce: str) -> str:
    """A gift as a gifted read needs it: field s → packed article hash, expiry, device limit, revoked
    (meter.gifts.rules.hot), field c → how many gifted reads it gave; expires with the gift."""
    return f"{PREFIX}:{gift_tag(site_id, nonce)}"


def gift_devices(site_id: int, nonce: str) -> str:
    """The devices (8-byte hashes of readers and anonymous ids) that opened a gift: a set."""
    return f"{PREFIX}:{gift_tag(site_id, nonce)}:d"
