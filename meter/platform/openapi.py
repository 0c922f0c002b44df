"""`GET /openapi.json`: the OpenAPI 3.1 description of the HTTP API, generated from the views themselves.

Each view says what it is where it is written: `@describe(summary, body=RequestModel, answers=…,
errors=…)`. The request schemas are the pydantic models the views validate with (`schemas`), the
answers' schemas the typed dicts the views return (`responses`); the paths, methods and path
parameters are the app's own routes. A route without a description under /v1, /amp, /embed or the
operations routes fails the suite (tests/functional/test_operations.py), which also checks every answer it
sees against this description, at the client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app
from pydantic import BaseModel, TypeAdapter

PROBLEM = "application/problem+json"
REF = "#/components/schemas/{model}"
DESCRIBED_PREFIXES = ("/v1/", "/amp/", "/embed/", "/healthz", "/readyz", "/metrics", "/openapi.json")
# A machine-facing route under a site's own path: in the description too (the reader pages are not).
DESCRIBED_SUFFIXES = ("/.well-known/jwks.json",)


def is_described(path: str) -> bool:
    """Whether /openapi.json describes the route with this rule (and the test holds it described)."""
    return path.startswith(DESCRIBED_PREFIXES) or path.endswith(DESCRIBED_SUFFIXES)


SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})

F = TypeVar("F", bound=Callable[..., Any])


# --- what a view says about itself -----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One described answer: a JSON type (a response typed dict), another media type, or no body."""

    description: str
    schema: type | None = None  # a typed dict of meter.platform.responses, as application/json
    media: str | None = None  # another media type (text/plain, text/javascript, …)
    headers: dict[str, dict] = field(default_factory=dict)

    def document(self, refs: set[type]) -> dict:
        out: dict[str, Any] = {"description": self.description}
        if self.schema is not None:
            refs.add(self.schema)
            media = self.media or "application/json"
            out["content"] = {media: {"schema": {"$ref": REF.format(model=self.schema.__name__)}}}
        elif self.media is not None:
            out["content"] = {self.media: {"schema": {"type": "object" if self.media.endswith("json") else "string"}}}
        if self.headers:
            out["headers"] = self.headers
        return out


def problem(description: str) -> Answer:
    from meter.platform.responses import Problem

    return Answer(description, Problem, PROBLEM)


@dataclass(frozen=True)
class Operation:
    summary: str
    answers: dict[int, Answer]
    body: type[BaseModel] | None = None
    body_media: tuple[str, ...] = ("application/json",)
    errors: dict[int, str] = field(default_factory=dict)
    secured: bool = True  # the site's API key (else no security)
    unavailable: bool = True  # may answer 503 (the database or Redis away)
    params: dict[str, dict] = field(default_factory=dict)  # name → parameter object (path ones: schema overrides)
    description: str | None = None


def describe(
    summary: str,
    answers: dict[int, Answer],
    *,
    method: str = "*",
    body: type[BaseModel] | None = None,
    body_media: tuple[str, ...] = ("application/json",),
    errors: dict[int, str] | None = None,
    secured: bool = True,
    unavailable: bool = True,
    params: dict[str, dict] | None = None,
    description: str | None = None,
) -> Callable[[F], F]:
    """Describe a view (for one of its methods, or all of them) in /openapi.json; the view is unchanged."""
    operation = Operation(
        summary, answers, body, body_media, errors or {}, secured, unavailable, params or {}, description
    )

    def mark(view: F) -> F:
        view.__dict__.setdefault("openapi", {})[method.lower()] = operation
        return view

    return mark


def query(name: str, description: str, required: bool = False, schema: dict | None = None) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string", "maxLength": 2048},
    }


BODY_ERRORS = {
    400: "Malformed JSON (`malformed-json`).",
    413: "The body is larger than MAX_CONTENT_LENGTH (`payload-too-large`).",
    422: "Invalid fields (`validation-failed`), with `errors`: field → message.",
}
SITE_SLUG = {"type": "string", "maxLength": 64, "description": "The site's slug."}


# --- the document ---------------------------------------------------------------------------------


