"""RFC 9457 problem details: every error under /v1 (and the AMP routes) is application/problem+json.

Elsewhere (a browser on a reader page) an error is a page: the renderer registered under
`ERROR_PAGE` (meter.platform.error_pages) makes it in the reader's language; without one, or if it
fails, the answer is Werkzeug's own.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, current_app, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
ERROR_PAGE = "meter.error_page"  # app.extensions key: (status, exception) -> the HTML answer
API_PREFIXES = ("/v1/", "/amp/", "/embed/", "/healthz", "/readyz")

_STATUS_NAMES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    429: "rate-limited",
    500: "internal-error",
    503: "service-unavailable",
}


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        name: str,
        title: str,
        detail: str | None = None,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.name, self.title, self.detail = status, name, title, detail
        self.errors, self.headers = errors, headers or {}


def problem_body(status: int, name: str, title: str, detail: str | None = None, errors: dict | None = None) -> bytes:
    """The problem document itself (also rendered by the access answers outside Flask's handlers)."""
    body: dict[str, Any] = {
        "type": f"{current_app.config['PUBLIC_BASE_URL']}/problems/{name}",
        "title": title,
        "status": status,
        "detail": detail or title,
    }
    if errors is not None:
        body["errors"] = errors
    return json.dumps(body).encode()


def problem_response(
    status: int,
    name: str,
    title: str,
    detail: str | None = None,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    response = Response(problem_body(status, name, title, detail, errors), status=status, mimetype=PROBLEM_MIMETYPE)
    response.headers.update(headers or {})
    return response


def wants_problem() -> bool:
    """An API path, or a client that asks for JSON: errors answer with a problem document."""
    return request.path.startswith(API_PREFIXES) or request.accept_mimetypes.best == "application/json"


def _page(status: int, exc: Exception, fallback):
    """The HTML error page, or `fallback` when none is registered or it cannot be made."""
    render = current_app.extensions.get(ERROR_PAGE)
    if render is None:
        return fallback
    try:
        return render(status, exc)
    except Exception:
        log.exception("the error page for %s could not be made", status)
        return fallback


def init_app(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc.status, exc.name, exc.title, exc.detail, exc.errors, exc.headers)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if not wants_problem():
            return _page(exc.code or 500, exc, exc)
        status = exc.code or 500
        name = _STATUS_NAMES.get(status, "http-error")
        response = problem_response(status, name, exc.name, exc.description)
        for header in ("Allow", "Retry-After"):
            if exc.get_response().headers.get(header):
                response.headers[header] = exc.get_response().headers[header]
        return response

    @app.errorhandler(OperationalError)
    def _database_away(exc: OperationalError):
        # The database is unreachable (or refuses work): a temporary condition, not a bug.
        log.warning("database unavailable on %s %s: %s", request.method, request.path, exc.orig)
        if not wants_problem():
            page = _page(503, exc, ("Service Unavailable", 503))
            if isinstance(page, Response):
                page.headers["Retry-After"] = "5"
                return page
            return (*page, {"Retry-After": "5"})
        return problem_response(
            503, "service-unavailable", "Service unavailable", "Try again shortly.", headers={"Retry-After": "5"}
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not wants_problem():
            return _page(500, exc, ("Internal Server Error", 500))
        return problem_response(500, "internal-error", "Internal Server Error", "The error was logged.")
