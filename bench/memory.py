"""Redis memory per metered reader per period: 200,000 simulated readers with 2 unlocks each.

Each layout is loaded into a fresh redis-server of its own (the one `make test` uses), and
`INFO memory` used_memory is read before and after. The compact layout is written by meter's own
`check.lua` with the arguments `metering.check` sends (ScriptArgs), so what is measured is what runs.
The last row has every reader read in several meters of a policy (`--meters`, 3 by default: the
default one and two named ones, each in keys of its own), 2 unlocks in each: its
`bytes_per_reader_meter` is the figure per reader per meter. `--only meters` runs that row and the
one meter's at the default buckets, to compare.

    .venv/bin/python -m bench.memory [--readers 200000] [--meters 3] [--only meters] [--json bench/memory.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib import resources

import redis

from meter.access.rules.metering import layout
from meter.access.rules.metering.check import ScriptArgs
from meter.dev.redis_server import RedisProcess
from meter.platform import redis_keys
from meter.stats import rules as stats

# Dated from today: Redis expires a key whose absolute expiry (period end + grace) has passed at once.
_TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
NOW = int(_TODAY.timestamp())
END = int((_TODAY + timedelta(days=30)).timestamp())  # the period's end
PERIOD = _TODAY.strftime("%Y-%m")
DAY = _TODAY.date().isoformat()
STATS_EXPIRY = int((_TODAY + timedelta(days=1 + stats.KEEP_DAYS)).timestamp())


def used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def naive_set(client: redis.Redis, readers: int) -> None:
    """The issue's baseline: one Redis set of 2 article ids per reader, with a TTL."""
    pipe = client.pipeline(transaction=False)
    for r in range(readers):
        key = f"m:{{s1:r:{r}}}:u:{PERIOD}"
        pipe.sadd(key, f"tempo:koran:{PERIOD}-{r % 28:02d}:artikel-{r}", f"tempo:majalah:{PERIOD}:laporan-{r + 7}")
        pipe.expire(key, 30 * 86400)
        if r % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def foundation_hash(client: redis.Redis, readers: int) -> None:
    """The foundation's layout: one hash per subject and period, article id → time, "" as loaded mark."""
    pipe = client.pipeline(transaction=False)
    for r in range(readers):
        key = f"m:{{s1:r:{r}}}:u:{PERIOD}"
        pipe.hset(
            key,
            mapping={
                "": "1",
                f"tempo:koran:{PERIOD}-{r % 28:02d}:artikel-{r}": NOW,
                f"tempo:majalah:{PERIOD}:laporan-{r + 7}": NOW,
            },
        )
        pipe.expire(key, 30 * 86400)
        if r % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def compact(
    client: redis.Redis, readers: int, buckets: int, with_state: bool, meters: tuple[str, ...] = ("default",)
) -> None:
    """meter's layout, written by check.lua itself: 2 unlocks per reader in each meter (and its cached state).

    The keys and arguments are built as `metering.check` builds them (`ScriptArgs`, the stats key
    included, each meter's unlocks in its own keys), so a change of the script's arguments reaches
    this bench too.
    """
    source = resources.files("meter.access.rules.metering").joinpath("check.lua").read_text("utf-8")
    script = client.register_script(source)
    pipe = client.pipeline(transaction=False)
    for r in range(1, readers + 1):
        subject = layout.reader_subject(r)
        bucket, fld = layout.place(subject, buckets)
        sid = f"{r:032x}"
        for m, meter in enumerate(meters):
            keys = [
                redis_keys.state_bucket(1, bucket, buckets),
                redis_keys.unlock_bucket(1, bucket, buckets, PERIOD, meter),
                redis_keys.stats_bucket(1, bucket, buckets, DAY),
            ]
            for n, article in enumerate((f"tempo:{meter}:{PERIOD}-{r % 28:02d}:artikel-{r}", f"tempo:laporan-{r + 7}")):
                args = ScriptArgs(
                    kind="r" if with_state else "a",
                    session=layout.hash64(sid) if with_state else b"",  # as the check: none for "a"
                    now=NOW + n,
                    article=layout.hash64(article),
                    article_class="metered",
                    record=True,
                    quota_anonymous=2,
                    quota_registered=2,
                    quota_verified=2,
                    unlocks_expiry=END + layout.CALENDAR_GRACE,
                    window=0,
                    state_ttl=3600,
                    field=fld,
                    stats_expiry=STATS_EXPIRY,
                    # the reader's state comes from SQL once, with its first check; the rest find it cached
                    fresh_state=layout.pack_state(True, 0, [sid]) if with_state and m == n == 0 else b"",
                    unlocks=b"",  # loaded, nothing unlocked before: as the cold path sends it
                )
                script(keys=keys, args=args.argv(), client=pipe)
        if r % 5000 == 0:
            for answer in pipe.execute():
                assert answer[0] == "unlocked_now", answer
    for answer in pipe.execute():
        assert answer[0] == "unlocked_now", answer


def measure(name: str, load, readers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(tmp).start()
        try:
            client = redis.Redis.from_url(server.url, decode_responses=True)
            before = used(client)
            started = time.monotonic()
            load(client, readers)
            after = used(client)
            encodings = {}
            for key in client.scan_iter(count=1000):
                enc = client.object("encoding", key)
                encodings[enc] = encodings.get(enc, 0) + 1
                if sum(encodings.values()) >= 2000:
                    break
            row = {
                "layout": name,
                "readers": readers,
                "keys": client.dbsize(),
                "used_memory_bytes": after - before,
                "bytes_per_reader": round((after - before) / readers, 1),
                "encodings_sampled": encodings,
                "load_seconds": round(time.monotonic() - started, 1),
            }
        finally:
            server.stop()
    print(
        f"{name:<48} {row['keys']:>8} keys {row['used_memory_bytes']:>12,} B "
        f"{row['bytes_per_reader']:>7} B/reader  {encodings}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=200_000)
    parser.add_argument("--meters", type=int, default=3, help="meters each reader reads in, in the last row")
    parser.add_argument("--only", choices=("meters",), help="only the several meters' row and the one meter's")
    parser.add_argument("--json", default="bench/memory.json")
    args = parser.parse_args()
    n = args.readers
    rows = []
    if args.only is None:
        rows += [
            measure("naive: a set of 2 article ids per reader", naive_set, n),
            measure("foundation: a hash per reader and period", foundation_hash, n),
        ]
        for buckets in (1024, 2048, 4096, 16384):
            rows.append(
                measure(
                    f"compact, {buckets} buckets: unlocks (+ day counts)",
                    lambda c, r, b=buckets: compact(c, r, b, with_state=False),
                    n,
                )
            )
        rows.append(
            measure(
                "compact, 2048 buckets: + cached state",
                lambda c, r: compact(c, r, 2048, with_state=True),
                n,
            )
        )
    else:  # the one meter's row to compare with
        rows.append(
            measure("compact, 4096 buckets: unlocks (+ day counts)", lambda c, r: compact(c, r, 4096, False), n)
        )
    meters = ("default", *(f"meter{i}" for i in range(1, args.meters)))
    row = measure(
        f"compact, 4096 buckets, {len(meters)} meters: unlocks in each",
        lambda c, r: compact(c, r, 4096, with_state=False, meters=meters),
        n,
    )
    row["meters"] = len(meters)
    row["bytes_per_reader_meter"] = round(row["used_memory_bytes"] / (n * len(meters)), 1)
    print(f"{'':<48} {row['bytes_per_reader_meter']:>7} B/reader/meter", flush=True)
    rows.append(row)
    with open(args.json, "w") as f:
        json.dump({"readers": n, "rows": rows}, f, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
