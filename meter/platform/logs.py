"""Logs: one line per request, as JSON (LOG_FORMAT=json, the default) or text (LOG_FORMAT=text).

Each request gets an id: the caller's X-Request-ID when it is a sane one (so a proxy's id carries
through), else a new one; it is echoed in the answer's X-Request-ID and put on every log line of
that request. A line names the route *pattern* (`/<site_slug>/activate/<token>`), never the path,
so tokens in URLs stay out of the logs; nothing logs bodies or query strings. Whatever a message
says, the formatter masks email addresses (`p***@example.com`), API keys (`mk_AbCdEf…`), signed tokens
and JWTs (`[token]`), and OAuth's codes, states, tokens and secrets (`code=[masked]`).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import secrets
import threading
import time
import weakref
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii

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
    if "@" not in text and "mk_" not in text and "." not in text and "=" not in text and ":" not in text:
        return text  # none of the patterns can match (each needs one of these): most fields of a request line
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
        if type(record) is RequestRecord and len(vars(record)) == _REQUEST_RECORD_SIZE:  # as log_request made it
            return _request_line(record)
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


class BufferedStreamHandler(logging.StreamHandler):
    """A stream handler that writes its lines in batches: one write and flush per batch, not per line.

    Why: the request line is written for every answer, and a flush per line is a system call per
    request. Lines wait at most SECONDS (a thread of each process flushes them) or LINES lines; a
    WARNING or worse is written at once with whatever waits before it. Pending lines are written
    before a fork (gunicorn's workers would repeat them) and at exit (`logging.shutdown` flushes).
    """

    LINES = 64
    SECONDS = 0.5

    def __init__(self, stream=None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._since = 0.0
        self._flusher = False  # this process's flushing thread is running
        _buffered.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 (logging's own rule: a bad record never breaks the caller)
            self.handleError(record)
            return
        pending = self._pending
        if not pending:
            self._since = time.monotonic()
        pending.append(line)
        if not self._flusher:
            self._flusher = True
            threading.Thread(target=self._flush_every, name="meter-log-flush", daemon=True).start()
        if (
            record.levelno >= logging.WARNING
            or len(pending) >= self.LINES
            or time.monotonic() - self._since >= self.SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        self.acquire()
        try:
            if self._pending:
                text = self.terminator.join(self._pending) + self.terminator
                self._pending.clear()
                self.stream.write(text)
            if self.stream and hasattr(self.stream, "flush"):
                self.stream.flush()
        except (OSError, ValueError):  # the stream is gone (closed at exit, a broken pipe): nothing to do
            pass
        finally:
            self.release()

    def _flush_every(self) -> None:
        while True:
            time.sleep(self.SECONDS)
            if self._pending:
                self.flush()


_buffered: weakref.WeakSet[BufferedStreamHandler] = weakref.WeakSet()


def _flush_before_fork() -> None:
    for handler in list(_buffered):
        handler.flush()


def _after_fork_in_child() -> None:
    global _request_ids, _request_id_prefix
    _request_id_prefix, _request_ids = _new_request_ids()
    _prototypes.clear()
    for handler in list(_buffered):
        handler._pending.clear()
        handler._flusher = False  # threads do not survive a fork: the child starts its own


def configure(log_format: str) -> None:
    """Put the chosen formatter on the root logger's plain stream handlers (not on pytest's), which
    become buffered ones (`BufferedStreamHandler`)."""
    formatter: logging.Formatter = TextFormatter() if log_format == "text" else JsonFormatter()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:
            buffered = BufferedStreamHandler(handler.stream)
            buffered.setLevel(handler.level)
            for kept in handler.filters:
                buffered.addFilter(kept)
            root.removeHandler(handler)
            root.addHandler(buffered)
            handler = buffered
        if type(handler) is BufferedStreamHandler:
            handler.setFormatter(formatter)


# --- the request id and the request line: what every answer pays, kept to the least ----------------


def _new_request_ids() -> tuple[str, itertools.count]:
    """A random prefix of this process (40 bits) and a counter: ids unique across workers and restarts
    without asking the kernel for randomness on every request."""
    return secrets.token_hex(5), itertools.count()


_request_id_prefix, _request_ids = _new_request_ids()


def request_id(given: str | None) -> str:
    """The caller's X-Request-ID when it is a sane one, else a new one (16 hex digits)."""
    global _request_id_prefix, _request_ids
    if given and REQUEST_ID_RE.match(given):
        return given
    n = next(_request_ids)
    if n > 0xFFFFFF:  # the counter's 6 digits are used up: a new prefix
        _request_id_prefix, _request_ids = _new_request_ids()
        n = next(_request_ids)
    return f"{_request_id_prefix}{n:06x}"


