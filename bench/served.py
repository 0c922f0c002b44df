"""CPU per request of gunicorn's own Python work and the app's, in one process: each request's bytes
through gunicorn's parser, the app, and gunicorn's response writer, as its sync worker serves them.

Why: `bench.floor` measures what the goal says (processes and redis-server, from /proc, under wrk),
and on a shared machine its runs move by ±20 % with the others' load. This says where the CPU of
one exchange goes, without the kernel's sockets and without other processes in the figure:

- `floor`: the floor (bench/floor_app.py) with its `GET /`;
- `shaped <route>`: the floor (`floor_app.shaped`) sent that route's own requests (headers, cookies,
  bodies) and answering with as many headers as meter's answers: what the exchange's shape costs
  gunicorn and Flask whoever answers it;
- `<route>`: meter (bench.wsgi:app, as `bench.floor` serves it) sent the same requests.

The socket is a stand-in that hands over the request's bytes and keeps the answer's: what gunicorn
does in Python is all here, the system calls of a real socket are not (the same count for every
exchange). `--replay` answers every script call without Redis (the floor's with its one-line
script's answer, meter's with the first reply to the same call, as `bench.inprocess --replay`):
each side's own Python work, the round trip aside. redis-server's CPU is never in these figures;
`bench.floor` prints its share.

    .venv/bin/python -m bench.served [--calls 1500] [--rounds 7] [--replay]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

LOADS = {"api": "access", "embed": "embed", "amp": "amp"}
CONFIG = ("SECRET_KEY", "REDIS_URL", "PUBLIC_BASE_URL", "MAIL_DEFAULT_SENDER")  # from bench.load's environment


class CollectingSocket:
    """What gunicorn's sync worker reads a request from and writes its answer to, minus the kernel."""

    def __init__(self, request: bytes) -> None:
        self._request = request
        self.sent = bytearray()

    def recv(self, size: int) -> bytes:
        chunk, self._request = self._request[:size], self._request[size:]
        return chunk

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 8000)

    def shutdown(self, _how: int) -> None:
        pass

    def settimeout(self, _timeout: float | None) -> None:
        pass

    def close(self) -> None:
        pass


def raw_request(method: str, path: str, headers: dict, body: str | None) -> bytes:
    """The bytes wrk sends for one of bench.load's requests (wrk.format: Host, the headers, Content-Length)."""
    data = body.encode() if body else b""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1:8000", *(f"{k}: {v}" for k, v in headers.items())]
    if data:
        lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class SyncServing:
    """gunicorn's sync worker's `handle` and `handle_request` for one request, on a collecting socket."""

    def __init__(self, app) -> None:
        from gunicorn import http
        from gunicorn.config import Config
        from gunicorn.glogging import Logger
        from gunicorn.http import wsgi

        self.app, self.http, self.wsgi = app, http, wsgi
        self.cfg = Config()
        self.log = Logger(self.cfg)

    def __call__(self, request: bytes) -> bytes:
        client = CollectingSocket(request)
        addr = ("127.0.0.1", 40000)
        req = next(self.http.get_parser(self.cfg, client, addr))
        resp, environ = self.wsgi.create(req, client, addr, client.getsockname(), self.cfg)
        resp.force_close()
        respiter = self.app(environ, resp.start_response)
        try:
            for item in respiter:
                resp.write(item)
            resp.close()
        finally:
            if hasattr(respiter, "close"):
                respiter.close()
        return bytes(client.sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--readers", type=int, default=32)
    parser.add_argument("--replay", action="store_true", help="no round trip: each side's own Python work")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="meter-served-") as tmp:
        # meter as bench.floor serves it: multiprocess metrics (chosen when prometheus-client is first
        # imported, so before anything of meter's), the JSON line at INFO into a file.
        metrics_dir = Path(tmp) / "metrics"
        metrics_dir.mkdir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        from bench.hello import with_hello
        from bench.inprocess import replay_script_replies
        from bench.load import prepare, requests_for
        from meter import create_app
        from meter.dev.redis_server import RedisProcess

        redis = RedisProcess(str(Path(tmp) / "redis"))
        redis.start()
        try:
            env, key, prepared = prepare(Path(tmp), redis.url, args.readers)
            os.environ["REDIS_URL"] = redis.url  # the floor's
            if args.replay:
                replay_script_replies()
            import bench.floor_app as floor_app

            if args.replay:
                floor_app._script = lambda keys: "world"  # type: ignore[assignment]  (its one reply)
            meter_app = with_hello(
                create_app(
                    {name: env[name] for name in CONFIG}
                    | {"SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"], "SITE_CACHE_TTL": 60.0}
                )
            )
            root = logging.getLogger()
            root.setLevel("INFO")
            log_file = open(Path(tmp) / "requests.log", "w")  # noqa: SIM115 (the directory goes at the end)
            for handler in root.handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(log_file)

            floor, shaped, meter = SyncServing(floor_app.app), SyncServing(floor_app.shaped), SyncServing(meter_app)
            variants: dict[str, tuple[SyncServing, list[bytes]]] = {
                "floor": (floor, [raw_request("GET", "/", {}, None)])
            }
            for label, load in LOADS.items():
                raw = [raw_request(*r) for r in requests_for(load, key, prepared)]
                variants[f"shaped {label}"] = (shaped, raw)
                variants[label] = (meter, raw)
            variants["healthz"] = (meter, [raw_request("GET", "/healthz", {}, None)])

            def run(name: str) -> float:
                serve, raws = variants[name]
                batch = [raws[i % len(raws)] for i in range(args.calls)]
                started = time.process_time()
                for raw in batch:
                    answer = serve(raw)
                    if not answer.startswith(b"HTTP/1.1 200"):
                        raise SystemExit(f"{name}: {answer[:200]!r}")
                return (time.process_time() - started) / args.calls * 1e6

            for name in variants:
                run(name)  # warm: imports, connections, scripts, caches
            samples: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name in variants:
                    samples[name].append(run(name))
            floor_us = statistics.median(samples["floor"])
            what = "replayed script replies (no round trip)" if args.replay else "with the Redis round trip"
            print(f"gunicorn's Python and the app's per request, in-process, {what}; median (min) of {args.rounds}")
            for name, values in samples.items():
                us = statistics.median(values)
                print(f"  {name:14} {us:7.1f} µs ({min(values):6.1f})   {us - floor_us:+7.1f} over the floor")
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
