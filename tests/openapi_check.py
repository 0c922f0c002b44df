"""Every answer the suite sees is checked against /openapi.json, at the client (`CheckedClient`).

Checking at the client, not in the app, covers every entry point alike (Flask's views and the hot
entry of the access answers) and adds nothing to what the app does per request. A violation fails
the test at the request that got it.
"""

from __future__ import annotations

import json
import re

import jsonschema_rs
from flask.testing import FlaskClient
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from meter.platform.openapi import spec


def _path_template(rule: str) -> str:
    """Flask's `/v1/readers/<int:reader_id>/subscription` → OpenAPI's `/v1/readers/{reader_id}/subscription`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


_validators: dict[tuple[int, str], tuple[dict, object]] = {}


def _validator(document: dict, status_ref: str):
    key = (id(document), status_ref)
    if key not in _validators:  # the document is kept with its validator, so its id is not reused
        validator = jsonschema_rs.Draft202012Validator({"$ref": status_ref, "components": document["components"]})
        _validators[key] = (document, validator)
    return _validators[key][1]


def violation(method: str, rule: str, response: Response, app=None) -> str | None:
    """Why this answer does not match the description (None when it does, or is not described)."""
    document = spec(app)
    path = document["paths"].get(_path_template(rule))
    operation = (path or {}).get(method.lower())
    if operation is None:
        return None
    described = operation["responses"].get(str(response.status_code))
    where = f"{method} {rule} → {response.status_code}"
    if described is None:
        return f"{where}: status not described"
    content = described.get("content")
    if not content:
        return None if not response.get_data() else f"{where}: a body where none is described"
    mimetype = response.mimetype
    if mimetype not in content:
        return f"{where}: content type {mimetype} not described ({', '.join(content)})"
    schema = content[mimetype].get("schema", {})
    if not mimetype.endswith("json"):
        return None
    try:
        answer = json.loads(response.get_data())
    except ValueError:
        return f"{where}: not JSON"
    if "$ref" in schema:
        errors = [str(e) for e in _validator(document, schema["$ref"]).iter_errors(answer)]
        if errors:
            return f"{where}: {'; '.join(errors)[:800]}"
    return None


class CheckedClient(FlaskClient):
    """The app's test client: each answer is checked against /openapi.json as it arrives."""

    check_openapi = True

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        if self.check_openapi and kwargs.get("buffered") is not False:
            request = response.request
            try:
                rule, _args = self.application.url_map.bind("localhost").match(
                    request.path, request.method, return_rule=True
                )
            except HTTPException:
                return response  # no route: nothing described
            problem = violation(request.method, rule.rule, response, self.application)
            assert problem is None, problem
        return response
