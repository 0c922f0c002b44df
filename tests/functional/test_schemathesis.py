"""schemathesis fuzzes a live meter against its own /openapi.json: no 500s, and every answer's status,
content type and body as described. Stateless checks on every operation, bounded in examples and time.

The server is the test app (real Redis, SMTP server and database of the suite) behind werkzeug's
threaded WSGI server on a free loopback port, with one site, its API key and a verified reader's token.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from meter.dev.redis_server import free_port

pytestmark = [pytest.mark.fuzz]

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"


@pytest.fixture
def live_server(app, api, verified_reader):
    _, reader_token = verified_reader()
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", api.key, reader_token, app
    server.shutdown()
    thread.join(5)


@pytest.mark.fuzz
@pytest.mark.timeout(180)
def test_schemathesis_finds_no_failure_on_any_operation(live_server, tmp_path):
    base, key, reader_token, _app = live_server
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base}/openapi.json",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {key}",
        "--header",
        f"X-Reader-Token: {reader_token}",  # so that GET /v1/readers/me answers 200 too, and is checked
        # The embed's browser endpoints are left out: they answer only a request whose Origin is one of
        # the site's origins, for the reader of meter's cookies (no API key, no header schemathesis could
        # be given for every site it invents), so fuzzing would only ever see the 403/404 refusals, at the
        # cost of two more operations each. tests/functional/test_embed.py checks their answers against the
        # description instead (conftest fails a test on any violation). GET /embed/meter.js stays in.
        "--exclude-path-regex",
        r"^/embed/\{site_slug\}/",
        "--max-examples",
        os.environ.get("METER_FUZZ_EXAMPLES", "15"),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--seed",
        "4",
        "--workers",
        "1",  # hypothesis describes filters with ast, which is not thread-safe on Python 3.11
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "10",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=170, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output or "passed" in output, output[-3000:]
    print(output[-1200:])  # the summary, for pytest -rP
