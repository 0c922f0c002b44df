"""Logs: one line per request, as JSON (LOG_FORMAT=json, the default) or text (LOG_FORMAT=text).

Each request gets an id: the caller's X-Request-ID when it is a sane one (so a proxy's id carries
through), else a new one; it is echoed in the answer's X-Request-ID and put on every log line of
that request. A line names the route *pattern* (`/<site_slug>/activate/<token>`), never the path,
so tokens in URLs stay out of the logs; nothing logs bodies or query strings. Whatever a message
says, the formatter masks email addresses (`p***@example.com`), API keys (`mk_AbCdEf…`), signed tokens
and JWTs (`[token]`), and OAuth's codes, states, tokens and secrets (`code=[masked]`).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from datetime import UTC, datetime

from flask import Flask, g, has_app_context

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
EMAIL_RE = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
API_KEY_RE = re.compile(r"\b(mk_[A-Za-z0-9_-]{6})[A-Za-z0-9_-]+")
# itsdangerous tokens (reader, activation, reset) and JWTs (ID tokens): three dot-separated base64 parts.
SIGNED_TOKEN_RE = re.compile(r"\b[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}\b")
# OAuth's secrets wherever a URL, a form or a message carries them as name=value or "name": "value".
OAUTH_SECRET_RE = re.compile(
    r"""(\b(?:code|state|access_token|refresh_token|id_token|client_secret|code_verifier|appsecret_proof|nonce)"""
    r"""["']?\s*[=:]\s*["']?)[^&\s"',;)]+""",
    re.IGNORECASE,
)

request_log = logging.getLogger("meter.request")

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def mask(text: str) -> str:
    """Masks email addresses, API keys, signed tokens and OAuth's codes, tokens and secrets in a piece of log text."""
    text = EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = API_KEY_RE.sub(lambda m: f"{m.group(1)}…", text)
    text = OAUTH_SECRET_RE.sub(lambda m: f"{m.group(1)}[masked]", text)
    return SIGNED_TOKEN_RE.sub("[token]", text)


def _extras(record: logging.LogRecord) -> dict:
    out = {}
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            out[key] = mask(value) if isinstance(value, str) else value
    if "request_id" not in out and has_app_context() and "request_id" in g:  # the fast path has no request context
        out["request_id"] = g.request_id
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        line.update(_extras(record))
        if record.exc_info:
            line["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, masked, with the extra fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        return mask(super().format(record)) + (f" [{extras}]" if extras else "")


def configure(log_format: str) -> None:
    """Put the chosen formatter on the root logger's plain stream handlers (not on pytest's)."""
    formatter: logging.Formatter = TextFormatter() if log_format == "text" else JsonFormatter()
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:
            handler.setFormatter(formatter)


def request_id(given: str | None) -> str:
    """The caller's X-Request-ID when it is a sane one, else a new one."""
    return given if given and REQUEST_ID_RE.match(given) else secrets.token_hex(8)


def log_request(method: str, rule: str | None, status: int, site: object, request_id: str, started: float) -> None:
    """The one line per request (written by `meter.web.http` for every answer)."""
    if not request_log.isEnabledFor(logging.INFO):  # LOG_LEVEL=WARNING: not even the fields are built
        return
    request_log.info(
        "%s %s %s",
        method,
        rule or "(no route)",
        status,
        extra={
            "request_id": request_id,
            "method": method,
            "route": rule,
            "site": site if isinstance(site, str) and len(site) <= 64 else None,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )


def init_app(app: Flask) -> None:
    configure(app.config.get("LOG_FORMAT", "json"))
