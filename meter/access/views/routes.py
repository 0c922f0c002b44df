"""The access routes, their handlers, and the one step both entry points take to answer them.

Flask serves them through the views of this package's blueprint; the hot WSGI entry (`hot`) matches
the same table and calls the same `serve`. Whatever serves it, a request is read into an `Incoming`
by `incoming_of` and its `Answer` (refusals included) comes from `serve`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.wsgi import get_content_length, get_input_stream

from meter.access.views import amp, api, embed
from meter.access.views.exchange import Answer, Incoming, problem_answer
from meter.platform.problems import Problem

if TYPE_CHECKING:
    from wsgiref.types import WSGIEnvironment


@dataclass(frozen=True)
class Route:
    endpoint: str
    rule: str  # Flask's rule, also what the log line names
    methods: tuple[str, ...]
    handler: Callable[..., Answer]
    pattern: re.Pattern[str]  # the same path, for the hot entry


def _route(endpoint: str, rule: str, methods: tuple[str, ...], handler: Callable[..., Answer]) -> Route:
    pattern = re.compile("^" + re.sub(r"<site_slug>", r"(?P<site_slug>[^/]+)", rule) + "$")
    return Route(endpoint, rule, methods, handler, pattern)


ROUTES = (
    _route("api", "/v1/access", ("POST",), api.access),
    _route("embed", "/embed/<site_slug>/access", ("POST", "OPTIONS"), embed.access),
    _route("amp_authorization", "/amp/<site_slug>/authorization", ("GET", "OPTIONS"), amp.authorization),
    _route("amp_pingback", "/amp/<site_slug>/pingback", ("POST", "OPTIONS"), amp.pingback),
)


def incoming_of(environ: WSGIEnvironment, limit: int | None) -> Incoming:
    """A request's inputs, read the same way for Flask's views (`request.environ`) and the hot entry;
    `limit` is the app's MAX_CONTENT_LENGTH (the caller has the app at hand: no context lookup)."""
    return Incoming(environ, read_body(environ, limit))


def read_body(environ: WSGIEnvironment, limit: int | None) -> bytes | None:
    """The body, or None when it is larger than `limit` (refused by Content-Length without reading it;
    a body of unknown length, chunked, is read and then found too large)."""
    length = get_content_length(environ)
    if limit is not None and length is not None and length > limit:
        return None
    if length is not None:  # the usual case, read as it is: werkzeug's stream would read it in a loop
        try:
            body = environ["wsgi.input"].read(length) if length else b""
        except OSError:
            body = b""
        if len(body) < length:  # cut short, or the client went away: 400, as werkzeug's stream says it
            raise ClientDisconnected()
        return body
    try:  # one byte past the limit is read: werkzeug's stream stops at its bound without saying so
        body = get_input_stream(environ, max_content_length=None if limit is None else limit + 1).read()
    except RequestEntityTooLarge:
        return None
    return None if limit is not None and len(body) > limit else body


def serve(route: Route, incoming: Incoming, params: dict[str, str]) -> Answer:
    """The route's answer; a refusal raised as a Problem becomes its problem document."""
    try:
        return route.handler(incoming, **params)
    except Problem as problem:
        answer = problem_answer(problem)
        answer.site_slug = params.get("site_slug")
        return answer
