"""The routes the access check is compared against (bench only, never in meter's own app).

`GET /bench/hello`: a hello-world JSON view of the Flask app (the goal's yardstick). `GET /bench/bare`
(bench.run --floor): the same JSON from a bare WSGI callable in front of Flask, i.e. what gunicorn
itself costs per request, the floor under both. `GET /bench/hello-redis` (bench.run --hello-redis):
hello-world that also makes one Redis round trip, through the very call the access check makes
(`run_script` of a one-line script), to show what the round trip alone costs beside hello-world.
"""

from __future__ import annotations

from importlib import resources

from flask import Flask

from meter.platform.redis_conn import conn, register_script

register_script("bench_hello", resources.files("bench").joinpath("hello.lua"))  # before the app is made

BARE_BODY = b'{"hello":"world"}\n'


def with_hello(app: Flask) -> Flask:
    @app.get("/bench/hello")
    def hello() -> dict:
        """The yardstick: Flask, routing and JSON, and nothing of meter's."""
        return {"hello": "world"}

    @app.get("/bench/hello-redis")
    def hello_redis() -> dict:
        """The yardstick plus the one round trip every access answer makes, and nothing else of meter's."""
        return {"hello": conn().run_script("bench_hello", ["{bench}:hello"], [])}

    flask_wsgi = app.wsgi_app

    def bare(environ, start_response):
        if environ.get("PATH_INFO") != "/bench/bare":
            return flask_wsgi(environ, start_response)
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BARE_BODY)))])
        return [BARE_BODY]

    app.wsgi_app = bare  # type: ignore[method-assign]
    return app
