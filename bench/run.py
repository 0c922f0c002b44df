"""`make bench`: hello-world JSON vs the access check, same app, same gunicorn, same load, one run.

Starts its own redis-server (meter.dev.redis_server.RedisProcess) and SQLite database in a temporary
directory, prepares a site and verified readers through the app itself (register → activation mail
in the outbox → activate → 2 unlocks each), then serves `bench.wsgi:app` with gunicorn on a free
loopback port and drives it with wrk (Debian's package). It first compares gunicorn worker
settings at one concurrency, keeps the best for the access check, then sweeps concurrency.
Writes bench/results.json and bench/results.png, and prints a table.

    .venv/bin/python -m bench.run [--duration 5] [--concurrency 2,8,32,128] [--readers 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.load import TARGETS, prepare, requests_for
from bench.wrk import lua_script, measured, sample_reasons, worker_pids, wrk
from meter.dev.redis_server import RedisProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
WORKER_SETTINGS = [  # (label, gunicorn arguments)
    ("sync x2", ["-k", "sync", "-w", "2"]),
    ("sync x3", ["-k", "sync", "-w", "3"]),
    ("sync x4", ["-k", "sync", "-w", "4"]),
    ("gthread 2x4", ["-k", "gthread", "-w", "2", "--threads", "4"]),
]


def machine() -> dict:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "kernel": platform.release()}


class Gunicorn:
    def __init__(
        self, args: list[str], env: dict, workdir: Path, app: str = "bench.wsgi:app", ready: str = "/healthz"
    ) -> None:
        self.port = free_port()
        self.log = open(workdir / f"gunicorn-{self.port}.log", "w")  # noqa: SIM115 (closed in stop)
        cmd = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{self.port}", *args, app]
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{ready}", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def serve(gargs: list[str], env: dict, workdir: Path) -> tuple[Gunicorn, Gunicorn]:
    """The app as served, and the same app with the access check's fast path off."""
    server = Gunicorn(gargs, env, workdir)
    try:
        return server, Gunicorn(gargs, {**env, "METER_FAST_ACCESS": "0"}, workdir)
    except BaseException:
        server.stop()
        raise


def targets_of(
    server: Gunicorn,
    flask_server: Gunicorn,
    redis_server: RedisProcess,
    scripts: dict[str, Path],
) -> dict:
    def pids_of(g: Gunicorn):
        return lambda: [*worker_pids(g.process.pid), redis_server.process.pid]

    targets = {"hello": (server.port, scripts["hello"], pids_of(server))}
    for name in TARGETS:
        targets[name] = (server.port, scripts[name], pids_of(server))
    targets["access_flask"] = (flask_server.port, scripts["access"], pids_of(flask_server))
    for extra in ("bare", "hello_redis"):
        if extra in scripts:
            targets[extra] = (server.port, scripts[extra], pids_of(server))
    return targets


