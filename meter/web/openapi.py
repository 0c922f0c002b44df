"""`GET /openapi.json`: the OpenAPI 3.1 description of the HTTP API (/v1, AMP, the embed, health, metrics).

Request schemas come from the pydantic models the views validate with (meter/api/schemas.py), and
response schemas from meter/api/responses.py, so the description is generated, not hand-written.
With OPENAPI_VALIDATE_RESPONSES (on in TestConfig) every JSON answer is checked against it and any
mismatch is recorded in app.extensions["openapi.violations"]; the suite fails on any.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from flask import Blueprint, Flask, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from meter.web import responses as out
from meter.web import schemas as body
from meter.web.api.readers import MAX_ID as MAX_READER_ID

bp = Blueprint("openapi", __name__)

PROBLEM = "application/problem+json"
REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _text(description: str, mimetype: str, schema: dict | None = None) -> dict:
    return {"description": description, "content": {mimetype: {"schema": schema or {"type": "string"}}}}


def _problem(description: str) -> dict:
    return {"description": description, "content": {PROBLEM: {"schema": _ref(out.Problem)}}}


COMMON_BODY_ERRORS = {
    "400": _problem("Malformed JSON (`malformed-json`), or a bad or expired token."),
    "401": _problem("Missing or wrong site API key (`unauthorized`)."),
    "413": _problem("The body is larger than MAX_CONTENT_LENGTH."),
    "422": _problem("Invalid fields (`validation-failed`), with `errors`: field → message."),
}


def _op(
    summary: str,
    responses: dict,
    request_model: type[BaseModel] | None = None,
    errors: dict | None = None,
    secured: bool = True,
    unavailable: bool = True,
    **extra: Any,
) -> dict:
    always = {"500": _problem("An unexpected error (`internal-error`); it was logged with the request id.")}
    if unavailable:  # (False only for an answer that touches neither the database nor Redis)
        always["503"] = _problem(
            "The database or Redis is unreachable for this call; `Retry-After` says when to try again."
        )
    if secured:
        always["429"] = _problem("Rate limited (`rate-limited`); `Retry-After` says when to try again.")
    operation: dict[str, Any] = {"summary": summary, "responses": {**responses, **always, **(errors or {})}}
    if request_model is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(request_model)}},
        }
    if not secured:
        operation["security"] = []
    operation.update(extra)
    return operation


def _reader_id_param() -> dict:
    return {
        "name": "reader_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_READER_ID},
    }


AMP_ERRORS = {
    "400": _problem("Bad query (`rid` must be 8 to 128 of A-Za-z0-9_-)."),
    "403": _problem("The Origin or `__amp_source_origin` is not one of the site's origins or an AMP cache."),
    "404": _problem("Unknown site."),
    "422": _problem("Bad article id or class (`validation-failed`)."),
}


def _amp_params() -> list[dict]:
    def q(name: str, description: str, required: bool = False, schema: dict | None = None) -> dict:
        return {
            "name": name,
            "in": "query",
            "required": required,
            "description": description,
            "schema": schema or {"type": "string", "maxLength": 2048},
        }

    return [
        {
            "name": "site_slug",
            "in": "path",
            "required": True,
            "description": "The site's slug (`{site}` in the contract).",
            "schema": {"type": "string", "maxLength": 64},
        },
        q("rid", "AMP reader id: anonymous unless linked to a reader by a login.", True),
        q("url", "The source URL of the AMP page.", True),
        q("article", "Article id (defaults to the URL)."),
        q("class", "Article class (defaults to metered).", schema={"enum": ["free", "metered", "premium"]}),
    ]


EMBED_CORS = (
    "Called by meter.js from the site's own pages, on meter's origin, with credentials: the reader is found by "
    "meter's cookies (the login cookie of the reader pages, or the anonymous id cookie `meter_anon` set here), "
    "never an API key. CORS answers only an `Origin` that is one of the site's origins "
    "(`Access-Control-Allow-Origin: <that origin>`, `Access-Control-Allow-Credentials: true`, `Vary: Origin`, "
    "`Cache-Control: no-store`), on answers and refusals alike; any other Origin, or none, is refused with 403 "
    "before anything is read or counted."
)
EMBED_ERRORS = {
    "403": _problem("The Origin is missing or not one of the site's origins (`origin-refused`); no CORS headers."),
    "404": _problem("Unknown site."),
    "503": _problem("The database is unreachable; `Retry-After` says when to try again."),
}


def _embed_params() -> list[dict]:
    return [
        {
            "name": "site_slug",
            "in": "path",
            "required": True,
            "description": "The site's slug (`data-site` of the script tag).",
            "schema": {"type": "string", "maxLength": 64},
        },
        {
            "name": "lang",
            "in": "query",
            "required": False,
            "description": "The reader's language for the wall, the banner and the messages (else the `lang` "
            "cookie, Accept-Language, the site's locale).",
            "schema": {"enum": ["id", "en"]},
        },
    ]


def _embed_preflight(what: str) -> dict:
    return _op(
        f"CORS preflight for {what} (meter.js sends a simple request and needs none).",
        {"204": {"description": "The site's origin: the CORS headers, no body."}},
        errors=EMBED_ERRORS,
        secured=False,
        description=EMBED_CORS,
    )


def _paths() -> dict:
    body_errors = COMMON_BODY_ERRORS
    not_found = {"404": _problem("No such reader on this site (`reader-not-found`).")}
    return {
        "/v1/readers": {
            "post": _op(
                "Register a reader; the activation mail is queued (202 also for a taken address: no enumeration).",
                {"202": _json(out.Accepted, "Activation mail queued.")},
                body.RegisterBody,
                body_errors,
            )
        },
        "/v1/readers/resend-activation": {
            "post": _op(
                "Send the activation mail again (202 whether or not the address exists).",
                {"202": _json(out.Accepted, "Accepted.")},
                body.EmailBody,
                {**body_errors, "429": _problem("Rate limited; see Retry-After.")},
            )
        },
        "/v1/activations": {
            "post": _op(
                "Activate with the token of the link; the first click gets a reader token.",
                {"200": _json(out.Activated, "The reader is verified.")},
                body.ActivationBody,
                body_errors,
            )
        },
        "/v1/sessions": {
            "post": _op(
                "Log in.",
                {"200": _json(out.LoggedIn, "A reader token and the reader.")},
                body.LoginBody,
                {**body_errors, "401": _problem("Wrong key (`unauthorized`) or credentials (`invalid-credentials`).")},
            ),
            "delete": _op(
                "Log out: the token stops working everywhere.",
                {"204": {"description": "Logged out."}},
                body.LogoutBody,
                body_errors,
            ),
        },
        "/v1/password-resets": {
            "post": _op(
                "Ask for a password-reset mail (202 always).",
                {"202": _json(out.ResetAccepted, "Accepted.")},
                body.EmailBody,
                body_errors,
            )
        },
        "/v1/password-resets/confirm": {
            "post": _op(
                "Set a new password with the token of the mail; older reader tokens stop working.",
                {"200": _json(out.ReaderToken, "A new reader token.")},
                body.ResetConfirmBody,
                body_errors,
            )
        },
        "/v1/readers/me": {
            "get": _op(
                "The reader of X-Reader-Token, with this period's meter.",
                {"200": _json(out.Me, "The reader.")},
                errors={"401": _problem("Missing or wrong site key, or a bad, expired or revoked reader token.")},
                parameters=[
                    {
                        "name": "X-Reader-Token",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 4096},
                    }
                ],
            )
        },
        "/v1/readers/{reader_id}/subscription": {
            "parameters": [_reader_id_param()],
            "put": _op(
                "Set the subscription's end (the publisher's billing calls this).",
                {"200": _json(out.ReaderOut, "The reader.")},
                body.SubscriptionBody,
                {**body_errors, **not_found},
            ),
            "delete": _op(
                "End the subscription now.",
                {"200": _json(out.ReaderOut, "The reader.")},
                errors={"401": body_errors["401"], **not_found},
            ),
        },
        "/v1/access": {
            "post": _op(
                "May this reader read this article? Always 200 when the question could be answered.",
                {"200": _json(out.AccessAnswer, "The decision.")},
                body.AccessBody,
                body_errors,
            )
        },
        "/amp/{site_slug}/authorization": {
            "get": _op(
                "AMP authorization (amp-access / amp-subscriptions): never counts; no personal data.",
                {"200": _json(out.AmpAuthorization, "The grant; Cache-Control: no-store.")},
                errors=AMP_ERRORS,
                secured=False,
                parameters=_amp_params(),
            )
        },
        "/amp/{site_slug}/pingback": {
            "post": _op(
                "AMP pingback: counts the view.",
                {
                    "200": {"description": "Counted.", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "204": {"description": "Counted."},
                },
                errors=AMP_ERRORS,
                secured=False,
                parameters=_amp_params(),
            )
        },
        "/embed/meter.js": {
            "get": _op(
                "The embed's script, for the publisher's article pages (`<script src=… data-site=…>`).",
                {"200": _text("JavaScript; Cache-Control: public, max-age=300.", "text/javascript")},
                secured=False,
                unavailable=False,
            )
        },
        "/embed/{site_slug}/access": {
            "parameters": _embed_params(),
            "post": _op(
                "The access check for the reader of this browser (cookies, CORS; no API key). "
                "Counts unless `record` is false; sets the `meter_anon` cookie on the first visit.",
                {"200": _json(out.EmbedAccess, "The decision, the banner and the wall, with the CORS headers.")},
                errors={
                    **EMBED_ERRORS,
                    "400": _problem("Malformed JSON or no body (`malformed-json`)."),
                    "413": _problem("The body is larger than MAX_CONTENT_LENGTH."),
                    "422": _problem(
                        "No article object, a bad article id or class, or a record that is not a "
                        "boolean (`validation-failed`), with `errors`."
                    ),
                },
                secured=False,
                description=EMBED_CORS + " The body is JSON, sent as text/plain (a CORS simple request).",
                requestBody={
                    "required": True,
                    "content": {
                        media: {"schema": _ref(body.EmbedAccessBody)} for media in ("text/plain", "application/json")
                    },
                },
            ),
            "options": _embed_preflight("the access check"),
        },
        "/embed/{site_slug}/resend": {
            "parameters": _embed_params(),
            "post": _op(
                "Send the activation mail again to the logged-in reader of this browser (cookies, CORS; no API key); "
                "once a minute per address. The body is ignored.",
                {
                    "200": _json(out.EmbedResendSent, "Sent (nothing is sent to a verified reader)."),
                    "429": {
                        **_json(out.EmbedResendWait, "The cool-down; `Retry-After` says how many seconds are left."),
                        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
                    },
                },
                errors={
                    **EMBED_ERRORS,
                    "401": _problem("No live login cookie (`unauthorized`); with the CORS headers."),
                },
                secured=False,
                description=EMBED_CORS,
            ),
            "options": _embed_preflight("the resend button"),
        },
        "/healthz": {"get": _op("Liveness: the process is up.", {"200": _json(out.Health, "Up.")}, secured=False)},
        "/readyz": {
            "get": _op(
                "Readiness: the database and Redis answer.",
                {"200": _json(out.Ready, "Ready."), "503": _problem("The database or Redis is unreachable.")},
                secured=False,
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics (text exposition format); see docs/operations.md.",
                {
                    "200": _text("Metrics.", "text/plain"),
                    "401": _problem("METRICS_TOKEN is set and the request does not carry it as a Bearer token."),
                },
                secured=False,
            )
        },
        "/openapi.json": {
            "get": _op(
                "This description.",
                {"200": _text("OpenAPI 3.1.", "application/json", {"type": "object"})},
                secured=False,
            )
        },
    }


REQUEST_MODELS = (
    body.RegisterBody,
    body.EmailBody,
    body.ActivationBody,
    body.LoginBody,
    body.LogoutBody,
    body.ResetConfirmBody,
    body.SubscriptionBody,
    body.AccessBody,
    body.EmbedAccessBody,
)
RESPONSE_MODELS = (
    out.Problem,
    out.Accepted,
    out.ResetAccepted,
    out.ReaderOut,
    out.Activated,
    out.LoggedIn,
    out.ReaderToken,
    out.Me,
    out.AccessAnswer,
    out.Health,
    out.Ready,
    out.AmpAuthorization,
    out.EmbedAccess,
    out.EmbedResendSent,
    out.EmbedResendWait,
)


@cache
def spec() -> dict:
    """The whole description (built once per process)."""
    _, requests = models_json_schema([(m, "validation") for m in REQUEST_MODELS], by_alias=True, ref_template=REF)
    _, responses = models_json_schema([(m, "serialization") for m in RESPONSE_MODELS], by_alias=True, ref_template=REF)
    schemas = {**requests.get("$defs", {}), **responses.get("$defs", {})}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "meter",
            "version": "1",
            "description": "Metered access for news publishers. Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "/"}],
        "security": [{"siteKey": []}],
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "siteKey": {"type": "http", "scheme": "bearer", "description": "The site's API key (mk_…)."}
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return Response(json.dumps(spec()), mimetype="application/json")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
