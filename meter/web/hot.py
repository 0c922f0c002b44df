"""`POST /v1/access` without Flask's request machinery, for well-formed, authenticated checks.

Why: the access check runs on every article view a publisher serves, and for this one route Flask's
request context, routing and app-wide hooks cost about as much as meter's own work (issue 6, goal
1; docs/benchmarks.md). This WSGI layer sits in front of the app and answers a check itself only
when it can answer exactly as the Flask view would: the same rules and answer (`access.answer`),
the same bytes, headers, request log line and metrics, inside an app context (the cold path still
reads the ledger and a new unlock is still written to it).

Everything else goes on to Flask untouched, before anything was decided, with the body handed back:
another path or method, no Content-Length or a body over MAX_CONTENT_LENGTH, a missing or wrong API
key, a body that is not a valid `AccessBody`, the access rate limit set (RATELIMIT_ACCESS_IP), or
METER_FAST_ACCESS off. So every refusal keeps its one problem+json path. An exception while deciding
(after which the check must not run twice) is answered by the app's own error handlers, in a
request context made for it.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g

from meter.domain.sites import SiteInfo
from meter.infra import logs
from meter.web import http, openapi
from meter.web.api import site_for
from meter.web.api.access import answer
from meter.web.schemas import AccessBody
from meter.web.validation import load_json, parse

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PATH = "/v1/access"


class AccessFastPath:
    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        config = self.app.config
        if not config["METER_FAST_ACCESS"] or config["RATELIMIT_ACCESS_IP"]:
            return self.wsgi_app(environ, start_response)
        raw = _read_body(environ, config["MAX_CONTENT_LENGTH"])
        if raw is not None:
            with self.app.app_context():
                prepared = _prepare(environ, raw)
                if prepared is not None:
                    return self._answer(environ, start_response, prepared[0], prepared[1], started)
        return self.wsgi_app(environ, start_response)

    def _answer(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        site: SiteInfo,
        body: AccessBody,
        started: float,
    ) -> Iterable[bytes]:
        g.site = site
        g.request_started = started
        g.request_id = request_id = logs.request_id(environ.get("HTTP_X_REQUEST_ID"))
        try:
            payload = answer(site, body)
        except Exception as exc:  # noqa: BLE001 (any error: the app's handlers answer it, as for the view)
            return self._failed(environ, start_response, exc)
        data = self._json(payload)
        headers = [
            ("Content-Type", self.app.json.mimetype),  # type: ignore[attr-defined]
            ("Content-Length", str(len(data))),
            *http.common_headers("application/json", environ.get("wsgi.url_scheme") == "https", request_id),
        ]
        if self.app.config.get("OPENAPI_VALIDATE_RESPONSES"):
            openapi.check_answer("POST", PATH, Response(data, 200, headers))
        logs.log_request("POST", PATH, 200, site.slug, request_id, started)
        start_response("200 OK", headers)
        return [data]

    def _json(self, payload: dict[str, Any]) -> bytes:
        """The bytes Flask's JSON provider would send for this dict (`return payload` in a view)."""
        provider = self.app.json
        pretty = provider.compact is False or (provider.compact is None and self.app.debug)  # type: ignore[attr-defined]
        text = json.dumps(
            payload,
            sort_keys=provider.sort_keys,  # type: ignore[attr-defined]
            ensure_ascii=provider.ensure_ascii,  # type: ignore[attr-defined]
            **({"indent": 2} if pretty else {"separators": (",", ":")}),
        )
        return f"{text}\n".encode()

    def _failed(self, environ: WSGIEnvironment, start_response: StartResponse, exc: Exception) -> Iterable[bytes]:
        """Answer an exception raised while deciding with the app's own handlers and after-request hooks."""
        app = self.app
        with app.request_context(environ):
            try:
                rv = app.handle_user_exception(exc)
            except Exception as unhandled:  # noqa: BLE001 (no handler took it: Flask's last resort, as for any view)
                rv = app.handle_exception(unhandled)
            response = app.finalize_request(rv)
        return response(environ, start_response)


def _read_body(environ: WSGIEnvironment, limit: int | None) -> bytes | None:
    """The body when it has a sane Content-Length within the limit; it is always handed back in environ."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if length <= 0 or (limit is not None and length > limit):
        return None
    try:
        raw = environ["wsgi.input"].read(length)
    except OSError:  # the client went away mid-body: Flask answers as for a short body (400)
        raw = b""
    environ["wsgi.input"] = io.BytesIO(raw)  # Flask reads it again if the check goes on to it
    return raw if len(raw) == length else None


def _prepare(environ: WSGIEnvironment, raw: bytes) -> tuple[SiteInfo, AccessBody] | None:
    """(site, body) when the fast path may answer; None sends the request on to Flask, which refuses it."""
    try:
        site = site_for(environ.get("HTTP_AUTHORIZATION", ""))
        if site is None:
            return None
        data = load_json(raw)
        if not isinstance(data, dict):
            return None
        return site, parse(AccessBody, data)
    except Exception:  # noqa: BLE001 (a refusal, or the database away on a cold site cache: Flask answers it)
        return None
