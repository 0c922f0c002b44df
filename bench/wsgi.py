"""The app as gunicorn serves it in production, plus the bench's hello-world routes (bench/hello.py).

Bench-only (gunicorn bench.wsgi:app): the routes never exist in meter's own `wsgi:app`.
"""

from __future__ import annotations

from bench.hello import with_hello
from meter import create_app

app = with_hello(create_app())
