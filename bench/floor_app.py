"""The floor: a bare Flask hello-world that makes the one Redis script call every access answer makes.

Not a route of meter's app (meter's own per-request hooks are part of what `bench.floor` measures):
one route, Flask's routing and JSON, and one `EVALSHA` of a one-line Lua script through redis-py
with hiredis, as a developer would write it. Served by gunicorn like meter, against the same
redis-server (REDIS_URL).

    gunicorn bench.floor_app:app

`shaped` (a diagnostic of `bench.floor --shaped`, never the yardstick): the same floor, answering any
method and path, so that it can be sent each access route's own requests (their headers, cookies and
bodies, which gunicorn reads and parses whoever answers), and answering with as many headers as
meter's JSON answers carry (the security headers and X-Request-ID, which gunicorn checks one by one).
What it costs above the floor is what the shape of a route's exchange costs, meter's work aside.
"""

from __future__ import annotations

import os

import redis
from flask import Flask

app = Flask(__name__)
_client = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
_script = _client.register_script('return "world"')  # EVALSHA; loaded on the first NOSCRIPT


@app.get("/")
def floor() -> dict:
    return {"hello": _script(keys=["{bench}:floor"])}


shaped = Flask(__name__ + ".shaped")
# The headers meter's JSON answers carry besides Content-Type and Content-Length (meter.platform.http).
MORE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Request-ID": "0123456789abcdef",
}


@shaped.route("/", defaults={"path": ""}, methods=["GET", "POST"])
@shaped.route("/<path:path>", methods=["GET", "POST"])
def floor_shaped(path: str) -> tuple[dict, dict]:
    return {"hello": _script(keys=["{bench}:floor"])}, MORE_HEADERS
