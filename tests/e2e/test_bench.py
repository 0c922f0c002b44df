"""The benchmarks still run: each at a tiny size, so that a change of what they drive (the check's
script arguments, the app's routes) breaks a test instead of the next `make bench`.

What they print is looked at (the rows are there, with numbers), never what the numbers are: the
figures mean something only on a quiet machine, and are docs/benchmarks.md's business.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.paths import ROOT_DIR

pytestmark = [pytest.mark.database_agnostic, pytest.mark.servers, pytest.mark.timeout(300)]

ROOT = ROOT_DIR
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=280, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_memory_bench_writes_the_compact_layout_with_the_checks_own_arguments(tmp_path):
    out = bench("bench.memory", "--readers", "300", "--json", str(tmp_path / "memory.json"))
    for layout in ("naive", "foundation", "compact, 4096 buckets", "+ cached state", "3 meters"):
        assert re.search(rf"{re.escape(layout)}.* {NUMBER} B/reader", out), out
    rows = json.loads((tmp_path / "memory.json").read_text())["rows"]
    assert len(rows) == 8
    assert all(row["bytes_per_reader"] > 0 for row in rows), rows
    assert rows[-1]["meters"] == 3 and rows[-1]["bytes_per_reader_meter"] > 0, rows[-1]


def test_inprocess_bench_runs_every_variant():
    out = bench("bench.inprocess", "--calls", "20", "--rounds", "1", "--readers", "2")
    for variant in ("hello", "hello_redis", "access-plain", "access", "embed", "amp", "access (Flask)"):
        assert re.search(rf"^  {re.escape(variant)} +{NUMBER} us", out, re.MULTILINE), out


def test_floor_bench_prints_each_route_against_the_floor_and_where_the_cpu_went():
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk; `make test` does it as root)")
    out = bench("bench.floor", "--quick", "--shaped")
    for route in ("api", "embed", "amp", "healthz"):
        assert re.search(rf"^{route} +\| +{NUMBER} \| +{NUMBER} \| +{NUMBER} \| ", out, re.MULTILINE), out
        # gunicorn, redis-server and the script, for the floor and for the route
        assert re.search(rf"^{route} +(\| +{NUMBER} *){{6}}$", out, re.MULTILINE), out
    for route in ("api", "embed", "amp"):  # the shaped floor: floor, shaped, their difference, redis's, best
        assert re.search(
            rf"^{route} +\| +{NUMBER} \| +{NUMBER} \| +[+-]{NUMBER} \| +[+-]{NUMBER} \| {NUMBER}$", out, re.M
        ), out


def test_served_bench_runs_every_exchange():
    out = bench("bench.served", "--calls", "20", "--rounds", "1", "--readers", "2", "--replay")
    for variant in ("floor", "shaped api", "api", "shaped embed", "embed", "shaped amp", "amp", "healthz"):
        assert re.search(rf"^  {re.escape(variant)} +{NUMBER} µs", out, re.MULTILINE), out
