"""Raw bytes in a query string are percent-encoded before anything reads it.

Why: HTTP allows only ASCII in a request target, and gunicorn answers anything else with its own
400 (nginx passes such bytes on to it). A WSGI server that hands them to the app (as latin-1
characters, PEP 3333) would make werkzeug's `request.args` raise UnicodeDecodeError in every view
that reads the query, and again in the error page that would explain it. Each such byte is escaped
here as a client should have sent it; werkzeug then reads it as any bad escape (left as it is) and
the request gets its usual answer. The cost for every other request is one `str.isascii()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment


class EscapeRawQueryBytes:
    def __init__(self, wsgi_app: WSGIApplication) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING", "")
        if not query.isascii():
            environ["QUERY_STRING"] = escaped(query)
        return self.wsgi_app(environ, start_response)


def escaped(query: str) -> str:
    """`query` with every byte above ASCII as %XX (a character beyond latin-1, which PEP 3333 forbids
    here, becomes "?" first)."""
    raw = query.encode("latin-1", errors="replace")
    return "".join(chr(b) if b < 0x80 else f"%{b:02X}" for b in raw)
