"""The floor: a bare Flask hello-world that makes the one Redis script call every access answer makes.

Not a route of meter's app (meter's own per-request hooks are part of what `bench.floor` measures):
one route, Flask's routing and JSON, and one `EVALSHA` of a one-line Lua script through redis-py
with hiredis, as a developer would write it. Served by gunicorn like meter, against the same
redis-server (REDIS_URL).

    gunicorn bench.floor_app:app
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