class RequestRecord(logging.LogRecord):
    """The request line's record, made by copying a prototype of this thread's instead of running
    `LogRecord.__init__` and `Logger.findCaller` for every request. A full LogRecord all the same:
    handlers, filters and pytest's caplog see the same attributes (and the same extra fields)."""


_prototypes: dict[int, dict] = {}


def _prototype() -> dict:
    prototype = _prototypes.get(threading.get_ident())
    if prototype is None:
        made = logging.LogRecord(
            request_log.name, logging.INFO, __file__, _LINE, "%s %s %s", (), None, func="log_request"
        )
        if len(_prototypes) > 1000:  # threads come and go (gthread): bound it anyway
            _prototypes.clear()
        prototype = _prototypes[threading.get_ident()] = vars(made)
    return prototype


def _start_time() -> float:
    """What LogRecord measures relativeCreated from (the logging module's import), in seconds: read
    from a record, since logging keeps it in a private name whose unit changed (nanoseconds in 3.13)."""
    probe = logging.LogRecord("", logging.INFO, "", 0, "", (), None)
    return probe.created - probe.relativeCreated / 1000


_START = _start_time()


def log_request(method: str, rule: str | None, status: int, site: object, request_id: str, started: float) -> None:
    """The one line per request (written by `meter.platform.http` for every answer): one call of the logger."""
    if not request_log.isEnabledFor(logging.INFO):  # LOG_LEVEL=WARNING: not even the fields are built
        return
    record = RequestRecord.__new__(RequestRecord)
    fields = record.__dict__
    fields.update(_prototype())
    now = time.time()
    fields["args"] = (method, rule or "(no route)", status)
    fields["created"] = now
    fields["msecs"] = int((now - int(now)) * 1000) + 0.0
    fields["relativeCreated"] = (now - _START) * 1000
    fields["request_id"] = request_id
    fields["method"] = method
    fields["route"] = rule
    fields["site"] = site if isinstance(site, str) and len(site) <= 64 else None
    fields["status"] = status
    fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    request_log.handle(record)


_LINE = log_request.__code__.co_firstlineno  # where the line comes from, as findCaller would have said


_REQUEST_RECORD_SIZE = len(vars(logging.LogRecord("", 0, "", 0, "", (), None))) + 6  # + the six fields above
_messages: dict[tuple, str] = {}
_second: tuple[int, str] = (0, "")  # the last whole second seen and its ISO text (one reference: threads)


def _iso_ms(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, the second's text kept."""
    whole = int(created)
    micros = round((created - whole) * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    global _second
    second = _second
    if second[0] != whole:
        second = _second = (whole, datetime.fromtimestamp(whole, UTC).isoformat()[:19])
    return f"{second[1]}.{micros // 1000:03d}+00:00"


def _json_text(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(mask(value))


def _request_line(record: RequestRecord) -> str:
    """The JSON line `JsonFormatter` would write for this record, from a template: the same bytes."""
    args = record.args
    message = _messages.get(args)  # type: ignore[arg-type]
    if message is None:
        if len(_messages) > 4096:
            _messages.clear()
        message = _messages[args] = encode_basestring_ascii(mask(record.getMessage()))  # type: ignore[index]
    fields = record.__dict__
    return (
        f'{{"time": "{_iso_ms(fields["created"])}", "level": "INFO", "logger": "meter.request", "message": {message}, '
        f'"request_id": {_json_text(fields["request_id"])}, "method": {_json_text(fields["method"])}, '
        f'"route": {_json_text(fields["route"])}, "site": {_json_text(fields["site"])}, '
        f'"status": {int(fields["status"])}, "duration_ms": {float(fields["duration_ms"])!r}}}'
    )


os.register_at_fork(before=_flush_before_fork, after_in_child=_after_fork_in_child)


def init_app(app: Flask) -> None:
    configure(app.config.get("LOG_FORMAT", "json"))
