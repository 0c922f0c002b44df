"""Too large a body, sent whole before the answer is read, gets the 413 problem: not a reset connection.

Real gunicorn (tests/servers.py) and a raw socket client that writes its whole request first, as most
HTTP libraries do, then reads. Up to 16 MiB meter reads and discards the body, then answers; past
that it answers at once and the server closes the connection.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass

import pytest

from meter import create_app
from tests.conftest import _config_dict, empty_database, make_site
from tests.servers import Gunicorn, server_env

pytestmark = [
    pytest.mark.database_agnostic,
    pytest.mark.servers,
    pytest.mark.timeout(120),
    pytest.mark.xdist_group("body_limit"),
]
MIB = 1024 * 1024


@dataclass
class Served:
    port: int
    key: str


@pytest.fixture(scope="module")
def served(sqlite_dir, database_template, redis_url, tmp_path_factory):
    """One gunicorn for the module: these tests only send bodies, they change nothing it keeps."""
    with empty_database(sqlite_dir, database_template) as url:
        key = make_site(create_app({**_config_dict(), "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url}))
        log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
        gunicorn = Gunicorn(server_env(url, redis_url), workers=1, log=log).start()
        try:
            yield Served(gunicorn.port, key)
        finally:
            gunicorn.stop()


def exchange(port: int, head: str, body_size: int, chunked: bool = False, sent_before_reading: int | None = None):
    """Write the request (the whole body unless `sent_before_reading`), then read the answer to the end.
    Returns (status, headers, body, error): the error, if any, that the client met while writing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {body_size}"
    error = None
    try:
        sock.sendall(f"{head}{framing}\r\nConnection: close\r\n\r\n".encode())
        block, sent = b"x" * (256 * 1024), 0
        stop = body_size if sent_before_reading is None else sent_before_reading
        while sent < stop:
            piece = block[: stop - sent]
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            sent += len(piece)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except OSError as exc:  # what a client saw before the fix: the server closed while it was still sending
        error = exc
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError as exc:
        error = error or exc
    sock.close()
    head_bytes, _, body = answer.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else None
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return status, headers, body, error


def api_head(path: str, key: str) -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n"
    )


def assert_problem_413(status, headers, body, error):
    assert error is None, f"the client met {error!r} instead of the 413"
    assert status == 413, (status, body[:200])
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["type"].endswith("/problems/payload-too-large")


@pytest.mark.parametrize("path", ["/v1/access", "/v1/readers"])  # the hot entry, and a Flask view
def test_a_10_mb_body_written_whole_gets_the_413_problem(served, path):
    assert_problem_413(*exchange(served.port, api_head(path, served.key), 10 * MIB))


def test_a_10_mb_chunked_body_gets_the_413_problem_too(served):
    assert_problem_413(*exchange(served.port, api_head("/v1/access", served.key), 10 * MIB, chunked=True))


def test_the_embed_gets_its_413_with_the_cors_headers(served):
    head = (
        "POST /embed/tempo/access HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://tempo.co\r\n"
        "Content-Type: text/plain\r\n"
    )
    status, headers, body, error = exchange(served.port, head, 10 * MIB)
    assert_problem_413(status, headers, body, error)
    assert headers["Access-Control-Allow-Origin"] == "https://tempo.co"


def test_past_16_mib_the_answer_comes_at_once_and_the_connection_closes(served):
    """A 1 GiB body is not read: the 413 is sent before the client has sent 1 MiB of it."""
    started = time.monotonic()
    status, _headers, body, _error = exchange(
        served.port, api_head("/v1/access", served.key), 1024 * MIB, sent_before_reading=MIB
    )
    assert status == 413 and json.loads(body)["status"] == 413
    assert time.monotonic() - started < 10


def test_a_small_body_is_still_answered(served):
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    payload = json.dumps({"article": {"id": "tempo:1", "class": "free"}}).encode()
    sock.sendall(
        api_head("/v1/access", served.key).encode() + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload
    )
    assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    sock.close()
