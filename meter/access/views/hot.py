"""The hot entry: the access routes answered in front of Flask, without its per-request machinery.

Why: the access check runs on every article view a publisher serves, and for these routes Flask's
request context, routing, sessions and app-wide hooks cost about as much as meter's own work
(docs/benchmarks.md). This WSGI layer matches the access routes (`routes.ROUTES`) and answers them
with the same handlers as the Flask views, inside an app context, finished by `meter.platform.http`
like every other answer: the common headers and the log line are not written here.

Everything else goes on to Flask untouched, and so do HEAD requests and, with METER_FAST_ACCESS
off, the access routes too. An unexpected exception is answered by the app's own error handlers,
in a request context made for it (the check must not run twice).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING

from flask import Flask

from meter.access.views.exchange import Answer, Incoming
from meter.access.views.routes import ROUTES, incoming_of, serve
from meter.platform import http

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class HotEntry:
    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        for route in ROUTES:
            if method in route.methods:
                match = route.pattern.match(path)
                if match is not None:
                    break
        else:
            return self.wsgi_app(environ, start_response)
        config = self.app.config
        if not config["METER_FAST_ACCESS"]:
            return self.wsgi_app(environ, start_response)
        with self.app.app_context() as context:
            started, request_id = http.begin(environ.get("HTTP_X_REQUEST_ID"))
            state = context.g  # the context's own `g`: not looked up through the proxy for each name
            state.request_started, state.request_id = started, request_id  # log lines of this request name it
            incoming = None
            try:
                incoming = incoming_of(environ, config["MAX_CONTENT_LENGTH"])
                answer = serve(route, incoming, match.groupdict())
            except Exception as exc:  # noqa: BLE001 (any error: the app's handlers answer it, as for the view)
                return self._failed(environ, start_response, incoming, exc)
            headers = self._headers(answer, incoming.secure, request_id)
            http.log(method, route.rule, answer.status, answer.site_slug, request_id, started)
        start_response(_STATUS_LINES[answer.status], headers)
        return [answer.body]

    @staticmethod
    def _headers(answer: Answer, secure: bool, request_id: str) -> list[tuple[str, str]]:
        common = http.common_headers(answer.mimetype or "", secure, request_id)
        # Only the answer's own extra headers can name a common one (Content-Type and -Length never do).
        overridden = {name.lower() for name, _ in answer.headers} & http.COMMON_NAMES if answer.headers else ()
        if overridden:
            common = [(name, value) for name, value in common if name.lower() not in overridden]
        return answer.header_list() + common

    def _failed(
        self, environ: WSGIEnvironment, start_response: StartResponse, incoming: Incoming | None, exc: Exception
    ) -> Iterable[bytes]:
        """Answer an exception with the app's own handlers and after-request hooks (as a view's would be)."""
        app = self.app
        body = incoming.body if incoming is not None and incoming.body is not None else b""  # read already
        environ["wsgi.input"] = io.BytesIO(body)
        with app.request_context(environ):
            try:
                rv = app.handle_user_exception(exc)
            except Exception as unhandled:  # noqa: BLE001 (no handler took it: Flask's last resort, as for any view)
                rv = app.handle_exception(unhandled)
            response = app.finalize_request(rv)
        return response(environ, start_response)
