"""The hello-world JSON route the access check is compared against (bench only, never in meter's app)."""

from __future__ import annotations

from flask import Flask


def with_hello(app: Flask) -> Flask:
    @app.get("/bench/hello")
    def hello() -> dict:
        """The floor: Flask, routing and JSON, and nothing of meter's."""
        return {"hello": "world"}

    return app
