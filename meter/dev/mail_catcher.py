"""The development mail catcher: an SMTP server on loopback that prints every mail and its links.

`make run` starts it (in the `meter.devserver` process) when MAIL_SERVER is unset, so that a newcomer
sees the activation mail in the terminal and can click its link. Nothing is delivered anywhere.
It can also run alone: `python -m meter.catcher --port 1025`.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import os
import re
import sys
import threading
import time
from collections.abc import Callable

from aiosmtpd.controller import Controller

from meter.dev.mail_inbox import Mailbox

# A link ends at whitespace, a quote or an angle bracket; trailing punctuation is not part of it.
LINK_RE = re.compile(r"""https?://[^\s<>"']+""")
HREF_RE = re.compile(r"""href\s*=\s*["'](https?://[^"']+)["']""", re.IGNORECASE)
PREFIX = "mail   | "


def _colour(code: str) -> Callable[[str], str]:
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return lambda text: text
    return lambda text: f"\033[{code}m{text}\033[0m"


def links_in(text: str, html_body: str = "") -> list[str]:
    """Every http(s) link of the text body (then of the HTML body), in order, without duplicates."""
    found = [link.rstrip(".,;:!?)]") for link in LINK_RE.findall(text)]
    found += [html.unescape(link) for link in HREF_RE.findall(html_body)]
    return list(dict.fromkeys(found))


def _label(link: str) -> str:
    if "/activate/" in link:
        return "activation link"
    if "/reset-password/" in link:
        return "password reset link"
    return "link"


class PrintingHandler:
    """aiosmtpd handler: accepts every mail and prints it (to, subject, text body, links)."""

    def __init__(self, write: Callable[[str], None] | None = None, mailbox: Mailbox | None = None) -> None:
        self._write = write or self._print
        self.mailbox = mailbox  # make run's inbox in the browser (meter.dev.mail_inbox)
        self._lock = threading.Lock()
        self.count = 0
        self.box = _colour("1;35")  # bold magenta: easy to spot between the server's log lines
        self.link = _colour("1;32")  # bold green

    @staticmethod
    def _print(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd hook
        try:
            self.show(envelope.rcpt_tos, envelope.content)
        except Exception as exc:  # noqa: BLE001 - a mail the catcher cannot show is still accepted
            self._write(f"{PREFIX}(could not show a mail: {type(exc).__name__}: {exc})\n")
        return "250 OK"

    def show(self, recipients: list[str], content: bytes | str) -> None:
        raw = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text_part = msg.get_body(preferencelist=("plain",))
        html_part = msg.get_body(preferencelist=("html",))
        text = text_part.get_content() if text_part is not None else ""
        html_body = html_part.get_content() if html_part is not None else ""
        links = links_in(text, html_body)
        with self._lock:
            self.count += 1
            if self.mailbox is not None:
                self.mailbox.add(self.count, recipients, raw)
            bar = "=" * 72
            lines = [
                self.box(f"{bar}"),
                self.box(f"MAIL #{self.count} caught at {time.strftime('%H:%M:%S')} (not delivered anywhere)"),
                f"To:      {', '.join(recipients)}",
                f"Subject: {msg.get('Subject', '')}",
                "",
                *(text or "(no text body)").rstrip("\n").splitlines(),
                "",
            ]
            if links:
                lines.append(self.box(f"Links in this mail ({len(links)}); open one in your browser:"))
                for link in links:
                    lines.append(f"  {_label(link)}:")
                    lines.append(f"    {self.link(link)}")
            else:
                lines.append("(no links)")
            lines.append(self.box(bar))
            prefix = self.box(PREFIX)
            self._write("".join(f"{prefix}{line}\n" for line in lines))


def start(
    host: str = "127.0.0.1",
    port: int = 1025,
    write: Callable[[str], None] | None = None,
    mailbox: Mailbox | None = None,
) -> Controller:
    """Start the catcher in a background thread; `.stop()` the returned controller to end it. With a
    `mailbox`, every mail is also kept there for the inbox (meter.dev.mail_inbox)."""
    handler = PrintingHandler(write, mailbox)
    controller = Controller(handler, hostname=host, port=port, enable_SMTPUTF8=True)
    controller.start()
    return controller


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args(argv)
    controller = start(args.host, args.port)
    print(f"{PREFIX}mail catcher listening on {args.host}:{args.port}; Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
