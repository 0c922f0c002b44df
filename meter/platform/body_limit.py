"""A body over MAX_CONTENT_LENGTH gets its 413 problem, readably: read and discarded first, up to a bound.

Why: meter refuses a body that is too large without reading it (werkzeug's check of Content-Length,
and `routes.incoming_of` for the hot entry). But a server that answers and closes while the client is
still sending makes the client's kernel see a reset, and a client that writes its whole body before
reading (most HTTP libraries do) gets a broken connection instead of the 413 that says what went
wrong. So this WSGI layer, in front of everything (the hot entry included), reads and discards such a
body before the app answers, up to DRAIN_LIMIT bytes and DRAIN_SECONDS; past either the app answers at
once and the server closes the connection: reading more would only let a client hold a worker.

A body of unknown length (chunked) is read up to one byte past the limit, which is what the app then
sees: enough for its own check to refuse it, the same way.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

DRAIN_LIMIT = 16 * 1024 * 1024  # bytes read and thrown away at most, to answer a too-large body readably
DRAIN_SECONDS = 10.0  # and for at most this long: a client trickling its body gets the close instead
CHUNK = 64 * 1024


class DrainOversized:
    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        limit = self.app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None:
            length = _content_length(environ)
            if length is not None and length > limit:
                if length <= DRAIN_LIMIT:
                    _discard(environ["wsgi.input"], length)
                environ["wsgi.input"] = io.BytesIO()  # the app refuses by Content-Length; it reads nothing
            elif length is None and environ.get("wsgi.input_terminated") and _chunked(environ):
                environ["wsgi.input"] = _bounded(environ["wsgi.input"], limit)
        return self.wsgi_app(environ, start_response)


def _chunked(environ: WSGIEnvironment) -> bool:
    """A body of unknown length: HTTP/1.1 frames a request's body by Content-Length or chunked, so a
    request with neither (every GET) has none, and nothing is read or wrapped for it."""
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def _content_length(environ: WSGIEnvironment) -> int | None:
    value = environ.get("CONTENT_LENGTH")
    if not value:
        return None
    try:
        length = int(value)
    except ValueError:
        return None  # the server refuses such a request before the app sees it
    return length if length >= 0 else None


def _discard(stream, size: int) -> int:
    """Read and drop up to `size` bytes of `stream` within DRAIN_SECONDS; how many were read."""
    deadline = time.monotonic() + DRAIN_SECONDS
    read = 0
    while read < size and time.monotonic() < deadline:
        try:
            data = stream.read(min(CHUNK, size - read))
        except (OSError, ValueError):  # the client went away, or the server refused the framing
            break
        if not data:
            break
        read += len(data)
    return read


def _bounded(stream, limit: int) -> io.BytesIO:
    """A chunked body: up to limit + 1 bytes kept for the app; the rest of a larger one discarded."""
    kept = io.BytesIO()
    deadline = time.monotonic() + DRAIN_SECONDS
    while kept.tell() <= limit and time.monotonic() < deadline:
        try:
            data = stream.read(min(CHUNK, limit + 1 - kept.tell()))
        except (OSError, ValueError):
            break
        if not data:
            break
        kept.write(data)
    if kept.tell() > limit:
        _discard(stream, DRAIN_LIMIT - kept.tell())
    kept.seek(0)
    return kept
