"""meter against the design's floor: CPU per request of each route beside a bare Flask hello-world that
makes the same one Redis script call (bench/floor_app.py), both served by gunicorn alike.

The goal (docs/benchmarks.md §1): each access route costs at most 1/0.95 of the floor's CPU per
request (floor / route ≥ 0.95), and `/healthz`, which makes no Redis call, no more than the floor
(≥ 1.0). CPU per request is the utime + stime of gunicorn's master and workers plus redis-server's,
read from /proc before and after each wrk run: other load on a shared machine disturbs it much less
than throughput. Each route's run is paired with a floor run just before it; the medians of the
pairs are printed. meter runs as deployed: JSON log line at INFO (to gunicorn's log file) and
Prometheus multiprocess mode.

    .venv/bin/python -m bench.floor [--pairs 5] [--duration 5] [--connections 16] [--workers "sync x2"]
    .venv/bin/python -m bench.floor --quick        # a tiny run: that it works, not what it measures
    .venv/bin/python -m bench.floor --profile 10   # also py-spy a meter worker under each route's load
    .venv/bin/python -m bench.floor --shaped       # also the floor sent each route's requests (a diagnostic)

A second table says where each side's CPU went: gunicorn's processes, redis-server, and the time
redis-server spent inside the script per request (`INFO commandstats`: EVALSHA's usec, the calls
the script makes included). With `--shaped`, each access route's pair also runs `floor_app.shaped`,
the floor sent that route's own requests and answering with as many headers as meter's answers:
what the exchange's shape costs whoever answers it, and so the best ratio a route could reach if
meter's own work cost no more than Flask's hello-world and its script no more than the floor's.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import redis

from bench.load import prepare, requests_for
from bench.run import WORKER_SETTINGS, Gunicorn, worker_pids
from bench.wrk import cpu_seconds, lua_script, sample_reasons, wrk
from meter.dev.redis_server import RedisProcess

ROUTES = {  # label: (load of bench.load, the goal: floor / route at least)
    "api": ("access", 0.95),
    "embed": ("embed", 0.95),
    "amp": ("amp", 0.95),
    "healthz": ("healthz", 1.0),
}


def script_usec(client: redis.Redis) -> int:
    """The µs redis-server has spent in EVALSHA so far (INFO commandstats; the script's own calls included)."""
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0))


def cpu_per_request(
    server: Gunicorn, redis_pid: int, client: redis.Redis, script: Path, connections: int, duration: int
) -> dict:
    """One wrk run; CPU µs per request of gunicorn's master and workers plus redis-server, and the
    shares of redis-server and of the script inside it."""
    pids = [server.process.pid, *worker_pids(server.process.pid)]
    before, redis_before, lua_before = cpu_seconds(pids), cpu_seconds([redis_pid]), script_usec(client)
    result = wrk(server.port, script, connections, duration)
    spent, redis_spent = cpu_seconds(pids) - before, cpu_seconds([redis_pid]) - redis_before
    lua = script_usec(client) - lua_before
    n = max(result["requests"], 1)
    errors = result["status_errors"] + result["socket_errors"]
    return {
        "cpu_us": (spent + redis_spent) / n * 1e6,
        "redis_us": redis_spent / n * 1e6,
        "script_us": lua / n,
        "requests": result["requests"],
        "rps": result["rps"],
        "errors": errors,
    }


def spy(server: Gunicorn, script: Path, connections: int, seconds: int, dest: Path) -> list[tuple[str, float, float]]:
    """py-spy one worker while wrk runs: the top frames as (frame, % self, % inclusive) of its samples.

    Only samples holding the GIL (`--gil`): CPU spent in Python, not the waits on sockets.
    """
    pid = worker_pids(server.process.pid)[0]
    cmd = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--format", "raw"]
    cmd += ["--duration", str(seconds), "--rate", "250", "--gil", "--nonblocking", "--output", str(dest)]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wrk(server.port, script, connections, seconds + 1)
    process.wait(timeout=seconds + 30)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in dest.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(frame) for frame in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return []
    return [(frame, 100 * n / total, 100 * inclusive[frame] / total) for frame, n in own.most_common(15)]


