"""A mail as the receiving server should see it, built through Flask-Mail's public API.

Flask-Mail's own `Message` wraps text and HTML in `multipart/mixed` (meant for attachments, which
these mails never have), writes its Message-ID in the sending host's name (`@localhost` in a
container), and encodes even an ASCII display name as an encoded-word. Receivers and spam filters
read those as signs of careless bulk mail. `SiteMessage` keeps Flask-Mail's sending (its
`Connection.send` calls `as_bytes()`) and builds the message with the standard library's
`EmailMessage` instead: `multipart/alternative` (text first, HTML preferred), the Message-ID given
(in the sender's domain), `Auto-Submitted: auto-generated` (RFC 3834: auto-responders must not
answer it), and headers encoded only where they need to be.
"""

from __future__ import annotations

import email.policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from flask_mail import Message

POLICY = email.policy.SMTP  # CRLF line ends; headers folded and encoded only where needed


def address(value: str) -> Address:
    """`Name <address>` or an address as a header object (quoted or encoded by the policy as needed)."""
    name, addr = parseaddr(value)
    if not addr or "@" not in addr:
        raise ValueError(f"not an address: {value!r}")
    return Address(display_name=name, addr_spec=addr)


def message_id(sender: str) -> str:
    """A new Message-ID in the sender's domain, as a receiver checks it against the From."""
    return make_msgid(domain=address(sender).domain)


class SiteMessage(Message):
    """A text+HTML mail from one site's sender; `as_bytes()` is what Flask-Mail's connection sends."""

    def __init__(self, *, msg_id: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.msgId = msg_id or message_id(str(self.sender))

    def build(self) -> EmailMessage:
        msg = EmailMessage(policy=POLICY)
        msg["Subject"] = self.subject
        msg["From"] = address(str(self.sender))
        msg["To"] = [address(str(to)) for to in self.recipients]
        if self.reply_to:
            msg["Reply-To"] = address(str(self.reply_to))
        msg["Date"] = formatdate(self.date, localtime=True)
        msg["Message-ID"] = self.msgId
        msg["Auto-Submitted"] = "auto-generated"
        for name, value in (self.extra_headers or {}).items():
            msg[name] = value
        msg.set_content(self.body or "", subtype="plain", charset="utf-8")
        if self.html is not None:
            msg.add_alternative(self.html, subtype="html", charset="utf-8")
            for part in msg.iter_parts():
                del part["MIME-Version"]  # the standard library repeats it on the part it adds; once is enough
        return msg

    def as_bytes(self) -> bytes:
        return self.build().as_bytes()

    def as_string(self) -> str:
        return self.build().as_string()