def profile(server: Gunicorn, script: Path, connections: int, duration: int, dest: Path) -> dict[str, float]:
    """py-spy one gunicorn worker while wrk runs; inclusive share of samples per meter/flask frame."""
    pid = worker_pids(server.process.pid)[0]
    raw = dest.with_suffix(".collapsed")
    cmd = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--format", "raw"]
    cmd += ["--duration", str(duration), "--rate", "500", "--nonblocking", "--output", str(raw)]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wrk(server.port, script, connections, duration)
    spy.wait(timeout=duration + 30)
    total, share = 0, {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        seen = set()
        for frame in stack.split(";"):
            name = frame.split(" (")[0]
            where = frame.split(" (")[1].split(":")[0] if " (" in frame else ""
            label = f"{name} ({Path(where).parent.name}/{Path(where).name})"
            if label not in seen:
                seen.add(label)
                share[label] = share.get(label, 0) + n
    top = sorted(share.items(), key=lambda kv: -kv[1])
    return {k: round(100 * v / total, 1) for k, v in top[:60]} if total else {}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def pair(targets: dict, connections: int, duration: int, rounds: int) -> dict:
    """The targets alternately, `rounds` times each; medians, so drift of a shared machine hits all.

    targets (targets_of): hello-world, the access check as served (its fast path), and the same check
    through the Flask view (a second gunicorn with METER_FAST_ACCESS=0), each as (port, wrk script,
    pids() of its gunicorn workers and redis-server).
    """
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (port, script, pids) in targets.items():
            runs[name].append(measured(port, script, connections, duration, pids))
    row: dict = {"connections": connections}
    for name, rs in runs.items():
        errors = sum(r["status_errors"] + r["socket_errors"] for r in rs)
        if errors:
            print(f"  warning: {name} at c={connections}: {errors} non-2xx or socket errors")
        row[name] = {
            "rps": round(_median([r["rps"] for r in rs]), 1),
            "p50_ms": round(_median([r["p50_ms"] for r in rs]), 2),
            "p99_ms": round(_median([r["p99_ms"] for r in rs]), 2),
            "cpu_us_per_request": round(_median([r["cpu_us_per_request"] for r in rs]), 1),
            "redis_cpu_us_per_request": round(_median([r["redis_cpu_us_per_request"] for r in rs]), 1),
            "errors": errors,
            "runs": rs,
        }
    if "bare" in row:  # --floor: what the access check costs above gunicorn's own floor
        row["access_to_floor"] = round(row["access"]["rps"] / row["bare"]["rps"], 3)
    if "hello_redis" in row:  # --hello-redis: the checks against hello-world with one round trip
        for name in TARGETS:
            row[f"{name}_to_hello_redis"] = round(row[name]["rps"] / row["hello_redis"]["rps"], 3)
    for name, suffix in (("access", ""), ("embed", "_embed"), ("amp", "_amp"), ("access_flask", "_flask")):
        if name in row:
            row[f"ratio{suffix}"] = round(row[name]["rps"] / row["hello"]["rps"], 3)
            row[f"cpu_ratio{suffix}"] = round(row["hello"]["cpu_us_per_request"] / row[name]["cpu_us_per_request"], 3)
    return row


def plot(results: dict, dest: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["sweep"]
    cs = [r["connections"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = {
        "hello": "hello",
        "access": "POST /v1/access",
        "embed": "POST /embed/…/access",
        "amp": "GET /amp/…/authorization",
        "access_flask": "/v1/access via the Flask view",
    }
    for name, style in (("hello", "o--"), ("access", "s-"), ("embed", "d-"), ("amp", "v-"), ("access_flask", "^:")):
        if name in rows[0]:
            left.plot(cs, [r[name]["rps"] for r in rows], style, label=labels[name])
            right.plot(cs, [r[name]["p99_ms"] for r in rows], style, label=labels[name])
    for ax, title, unit in ((left, "throughput", "requests/s"), (right, "p99 latency", "ms")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(cs, [str(c) for c in cs])
        ax.set_xlabel("concurrent connections (wrk)")
        ax.set_ylabel(unit)
        ax.set_title(f"{title}, gunicorn {results['workers']}")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"meter: hello-world JSON vs the access check's three routes ({results['machine']['nproc']} CPUs)")
    fig.tight_layout()
    fig.savefig(dest, dpi=110)


def _print_rows(title: str, sweep: list[dict], row_text) -> None:
    print("\n" + title)
    for r in sweep:
        print(f"{r['connections']:>6} | {row_text(r)}")


def _floor_row(r: dict) -> str:
    b = r["bare"]
    return (
        f"bare {b['rps']:>7.0f} req/s  p99 {b['p99_ms']:>6.1f} ms  CPU {b['cpu_us_per_request']:>5.0f} us | "
        f"access / bare {r['access_to_floor']:.2f}, hello / bare {r['hello']['rps'] / b['rps']:.2f}"
    )


def _redis_row(r: dict) -> str:
    hr = r["hello_redis"]
    return (
        f"hello-redis {hr['rps']:>7.0f} req/s  CPU {hr['cpu_us_per_request']:>5.0f} us "
        f"(redis-server {hr['redis_cpu_us_per_request']:>3.0f}) | hello-redis / hello "
        f"{hr['rps'] / r['hello']['rps']:.2f} | access {r['access_to_hello_redis']:.2f}, "
        f"embed {r['embed_to_hello_redis']:.2f}, amp {r['amp_to_hello_redis']:.2f} of hello-redis"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--concurrency", default="2,8,32,128")
    parser.add_argument("--choose-at", type=int, default=32, help="connections when comparing worker settings")
    parser.add_argument("--readers", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating hello/access runs per point (medians)")
    parser.add_argument(
        "--workers", default="", help="skip the comparison: one of " + ", ".join(w for w, _ in WORKER_SETTINGS)
    )
    parser.add_argument(
        "--redis", choices=("tcp", "unix"), default="tcp", help="how gunicorn reaches redis-server (default tcp)"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy a worker under access-check load")
    parser.add_argument(
        "--floor", action="store_true", help="also measure a bare WSGI hello in front of Flask (gunicorn's floor)"
    )
    parser.add_argument(
        "--hello-redis",
        action="store_true",
        help="also measure hello-world with one Redis round trip (the access check's own call)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk (make bench does this when run as root)")

    workdir = Path(tempfile.mkdtemp(prefix="meter-bench-"))
    if args.redis == "unix":
        redis_server = RedisProcess(str(workdir / "redis"), unix_socket=str(workdir / "redis.sock")).start()
    else:
        redis_server = RedisProcess(str(workdir / "redis")).start()
    try:
        env, key, prepared = prepare(workdir, redis_server.url, args.readers)
        requests = {name: requests_for(name, key, prepared) for name in ("hello", *TARGETS)}
        if args.floor:
            requests["bare"] = requests_for("bare", key, prepared)
        if args.hello_redis:
            requests["hello_redis"] = requests_for("hello_redis", key, prepared)
        scripts = {name: lua_script(reqs, workdir / f"{name}.lua") for name, reqs in requests.items()}
        results: dict = {
            "machine": machine(),
            "readers": len(prepared),
            "duration_s": args.duration,
            "rounds": args.rounds,
            "redis": redis_server.url.split(":")[0] + (" socket" if args.redis == "unix" else " loopback"),
        }
        settings = [w for w in WORKER_SETTINGS if not args.workers or w[0] == args.workers]
        comparison = []
        for label, gargs in settings:
            server, flask_server = serve(gargs, env, workdir)
            try:
                if not comparison:
                    results["reasons"] = {name: sample_reasons(server.port, requests[name]) for name in TARGETS}
                    print("answers of each load, one request per request of its script:", results["reasons"])
                targets = targets_of(server, flask_server, redis_server, scripts)
                row = {"workers": label, **pair(targets, args.choose_at, args.duration, args.rounds)}
            finally:
                server.stop()
                flask_server.stop()
            comparison.append(row)
            print(
                f"{label:<12} c={args.choose_at}: hello {row['hello']['rps']:>6.0f}/s  "
                f"access {row['access']['rps']:>6.0f}/s ({row['ratio']:.2f})  embed {row['embed']['rps']:>6.0f}/s "
                f"({row['ratio_embed']:.2f})  amp {row['amp']['rps']:>6.0f}/s ({row['ratio_amp']:.2f})  "
                f"(Flask view: {row['ratio_flask']:.2f})",
                flush=True,
            )
        best = max(comparison, key=lambda r: r["access"]["rps"])
        results["worker_comparison"] = comparison
        results["workers"] = best["workers"]
        gargs = dict(WORKER_SETTINGS)[best["workers"]]
        server, flask_server = serve(gargs, env, workdir)
        sweep = []
        try:
            targets = targets_of(server, flask_server, redis_server, scripts)
            for c in [int(x) for x in args.concurrency.split(",")]:
                sweep.append(pair(targets, c, args.duration, args.rounds))
        finally:
            server.stop()
            flask_server.stop()
        results["sweep"] = sweep
        out = Path(args.out)
        out.write_text(json.dumps(results, indent=2) + "\n")
        if args.profile:
            server = Gunicorn(gargs, env, workdir)
            try:
                results["profile"] = profile(
                    server, scripts["access"], args.choose_at, args.duration, workdir / "profile"
                )
            finally:
                server.stop()
            for frame, pct in results["profile"].items():
                print(f"{pct:6.1f}%  {frame}")
        print(f"\ngunicorn {best['workers']} (chosen: highest access-check throughput at c={args.choose_at})")
        print(
            f"{'conns':>5} | {'hello req/s':>11} {'p99':>6} | {'access':>7} {'p99':>6} {'ratio':>5} | "
            f"{'embed':>7} {'p99':>6} {'ratio':>5} | {'amp':>7} {'p99':>6} {'ratio':>5} | {'Flask view':>10} {'ratio':>5}"
        )
        for r in sweep:
            h, f = r["hello"], r["access_flask"]
            cells = " | ".join(
                f"{r[n]['rps']:>7.0f} {r[n]['p99_ms']:>6.1f} {r['ratio' + s]:>5.2f}"
                for n, s in (("access", ""), ("embed", "_embed"), ("amp", "_amp"))
            )
            print(
                f"{r['connections']:>5} | {h['rps']:>11.0f} {h['p99_ms']:>6.1f} | {cells} | "
                f"{f['rps']:>10.0f} {r['ratio_flask']:>5.2f}"
            )
        if args.floor:
            _print_rows(
                "the floor (--floor): a bare WSGI hello in front of Flask, the same gunicorn", sweep, _floor_row
            )
        if args.hello_redis:
            _print_rows("hello-world with one Redis round trip (--hello-redis), the same gunicorn", sweep, _redis_row)
        out = Path(args.out)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out}")
        try:
            plot(results, out.with_suffix(".png"))
            print(f"wrote {out.with_suffix('.png')}")
        except ImportError:
            print("matplotlib missing (pip install -r requirements-bench.txt): no plot")
    finally:
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
