"""meter's metrics in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, as under gunicorn): each process
writes its own file, a forked worker included, though the process id is kept rather than asked
for at every observation (meter/platform/metrics.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.paths import ROOT_DIR

pytestmark = pytest.mark.database_agnostic

SCRIPT = textwrap.dedent(
    """
    import os
    from prometheus_client import CollectorRegistry, multiprocess
    from meter.platform import metrics

    metrics.observe_request("/v1/access", "POST", 200, 0.001)  # the parent, before the fork (as gunicorn's master)
    child = os.fork()
    if child == 0:
        metrics.observe_request("/v1/access", "POST", 200, 0.001)
        metrics.observe_request("/v1/access", "POST", 200, 0.001)
        os._exit(0)
    os.waitpid(child, 0)
    metrics.observe_request("/v1/access", "POST", 200, 0.001)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    count = registry.get_sample_value(
        "meter_http_requests_total", {"route": "/v1/access", "method": "POST", "status": "2xx"}
    )
    files = sorted(os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
    print(int(count), child, os.getpid(), " ".join(files))
    """
)


def test_a_forked_process_counts_in_its_own_files(tmp_path):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    count, child, parent, *files = done.stdout.split()
    assert int(count) == 4  # two in the parent, two in the child: none lost to a shared file
    assert f"counter_{child}.db" in files and f"counter_{parent}.db" in files
    assert f"histogram_{child}.db" in files and f"histogram_{parent}.db" in files
