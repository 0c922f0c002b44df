"""What an access request brings and what it gets back, independent of who serves it (Flask or the hot entry).

`Incoming` holds the request's inputs, already read; `Answer` is the status, the answer's own
headers and the bytes. The common headers (security, X-Request-ID) and the log line are added by
`meter.web.http` whichever entry point serves it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meter.web.problems import PROBLEM_MIMETYPE, Problem, problem_body

JSON = "application/json"


@dataclass
class Incoming:
    method: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    cookies: Mapping[str, str]
    body: bytes | None  # None: larger than MAX_CONTENT_LENGTH (not read)
    secure: bool
    remote_addr: str


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


def json_answer(payload: dict[str, Any], status: int = 200, headers: list[tuple[str, str]] | None = None) -> Answer:
    return Answer(status, json.dumps(payload, separators=(",", ":")).encode() + b"\n", JSON, list(headers or ()))


def problem_answer(problem: Problem, headers: list[tuple[str, str]] | None = None) -> Answer:
    body = problem_body(problem.status, problem.name, problem.title, problem.detail, problem.errors)
    return Answer(problem.status, body, PROBLEM_MIMETYPE, [*problem.headers.items(), *(headers or ())])


TOO_LARGE = Problem(413, "payload-too-large", "Request Entity Too Large", "The body is larger than MAX_CONTENT_LENGTH.")