def _path_template(rule: str) -> str:
    """Flask's `/v1/readers/<int:reader_id>/subscription` → OpenAPI's `/v1/readers/{reader_id}/subscription`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _path_params(rule: str, overrides: dict[str, dict]) -> list[dict]:
    found = []
    for converter, name in re.findall(r"<(?:([^:<>]+):)?([^<>]+)>", rule):
        schema = {"type": "integer", "minimum": 1} if converter == "int" else dict(SITE_SLUG)
        description = schema.pop("description", None)
        parameter = {"name": name, "in": "path", "required": True, "schema": schema}
        if description:
            parameter["description"] = description
        parameter.update(overrides.get(name, {}))
        found.append(parameter)
    return found


def _operation(op: Operation, rule: str, refs: set[type], models: set[type[BaseModel]]) -> dict:
    answers = {status: answer.document(refs) for status, answer in op.answers.items()}
    always: dict[int, Answer] = {
        500: problem("An unexpected error (`internal-error`); it was logged with the request id."),
        414: Answer("The request line is too long: the server refuses it before meter sees it.", media="text/html"),
    }
    if op.unavailable:
        always[503] = problem("The database or Redis is unreachable for this call; `Retry-After` says when.")
    if op.secured:
        always[401] = problem("Missing or wrong site API key (`unauthorized`).")
        always[429] = problem("Rate limited (`rate-limited`); `Retry-After` says when to try again.")
    if op.body is not None:
        always.update({status: problem(text) for status, text in BODY_ERRORS.items()})
    always.update({status: problem(text) for status, text in op.errors.items()})
    for status, answer in always.items():
        answers.setdefault(status, answer.document(refs))
    document: dict[str, Any] = {
        "summary": op.summary,
        "responses": {str(status): answers[status] for status in sorted(answers)},
    }
    if op.description:
        document["description"] = op.description
    parameters = _path_params(rule, op.params) + [p for p in op.params.values() if p.get("in") not in (None, "path")]
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        models.add(op.body)
        schema = {"$ref": REF.format(model=op.body.__name__)}
        document["requestBody"] = {"required": True, "content": {media: {"schema": schema} for media in op.body_media}}
    if not op.secured:
        document["security"] = []
    return document


def build(app: Flask) -> dict:
    """The whole description of `app`'s machine-facing routes (`described`)."""
    paths: dict[str, dict] = {}
    refs: set[type] = set()
    models: set[type[BaseModel]] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not is_described(rule.rule):
            continue
        described = getattr(app.view_functions[rule.endpoint], "openapi", {})
        for method in sorted(rule.methods or ()):
            op = described.get(method.lower()) or (described.get("*") if method not in SKIPPED_METHODS else None)
            if op is not None:
                paths.setdefault(_path_template(rule.rule), {})[method.lower()] = _operation(
                    op, rule.rule, refs, models
                )
    schemas: dict[str, Any] = {}
    ordered_models = sorted(models, key=lambda m: m.__name__)
    if ordered_models:
        from pydantic.json_schema import models_json_schema

        _, found = models_json_schema([(m, "validation") for m in ordered_models], by_alias=True, ref_template=REF)
        schemas.update(found.get("$defs", {}))
    ordered_refs = sorted(refs, key=lambda t: t.__name__)
    _, found = TypeAdapter.json_schemas(
        [(t, "serialization", TypeAdapter(t)) for t in ordered_refs], by_alias=True, ref_template=REF
    )
    schemas.update(found.get("$defs", {}))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "meter",
            "version": "1",
            "description": "Metered access for news publishers. Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "/"}],
        "security": [{"siteKey": []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "siteKey": {"type": "http", "scheme": "bearer", "description": "The site's API key (mk_…)."}
            },
        },
    }


_built: dict[tuple, dict] = {}


def spec(app: Flask | None = None) -> dict:
    """The description of `app` (the current app by default), built once per set of routes.

    It is made from the routes and their views alone, never from settings, so an app made again in
    the same process (a reload, each test of the suite) reuses the one built for the same routes
    instead of spending ~0.1 s of pydantic schema generation on it again. Treat it as read-only.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    document = app.extensions.get("openapi.spec")
    if document is None:
        routes = tuple(
            (rule.rule, tuple(sorted(rule.methods or ())), rule.endpoint, id(app.view_functions[rule.endpoint]))
            for rule in app.url_map.iter_rules()
            if is_described(rule.rule)
        )
        document = _built.get(routes)
        if document is None:
            document = _built[routes] = build(app)
        app.extensions["openapi.spec"] = document
    return document


bp = Blueprint("openapi", __name__)


@describe("This description.", {200: Answer("OpenAPI 3.1.", media="application/json")}, secured=False)
@bp.get("/openapi.json")
def openapi_json() -> Response:
    return Response(json.dumps(spec()), mimetype="application/json")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
