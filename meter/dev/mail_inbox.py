"""The caught mails as a small inbox in the browser: `make run`'s mail catcher keeps them, this shows them.

A list (newest first), and for each mail its HTML as a reader's mail program would show it, its
text, and its raw source. Development only: `meter.dev.devserver` starts it on loopback beside the
catcher; no part of meter's app serves it, so it can never be reached where meter runs for real.

Why our own and not a catcher from PyPI with a web view (aiosmtpd's own has none; MailHog and Mailpit
are Go binaries; the Python ones are unmaintained or pull in a web framework of their own): the mails
are already in this process, one page of stdlib WSGI shows them, and nothing new is installed.

A mail's HTML is shown as the mail program would, inside a sandboxed frame whose answer forbids
scripts, forms and every fetch except images (`Content-Security-Policy: sandbox`), so a mail that
carries a reader-supplied string cannot run anything on this page.
"""

from __future__ import annotations

import email
import email.policy
import html
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

KEEP = 200  # the newest mails; older ones are dropped (the terminal still printed them)
# A mail's links open in a new tab, out of the sandbox: the activation link must work from here too.
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
HTML_POLICY = f"sandbox {SANDBOX}; default-src 'none'; img-src data: http: https:; style-src 'unsafe-inline'"
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'"


@dataclass(frozen=True)
class Caught:
    number: int
    at: float
    recipients: tuple[str, ...]
    raw: bytes

    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    def part(self, kind: str) -> str | None:
        body = self.message().get_body(preferencelist=(kind,))
        return body.get_content() if body is not None else None


class Mailbox:
    """The caught mails, newest last; thread-safe (the SMTP thread adds, the web threads read)."""

    def __init__(self, keep: int = KEEP) -> None:
        self._mails: deque[Caught] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, number: int, recipients: Iterable[str], raw: bytes) -> None:
        with self._lock:
            self._mails.append(Caught(number, time.time(), tuple(recipients), raw))

    def all(self) -> list[Caught]:
        with self._lock:
            return list(self._mails)

    def get(self, number: int) -> Caught | None:
        return next((mail for mail in self.all() if mail.number == number), None)


_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d1d1f}header{background:#333;color:#fff;padding:.5rem 1rem}"
    "header a{color:#fff}main{padding:1rem}table{border-collapse:collapse;width:100%}td,th{text-align:left;"
    "padding:.4rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}nav a{margin-right:1rem}"
    "iframe{width:100%;height:70vh;border:1px solid #ccc}pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}"
)


def _page(title: str, body: str) -> bytes:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><title>{html.escape(title)} · meter dev inbox</title>'
        f'<style>{_STYLE}</style></head><body><header><a href="/">meter dev inbox</a> · mails caught by '
        f"<code>make run</code>, delivered nowhere</header><main>{body}</main></body></html>"
    ).encode()


def _when(moment: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(moment))


def _listing(box: Mailbox) -> bytes:
    mails = box.all()[::-1]
    if not mails:
        return _page("Inbox", "<h1>Inbox (0)</h1><p>No mail yet. Register a reader on the demo site and reload.</p>")
    rows = "".join(
        f"<tr><td>{mail.number}</td><td>{_when(mail.at)}</td><td>{html.escape(', '.join(mail.recipients))}</td>"
        f'<td><a href="/{mail.number}">{html.escape(str(mail.message().get("Subject", "(no subject)")))}</a></td></tr>'
        for mail in mails
    )
    table = f"<table><thead><tr><th>#</th><th>caught</th><th>to</th><th>subject</th></tr></thead>{rows}</table>"
    return _page("Inbox", f"<h1>Inbox ({len(mails)})</h1>{table}")


def _mail_page(mail: Caught) -> bytes:
    msg = mail.message()
    heads = "".join(
        f"<tr><th>{name}</th><td>{html.escape(str(msg.get(name, '')))}</td></tr>"
        for name in ("From", "To", "Subject", "Date")
    )
    n = mail.number
    views = f'<nav><a href="/{n}/html">HTML</a><a href="/{n}/text">text</a><a href="/{n}/raw">source</a></nav>'
    shown = (
        f'<iframe src="/{n}/html" title="the mail as HTML" sandbox="{SANDBOX}"></iframe>'
        if mail.part("html") is not None
        else f"<pre>{html.escape(mail.part('plain') or '(no body)')}</pre>"
    )
    return _page(str(msg.get("Subject", "mail")), f"<h1>Mail #{n}</h1><table>{heads}</table>{views}{shown}")


def _links_in_new_tabs(text: str) -> str:
    """The mail's HTML with `<base target="_blank">` in its head: its links leave the sandboxed frame."""
    base = '<base target="_blank">'
    at = text.lower().find("<head>")
    return f"{text[: at + 6]}{base}{text[at + 6 :]}" if at >= 0 else base + text


Start = Callable[[str, list[tuple[str, str]]], object]


def app(box: Mailbox):
    """The inbox as a WSGI application: /, /N, /N/html, /N/text, /N/raw."""

    def answer(environ: dict, start_response: Start) -> list[bytes]:
        parts = [part for part in environ.get("PATH_INFO", "/").split("/") if part]
        status, kind, body, policy = "200 OK", "text/html; charset=utf-8", b"", PAGE_POLICY
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            status, kind, body = "405 Method Not Allowed", "text/plain; charset=utf-8", b"GET only\n"
        elif not parts:
            body = _listing(box)
        else:
            mail = box.get(int(parts[0])) if parts[0].isdigit() else None
            view = parts[1] if len(parts) == 2 else "" if len(parts) == 1 else None
            if mail is None or view not in ("", "html", "text", "raw"):
                status, kind, body = "404 Not Found", "text/plain; charset=utf-8", b"no such mail\n"
            elif view == "":
                body = _mail_page(mail)
            elif view == "html":
                body, policy = _links_in_new_tabs(mail.part("html") or "<p>(no HTML part)</p>").encode(), HTML_POLICY
            elif view == "text":
                kind, body = "text/plain; charset=utf-8", (mail.part("plain") or "(no text part)\n").encode()
            else:
                kind, body = "text/plain; charset=utf-8", mail.raw
        start_response(
            status,
            [
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Content-Security-Policy", policy),
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"),  # a mail's links carry tokens
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    return answer


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass  # the inbox's own requests would only clutter make run's output


class Inbox:
    """The inbox's HTTP server on host:port, in a daemon thread; `.stop()` ends it."""

    def __init__(self, box: Mailbox, host: str, port: int) -> None:
        self.server = make_server(host, port, app(box), server_class=_Server, handler_class=_QuietHandler)
        self.url = f"http://{host}:{self.server.server_port}/"
        self._thread = threading.Thread(target=self.server.serve_forever, name="mail-inbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
