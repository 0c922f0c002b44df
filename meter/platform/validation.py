"""Reading JSON bodies: malformed, hostile or wrongly typed input becomes a 4xx, never a 500."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import abort, request
from pydantic import BaseModel, ValidationError

from meter.platform.problems import Problem
from meter.platform.schemas import SignedArticle

M = TypeVar("M", bound=BaseModel)


def no_nul_in_fields() -> None:
    """A NUL in a query or form field: 400 before any view reads it (a before_request of the pages
    and the console). No address, key or text meter keeps holds one, and PostgreSQL cannot even
    compare text with it where SQLite can: the same input fails the same way on both."""
    for fields in (request.args, request.form):
        if any("\x00" in value for _name, value in fields.items(multi=True)):
            abort(400)


def json_body() -> Any:
    return load_json(request.get_data(cache=True))  # MAX_CONTENT_LENGTH already refused oversized bodies (413)


def load_json(raw: bytes) -> Any:
    if not raw:
        raise Problem(400, "malformed-json", "Malformed JSON", "The request has no body; a JSON object is expected.")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = "The body is not valid UTF-8 JSON." if not isinstance(exc, RecursionError) else "JSON nested too deep."
        raise Problem(400, "malformed-json", "Malformed JSON", detail) from None


_FROM_REQUEST: Any = object()


def parse(model: type[M], data: Any = _FROM_REQUEST) -> M:
    """Validate a JSON object (by default the request's body) against a pydantic model; 422 with
    field → message on failure."""
    if data is _FROM_REQUEST:
        data = json_body()
    if not isinstance(data, dict):
        raise Problem(
            422, "validation-failed", "Validation failed", "A JSON object is expected.", {"": "expected an object"}
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors(include_url=False, include_input=False):
            field = ".".join(str(p) for p in err["loc"]) or ""
            errors.setdefault(field, err["msg"])
        raise Problem(
            422, "validation-failed", "Validation failed", "Some fields are missing or invalid.", errors
        ) from None
    except RecursionError:
        raise Problem(400, "malformed-json", "Malformed JSON", "JSON nested too deep.") from None


def query_article(
    article_id: Any,
    article_class: Any,
    expires: Any = None,
    sig: Any = None,
    section: Any = None,
    campaign: Any = None,
) -> SignedArticle:
    """An article described by a query string (AMP), checked as the API checks a body's."""
    data = {
        "id": article_id,
        "class": article_class if article_class is not None else "metered",
        "sig": sig,
        "section": section,
        "campaign": campaign,
    }
    data["expires"] = int(expires) if isinstance(expires, str) and expires.isdigit() and len(expires) < 12 else expires
    return parse(SignedArticle, data)
