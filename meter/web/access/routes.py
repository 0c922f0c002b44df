"""The access routes, their handlers, and the one step both entry points take to answer them.

Flask serves them through the views of this package's blueprint; the hot WSGI entry (`hot`) matches
the same table and calls the same `serve`. Whatever serves it, a request is read into an `Incoming`
by `incoming_of` and its `Answer` (refusals included) comes from `serve`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

from meter.web.access import amp, api, embed
from meter.web.access.exchange import Answer, Incoming, problem_answer
from meter.web.problems import Problem


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


def incoming_of(request: Request) -> Incoming:
    """A request's inputs, read the same way for Flask's request and the hot entry's werkzeug Request."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    body: bytes | None
    if limit is not None and length is not None and length > limit:
        body = None
    else:
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            body = None
        if body is not None and limit is not None and len(body) > limit:
            body = None  # a body of unknown length (chunked) that turned out too large: the hot entry's
            # werkzeug Request has no limit of its own, so the length read is checked here
    return Incoming(
        request.method,
        request.args,
        request.headers,
        request.cookies,
        body,
        request.scheme == "https",
        request.remote_addr or "",
    )


def serve(route: Route, incoming: Incoming, params: dict[str, str]) -> Answer:
    """The route's answer; a refusal raised as a Problem becomes its problem document."""
    try:
        return route.handler(incoming, **params)
    except Problem as problem:
        answer = problem_answer(problem)
        answer.site_slug = params.get("site_slug")
        return answer
