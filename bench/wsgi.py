"""The app as gunicorn serves it in production, plus one hello-world JSON route to compare against.

Bench-only (gunicorn bench.wsgi:app): the route never exists in meter's own `wsgi:app`.
"""

from __future__ import annotations

from bench.hello import with_hello
from meter import create_app

app = with_hello(create_app())
