"""CPU per request inside one process: hello-world vs the access check's three routes (hot entry), and via Flask.

No HTTP server and no load generator: each request is one call of the app's WSGI callable with a
prepared environ, timed with `time.process_time` (this process's CPU, so other load on the machine
disturbs it much less than wall-clock throughput). redis-server runs in its own process; its CPU is
not counted here (bench.run counts it). Rounds alternate between the variants; medians are printed.

    .venv/bin/python -m bench.inprocess [--calls 2000] [--rounds 5] [--replay] [--grants]

--grants: the site signs grants (a grant key, `grants` and `content_protection` on): every allowed,
counted answer of the API and the embed carries one; compare with a run without it.

--replay (a diagnostic, never a figure of the goal): every script call is answered with the reply
Redis gave the first time it was asked the same (script, keys, hashes), so no round trip is made;
what remains is meter's own work in Python, and the difference from a normal run is what the one
round trip costs this process.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from bench.hello import with_hello
from bench.load import TARGETS, prepare, requests_for
from meter import create_app
from meter.dev.redis_server import RedisProcess


def environ_for(method: str, path: str, headers: dict, body: str | None) -> dict:
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(path=path, method=method, headers=headers, data=body, base_url="http://127.0.0.1:8000")
    try:
        return builder.get_environ()
    finally:
        builder.close()


# Replies that lead to SQL (the cold path asks for data; a new unlock or gift device is written to the
# ledger) are never replayed: the next real call answers as the steady state does.
CHANGING = ("need_state", "need_unlocks", "need_gift", "unlocked_now", "gift_new")


def replay_script_replies() -> None:
    """Answer each EVALSHA with the reply Redis first gave to the same script, keys and non-numeric
    arguments (the numbers are the clock, quotas and expiries: the same answer in a steady state)."""
    from meter.platform.redis_conn import RedisConn

    ask = RedisConn._evalsha
    replies: dict[tuple, object] = {}

    def replayed(self, sha: str, keys: list, args: list):
        key = (sha, *keys, *(a for a in args if not isinstance(a, int)))
        reply = replies.get(key)
        if reply is None:
            reply = ask(self, sha, keys, args)
            if reply[0] not in CHANGING:
                replies[key] = reply
        return reply

    RedisConn._evalsha = replayed  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--readers", type=int, default=32)
    parser.add_argument("--replay", action="store_true", help="no round trip: replay each script's first reply")
    parser.add_argument(
        "--log-level", default="WARNING", help="INFO: write each request's log line (to a temporary file), as deployed"
    )
    parser.add_argument("--grants", action="store_true", help="the site signs grants on the API and the embed")
    args = parser.parse_args()
    if args.replay:
        replay_script_replies()

    with tempfile.TemporaryDirectory(prefix="meter-inprocess-") as tmp:
        redis = RedisProcess(str(Path(tmp) / "redis"))
        redis.start()
        try:
            env, key, prepared = prepare(Path(tmp), redis.url, args.readers)
            app = with_hello(
                create_app(
                    {
                        "SECRET_KEY": env["SECRET_KEY"],
                        "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
                        "REDIS_URL": env["REDIS_URL"],
                        "SITE_CACHE_TTL": float(env["SITE_CACHE_TTL"]),
                        "SESSION_COOKIE_SECURE": False,
                        "PUBLIC_BASE_URL": env["PUBLIC_BASE_URL"],
                        "MAIL_DEFAULT_SENDER": env["MAIL_DEFAULT_SENDER"],
                    }
                )
            )
            root = logging.getLogger()
            root.setLevel(args.log_level)  # WARNING: as bench.run's gunicorn (LOG_LEVEL=WARNING)
            log_file = open(Path(tmp) / "requests.log", "w")  # noqa: SIM115 (the directory goes at the end)
            for handler in root.handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(log_file)
            if args.grants:
                use_grants(app)
            requests = {
                name: requests_for(name, key, prepared) for name in ("hello", "hello_redis", "access-plain", *TARGETS)
            }
            requests["healthz"] = [("GET", "/healthz", {}, None)]

            def start_response(status: str, headers: list, exc_info: object = None) -> None:
                assert status.startswith("200"), status

            def run(variant: str) -> float:
                target = variant.split(" ")[0]
                app.config["METER_FAST_ACCESS"] = not variant.endswith("(Flask)")
                reqs = requests[target]
                environs = [environ_for(*reqs[i % len(reqs)]) for i in range(args.calls)]
                started = time.process_time()
                for environ in environs:
                    for _chunk in app(environ, start_response):
                        pass
                return (time.process_time() - started) / args.calls * 1e6

            variants = ["hello", "hello_redis", "healthz", "access-plain", "access", "embed", "amp", "access (Flask)"]
            for variant in variants:
                run(variant)  # warm: caches, connections, the script
            samples: dict[str, list[float]] = {v: [] for v in variants}
            for _ in range(args.rounds):
                for variant in variants:
                    samples[variant].append(run(variant))
            hello = statistics.median(samples["hello"])
            grants = " with grants" if args.grants else ""
            print(f"CPU per request in-process{grants}, median (min) of {args.rounds} rounds of {args.calls} calls:")
            for variant in variants:
                us = statistics.median(samples[variant])
                low = min(samples[variant])
                print(f"  {variant:20} {us:7.1f} us ({low:6.1f})   ({us - hello:+6.1f} us over hello)")
        finally:
            redis.stop()


def use_grants(app) -> None:
    """A grant key for the bench site, and grants on for the API and the embed (as the commands do)."""
    from meter.platform.db import db
    from meter.sites.rules import grant_keys as keys
    from meter.sites.rules import sites

    with app.app_context():
        site = sites.by_slug("bench")
        keys.create(site)
        site.settings = {**(site.settings or {}), "grants": "on", "content_protection": "on"}
        db.session.commit()
        sites.forget_cached()


if __name__ == "__main__":
    main()
