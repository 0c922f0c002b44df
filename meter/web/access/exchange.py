"""What an access request brings and what it gets back, independent of who serves it (Flask or the hot entry).

`Incoming` holds the request's inputs, already read; `Answer` is the status, the answer's own
headers and the bytes. The common headers (security, X-Request-ID) and the log line are added by
`meter.web.http` whichever entry point serves it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import parse_cookie
from werkzeug.wrappers import Request

from meter.web.problems import PROBLEM_MIMETYPE, Problem, problem_body

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

JSON = "application/json"


class Incoming:
    """A request's inputs, read from its WSGI environ in the same way whoever serves it.

    The method, the headers (a view of the environ), the scheme and the client's address cost
    nothing to read; the query and the cookies are parsed the first time a handler asks (the API
    reads neither, the embed and AMP read them), because this runs on every article view.
    """

    __slots__ = ("_cookies", "_query", "body", "environ", "headers", "method", "remote_addr", "secure")

    def __init__(self, environ: WSGIEnvironment, body: bytes | None) -> None:
        self.environ = environ
        self.method: str = environ.get("REQUEST_METHOD", "")
        self.headers: Mapping[str, str] = EnvironHeaders(environ)
        self.body = body  # None: larger than MAX_CONTENT_LENGTH (not read)
        self.secure: bool = environ.get("wsgi.url_scheme") == "https"  # ProxyFix has set it when trusted
        self.remote_addr: str = environ.get("REMOTE_ADDR") or ""
        self._query: Mapping[str, str] | None = None
        self._cookies: Mapping[str, str] | None = None

    @property
    def query(self) -> Mapping[str, str]:
        if self._query is None:
            self._query = Request(self.environ).args
        return self._query

    @property
    def cookies(self) -> Mapping[str, str]:
        if self._cookies is None:  # the one Cookie header WSGI gives, parsed as werkzeug's request.cookies does
            self._cookies = parse_cookie(self.environ.get("HTTP_COOKIE", ""))
        return self._cookies


@dataclass
class Answer:
    status: int
    body: bytes = b""
    mimetype: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    site_slug: str | None = None  # for the log line

    def header_list(self) -> list[tuple[str, str]]:
        """The answer's own headers, Content-Type and Content-Length first."""
        own: list[tuple[str, str]] = []
        if self.mimetype:
            own.append(("Content-Type", self.mimetype))
        if self.status != 204:  # RFC 9110: no Content-Length on a 204
            own.append(("Content-Length", str(len(self.body))))
        return own + self.headers


def json_answer(payload: dict[str, Any], status: int = 200, headers: list[tuple[str, str]] | None = None) -> Answer:
    return Answer(status, json.dumps(payload, separators=(",", ":")).encode() + b"\n", JSON, list(headers or ()))


def problem_answer(problem: Problem, headers: list[tuple[str, str]] | None = None) -> Answer:
    body = problem_body(problem.status, problem.name, problem.title, problem.detail, problem.errors)
    return Answer(problem.status, body, PROBLEM_MIMETYPE, [*problem.headers.items(), *(headers or ())])


TOO_LARGE = Problem(413, "payload-too-large", "Request Entity Too Large", "The body is larger than MAX_CONTENT_LENGTH.")
