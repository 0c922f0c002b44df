"""The platform's one table: the mail outbox (`meter.platform.mail`), which every feature's mail goes through."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from meter.platform.clock import utcnow
from meter.platform.db import db


class OutboxMail(db.Model):
    """Mail waiting for the worker; a request only ever writes here, never to SMTP.

    The headers that depend on the site (sender, reply_to, message_id) are fixed when the mail is
    queued, with its body: the footer that says "reply to this email" is then always true of the
    mail it is in, a retry keeps the Message-ID (so a receiver can drop a duplicate), and the worker
    needs no site settings. Rows queued before these columns existed have them NULL: the worker
    then uses MAIL_DEFAULT_SENDER.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(40))
    to_addr: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(String(400))  # "Name <address>", the From
    reply_to: Mapped[str | None] = mapped_column(String(320))
    message_id: Mapped[str | None] = mapped_column(String(255))  # "<…@the sender's domain>"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
