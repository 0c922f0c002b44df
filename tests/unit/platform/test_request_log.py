"""The request line's short cuts write what the general machinery would: the JSON template, the
request id counter and the buffered handler (meter.platform.logs; docs/benchmarks.md §1 says why)."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import re
import time
from datetime import UTC, datetime

import pytest

from meter.platform import logs

pytestmark = pytest.mark.database_agnostic


@pytest.fixture
def request_records():
    """The records log_request hands to meter.request's handlers."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    level = logs.request_log.level
    logs.request_log.addHandler(keep)
    logs.request_log.setLevel(logging.INFO)  # (setLevel also clears the loggers' cached isEnabledFor answers)
    yield seen
    logs.request_log.removeHandler(keep)
    logs.request_log.setLevel(level)


@pytest.mark.parametrize(
    ("method", "rule", "status", "site", "request_id"),
    [
        ("POST", "/v1/access", 200, "tempo", None),  # one made here
        ("GET", None, 404, None, "req-123.abc"),
        ("GET", "/<site_slug>/activate/<token>", 302, "x" * 65, "pembaca-42"),
        ("OPTIONS", "/embed/<site_slug>/access", 204, "tempo", "abcdefghijklmnopqrstu.vwxy.zabcdefghijklmnopq"),
        ("POST", "/openapi.json", 500, 'a"b\\c', "id:with:colons"),
        ("GET", "/healthz", 200, "situs-é", "a=b"),
    ],
)
def test_the_template_writes_the_line_the_json_formatter_writes(
    request_records, method, rule, status, site, request_id
):
    request_id = request_id or logs.request_id(None)
    logs.log_request(method, rule, status, site, request_id, time.perf_counter() - random.random())
    [record] = request_records
    assert type(record) is logs.RequestRecord
    fast = logs.JsonFormatter().format(record)
    general = logs.JsonFormatter().format(logging.makeLogRecord(vars(record)))  # a plain LogRecord: no template
    assert fast == general
    line = json.loads(fast)
    assert (line["method"], line["route"], line["status"]) == (method, rule, status)
    assert line["message"] == f"{method} {rule or '(no route)'} {status}"


def test_the_record_is_a_full_log_record(request_records):
    logs.log_request("POST", "/v1/access", 200, "tempo", "pembaca-42", time.perf_counter())
    [record] = request_records
    plain = logging.LogRecord("meter.request", logging.INFO, logs.__file__, 0, "%s %s %s", (), None)
    fields = set(vars(record)) - {"message", "asctime"}  # (set by a formatter that saw it first: pytest's)
    assert fields == set(vars(plain)) | {"request_id", "method", "route", "site", "status", "duration_ms"}
    assert (record.levelname, record.process, record.getMessage()) == ("INFO", os.getpid(), "POST /v1/access 200")
    assert abs(record.created - time.time()) < 5 and record.msecs == int((record.created % 1) * 1000)
    # relativeCreated counts from where logging's own records count it from
    assert abs((plain.relativeCreated - record.relativeCreated) - (plain.created - record.created) * 1000) < 0.01
    assert logging.Formatter("%(asctime)s %(name)s %(filename)s %(message)s").format(record)


def test_the_time_is_what_datetime_writes():
    rng = random.Random(7)
    moments = [rng.uniform(1.7e9, 1.9e9) for _ in range(20000)]
    moments += [int(m) + f for m in moments[:200] for f in (0.0, 0.0005, 0.9995, 0.9999995, 0.99999951)]
    for moment in moments:
        assert logs._iso_ms(moment) == datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def test_request_ids_are_16_hex_digits_unique_in_a_process_and_across_a_fork():
    made = [logs.request_id(None) for _ in range(50000)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", made_id) for made_id in made)
    assert len(set(made)) == len(made)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child (a gunicorn worker, say) makes its ids from a prefix of its own
        try:
            os.write(write, " ".join(logs.request_id(None) for _ in range(1000)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        theirs = pipe.read().split()
    os.waitpid(child, 0)
    ours = [logs.request_id(None) for _ in range(1000)]
    assert len(theirs) == 1000 and not set(theirs) & set(ours + made)
    assert {t[:10] for t in theirs} != {o[:10] for o in ours}
    assert logs.request_id("given-1") == "given-1" and logs.request_id("bad id") != "bad id"


def _buffered(stream) -> logs.BufferedStreamHandler:
    handler = logs.BufferedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("meter.test", level, __file__, 0, message, (), None)


def test_the_buffered_handler_writes_its_lines_within_its_delay_and_a_warning_at_once():
    stream = io.StringIO()
    handler = _buffered(stream)
    handler.handle(_record(logging.INFO, "one"))
    handler.handle(_record(logging.INFO, "two"))
    assert stream.getvalue() == ""  # waiting for the batch
    deadline = time.monotonic() + 5
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stream.getvalue() == "one\ntwo\n"  # written by the handler's thread, no further record needed
    handler.handle(_record(logging.INFO, "three"))
    handler.handle(_record(logging.WARNING, "trouble"))
    assert stream.getvalue() == "one\ntwo\nthree\ntrouble\n"  # in order, at once
    for n in range(handler.LINES):
        handler.handle(_record(logging.INFO, f"n{n}"))
    assert stream.getvalue().endswith(f"n{handler.LINES - 1}\n")  # a full batch goes at once


def test_pending_lines_are_written_before_a_fork_and_never_twice():
    read, write = os.pipe()
    stream = os.fdopen(write, "w")
    handler = _buffered(stream)
    handler.handle(_record(logging.INFO, "parent"))
    child = os.fork()
    if child == 0:
        try:
            handler.handle(_record(logging.INFO, "child"))
            handler.flush()
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    handler.flush()
    stream.close()
    with os.fdopen(read) as pipe:
        assert pipe.read() == "parent\nchild\n"


def test_configure_makes_the_plain_stream_handler_a_buffered_one():
    root = logging.getLogger()
    plain = logging.StreamHandler(io.StringIO())
    plain.setLevel(logging.INFO)
    root.addHandler(plain)
    try:
        logs.configure("json")
        [made] = [h for h in root.handlers if type(h) is logs.BufferedStreamHandler and h.stream is plain.stream]
        assert plain not in root.handlers and made.level == logging.INFO
        assert isinstance(made.formatter, logs.JsonFormatter)
        logs.configure("text")  # again (a reload): the same handler, the other format
        assert made in root.handlers and isinstance(made.formatter, logs.TextFormatter)
    finally:
        for handler in [h for h in root.handlers if getattr(h, "stream", None) is plain.stream]:
            root.removeHandler(handler)
