"""The app as gunicorn serves it in production, plus one hello-world JSON route to compare against.

Bench-only (gunicorn bench.wsgi:app): the route never exists in meter's own `wsgi:app`.
"""

from __future__ import annotations

from meter import create_app

app = create_app()


@app.get("/bench/hello")
def hello() -> dict:
    """The floor: Flask, routing and JSON, and nothing of meter's."""
    return {"hello": "world"}
