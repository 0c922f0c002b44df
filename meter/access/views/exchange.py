"""What an access request brings and what it gets back, independent of who serves it (Flask or the hot entry).

`Incoming` holds the request's inputs, already read; `Answer` is the status, the answer's own
headers and the bytes. The common headers (security, X-Request-ID) and the log line are added by
`meter.platform.http` whichever entry point serves it.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote_to_bytes

from pydantic_core import PydanticSerializationError, to_json
from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import parse_cookie

from meter.platform.problems import PROBLEM_MIMETYPE, Problem, problem_body

if TYPE_CHECKING:
    from wsgiref.types import WSGIEnvironment

JSON = "application/json"


def _requote(error: UnicodeError) -> tuple[str, int]:
    """A codec error handler: bytes that are not UTF-8 stay percent-encoded (upper case), as
    werkzeug's request.args leaves them, instead of failing or turning into U+FFFD."""
    if not isinstance(error, UnicodeDecodeError):  # only for decoding
        raise error
    return quote(error.object[error.start : error.end], safe=""), error.end


_REQUOTE = "meter.requote"
codecs.register_error(_REQUOTE, _requote)


class Incoming:
    """A request's inputs, read from its WSGI environ in the same way whoever serves it.

    The method, the headers (a view of the environ), the scheme and the client's address cost
    nothing to read; the query and the cookies are parsed the first time a handler asks (the API
    reads neither, the embed and AMP read them), because this runs on every article view. Both are
    plain dicts in which a name's first value wins, as werkzeug's `request.args.get` and
    `request.cookies.get` answer (whose MultiDict raises and catches an HTTP exception for every
    name that is absent, and the embed asks for absent ones on every call).
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
        if self._query is None:  # as werkzeug's request.args: blank values kept, bad escapes left as they are
            raw = self.environ.get("QUERY_STRING", "")
            if raw.isascii():  # always, behind EscapeRawQueryBytes (meter.platform.query_bytes)
                self._query = _ascii_query(raw)
            else:
                self._query = _first_wins(
                    parse_qsl(raw.encode("latin-1").decode(), keep_blank_values=True, errors=_REQUOTE)
                )
        return self._query

    @property
    def cookies(self) -> Mapping[str, str]:
        if self._cookies is None:  # the one Cookie header WSGI gives, parsed as werkzeug's request.cookies does
            self._cookies = parse_cookie(self.environ.get("HTTP_COOKIE", ""), cls=_first_wins)
        return self._cookies


def _ascii_query(query: str) -> dict[str, str]:
    """`_first_wins(parse_qsl(query, keep_blank_values=True, errors=_REQUOTE))` for an ASCII query, in a
    third of the time (AMP's four parameters cost 10 µs there, on every check).

    The same steps, without what an ASCII text never needs: pairs split on "&" (empty ones skipped),
    a pair without "=" has the value "", "+" is a space, and a part with an escape is decoded as
    `unquote` decodes an ASCII text (its bytes as UTF-8 in one piece, a byte that is not UTF-8
    re-quoted by `_REQUOTE`). `tests/unit/access/test_exchange.py` holds the two to the same values.
    """
    found: dict[str, str] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "+" in name:
            name = name.replace("+", " ")
        if "%" in name:
            name = unquote_to_bytes(name).decode("utf-8", _REQUOTE)
        if name in found:
            continue
        if "+" in value:
            value = value.replace("+", " ")
        if "%" in value:
            value = unquote_to_bytes(value).decode("utf-8", _REQUOTE)
        found[name] = value
    return found


def _first_wins(pairs=()) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in pairs:
        found.setdefault(name, value)
    return found


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


_compact = json.JSONEncoder(separators=(",", ":")).encode  # made once: json.dumps makes an encoder per call


def json_bytes(payload: dict[str, Any]) -> bytes:
    """`json.dumps(payload, separators=(",", ":"))` as bytes, the same bytes, in a third of the time.

    Why: every access answer is encoded, and the json module's encoder costs 4-9 µs per answer where
    pydantic-core's `to_json` (already here with pydantic) costs 1-2. The two agree byte for byte on
    what the answers hold (strings, integers, booleans, null, lists and objects: no floats, which
    they would write differently), except that `to_json` writes DEL and every character beyond ASCII
    as it is where the json module escapes it (`\\u00a0`): such an answer (a wall with a date in
    it), and one `to_json` cannot write (a lone surrogate), is encoded by the json module, as before.
    `tests/unit/access/test_exchange.py` holds the two to the same bytes.
    """
    try:
        body = to_json(payload)
    except PydanticSerializationError:
        return _compact(payload).encode()
    if body.isascii() and b"\x7f" not in body:
        return body
    return _compact(payload).encode()


def json_answer(payload: dict[str, Any], status: int = 200, headers: list[tuple[str, str]] | None = None) -> Answer:
    return Answer(status, json_bytes(payload) + b"\n", JSON, list(headers or ()))


def problem_answer(problem: Problem, headers: list[tuple[str, str]] | None = None) -> Answer:
    body = problem_body(problem.status, problem.name, problem.title, problem.detail, problem.errors)
    return Answer(problem.status, body, PROBLEM_MIMETYPE, [*problem.headers.items(), *(headers or ())])


TOO_LARGE = Problem(413, "payload-too-large", "Request Entity Too Large", "The body is larger than MAX_CONTENT_LENGTH.")