def _short(frame: str) -> str:
    """`name (path/to/module.py:12)` → `name (package/module.py:12)`."""
    name, _, where = frame.partition(" (")
    path, _, line = where.rstrip(")").rpartition(":")
    return f"{name} ({Path(path).parent.name}/{Path(path).name}:{line})" if path else name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="floor/route pairs per route (medians)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--readers", type=int, default=64)
    parser.add_argument("--workers", default="sync x2", choices=[w for w, _ in WORKER_SETTINGS])
    parser.add_argument("--log-level", default="INFO", help="meter's LOG_LEVEL (INFO: one line per request)")
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS", help="py-spy a worker per route")
    parser.add_argument("--quick", action="store_true", help="a tiny run (1 pair of 1 s, 4 readers)")
    parser.add_argument("--shaped", action="store_true", help="also the floor sent each route's requests")
    parser.add_argument("--out", default="", help="also write the figures as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.duration, args.readers, args.connections = 1, 1, 4, 4
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk (make bench does this when run as root)")

    gargs = dict(WORKER_SETTINGS)[args.workers]
    workdir = Path(tempfile.mkdtemp(prefix="meter-floor-"))
    redis_server = RedisProcess(str(workdir / "redis")).start()
    servers: list[Gunicorn] = []
    try:
        env, key, prepared = prepare(workdir, redis_server.url, args.readers)
        metrics_dir = workdir / "metrics"
        metrics_dir.mkdir()
        env = {**env, "LOG_LEVEL": args.log_level, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        requests = {load: requests_for(load, key, prepared) for load in ("access", "embed", "amp")}
        requests["healthz"] = [("GET", "/healthz", {}, None)]
        scripts = {load: lua_script(reqs, workdir / f"{load}.lua") for load, reqs in requests.items()}
        scripts["floor"] = lua_script([("GET", "/", {}, None)], workdir / "floor.lua")
        meter = Gunicorn(gargs, env, workdir)
        servers.append(meter)
        floor = Gunicorn(gargs, {"REDIS_URL": redis_server.url}, workdir, app="bench.floor_app:app", ready="/")
        servers.append(floor)
        shaped = None
        if args.shaped:
            shaped = Gunicorn(gargs, {"REDIS_URL": redis_server.url}, workdir, app="bench.floor_app:shaped", ready="/")
            servers.append(shaped)
        reasons = {load: sample_reasons(meter.port, requests[load]) for load in ("access", "embed", "amp")}
        print("answers of each load:", reasons, flush=True)
        redis_pid = redis_server.process.pid
        client = redis.Redis.from_url(redis_server.url)
        warm = [(floor, "floor"), *((meter, load) for load, _ in ROUTES.values())]
        if shaped is not None:
            warm += [(shaped, load) for load in ("access", "embed", "amp")]
        for server, script in warm:
            wrk(server.port, scripts[script], args.connections, 1)  # warm: imports, connections, scripts
        runs: dict[str, list[tuple[dict, dict]]] = {label: [] for label in ROUTES}
        shapes: dict[str, list[tuple[dict, dict]]] = {}
        for _ in range(args.pairs):
            for label, (load, _goal) in ROUTES.items():
                measure = (redis_pid, client)
                before = cpu_per_request(floor, *measure, scripts["floor"], args.connections, args.duration)
                after = cpu_per_request(meter, *measure, scripts[load], args.connections, args.duration)
                runs[label].append((before, after))
                if shaped is not None and load != "healthz":
                    shape = cpu_per_request(shaped, *measure, scripts[load], args.connections, args.duration)
                    shapes.setdefault(label, []).append((before, shape))
        print(
            f"\ngunicorn {args.workers}, wrk -c{args.connections}, {args.duration} s a run, median of {args.pairs} "
            f"pairs; CPU µs per request (gunicorn master + workers + redis-server); meter LOG_LEVEL={args.log_level}"
        )
        print(f"{'route':<8} | {'floor µs':>8} | {'route µs':>8} | {'floor/route':>11} | {'goal':>4} | met")
        figures = {}
        for label, (_load, goal) in ROUTES.items():
            pairs = runs[label]
            floor_us = statistics.median(b["cpu_us"] for b, _ in pairs)
            route_us = statistics.median(a["cpu_us"] for _, a in pairs)
            ratio = statistics.median(b["cpu_us"] / a["cpu_us"] for b, a in pairs)
            errors = sum(b["errors"] + a["errors"] for b, a in pairs)
            figures[label] = {"floor_us": floor_us, "route_us": route_us, "ratio": ratio, "pairs": pairs}
            met = "yes" if ratio >= goal else "no"
            warn = f"  ({errors} non-2xx or socket errors)" if errors else ""
            print(f"{label:<8} | {floor_us:>8.0f} | {route_us:>8.0f} | {ratio:>11.2f} | {goal:>4.2f} | {met}{warn}")
        print(
            "\nwhere it went (medians, µs per request): gunicorn's processes, redis-server, the script in redis-server"
        )
        print(
            f"{'route':<8} | {'floor gunicorn':>14} | {'redis':>5} | {'script':>6} | {'route gunicorn':>14} | {'redis':>5} | {'script':>6}"
        )
        for label in ROUTES:
            pairs = runs[label]
            side = [
                statistics.median(x[key] - (x["redis_us"] if key == "cpu_us" else 0) for x in xs)
                for xs in ([b for b, _ in pairs], [a for _, a in pairs])
                for key in ("cpu_us", "redis_us", "script_us")
            ]
            print(
                f"{label:<8} | {side[0]:>14.0f} | {side[1]:>5.0f} | {side[2]:>6.1f} | "
                f"{side[3]:>14.0f} | {side[4]:>5.0f} | {side[5]:>6.1f}"
            )
        if shapes:
            print(
                "\nthe floor sent each route's requests, answering with meter's headers (bench.floor_app:shaped);\n"
                "best = floor / (shaped + the route's extra redis-server CPU): the ratio if meter's own work cost\n"
                "what Flask's hello-world costs"
            )
            print(
                f"{'route':<8} | {'floor µs':>8} | {'shaped µs':>9} | {'shape costs':>11} | {'extra redis':>11} | best"
            )
            for label, pairs in shapes.items():
                floor_us = statistics.median(b["cpu_us"] for b, _ in pairs)
                shaped_us = statistics.median(s["cpu_us"] for _, s in pairs)
                extra = statistics.median(a["redis_us"] - b["redis_us"] for b, a in runs[label])
                best = statistics.median(b["cpu_us"] / (s["cpu_us"] + extra) for b, s in pairs)
                print(
                    f"{label:<8} | {floor_us:>8.0f} | {shaped_us:>9.0f} | {shaped_us - floor_us:>+11.0f} | "
                    f"{extra:>+11.0f} | {best:.2f}"
                )
            figures["shaped"] = {label: pairs for label, pairs in shapes.items()}
        outages = len(re.findall(r"Redis unreachable", Path(meter.log.name).read_text(errors="replace")))
        if outages:
            print(
                f"\nmeter's log: {outages} Redis outages (a call over REDIS_SOCKET_TIMEOUT on a loaded machine): "
                "degraded answers (SQL) for REDIS_RETRY_AFTER each, in the figures above"
            )
        if args.profile:
            for label, (load, _goal) in ROUTES.items():
                print(f"\npy-spy, one meter worker under the {label} load, {args.profile} s: % self, % inclusive")
                for frame, own, inclusive in spy(
                    meter, scripts[load], args.connections, args.profile, workdir / f"{label}.txt"
                ):
                    print(f"{own:6.1f} {inclusive:6.1f}  {frame}")
        if args.out:
            Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        for server in servers:
            server.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
