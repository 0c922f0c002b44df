"""The tables of this feature: Reader, ReaderSession."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from meter.platform.clock import utcnow
from meter.platform.db import db


class Reader(db.Model):
    __tablename__ = "readers"
    __table_args__ = (
        UniqueConstraint("site_id", "email_key", name="uq_readers_site_email_key"),
        # The worker's retention duty looks for accounts never activated, oldest first.
        Index("ix_readers_unverified", "verified_at", "created_at"),
        # A deleted reader's id is never given again (tokens, Redis keys and the ledger name readers by
        # id); PostgreSQL's sequences never go back, SQLite's rowids do without this (migration 0019).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    # As the reader wrote it (normalised); mail goes only here.
    email: Mapped[str] = mapped_column(String(320))
    # NFKC + casefold: finds the account whatever the case or compatibility form typed.
    email_key: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    # While unverified: the password of the latest registration of this address, installed only when
    # the activation link mailed for that registration is clicked (meter.accounts.rules.confirm).
    pending_password_hash: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str] = mapped_column(String(8), default="id")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[datetime | None]
    subscription_until: Mapped[datetime | None]  # naive UTC
    # Bumped whenever the password changes: reset tokens and sessions made before die.
    auth_version: Mapped[int] = mapped_column(default=1)
    last_activation_sent_at: Mapped[datetime | None]
    # An address the reader asked to move to, until the link mailed there is clicked (accounts.profile).
    pending_email: Mapped[str | None] = mapped_column(String(320))
    # The seed of the experiments' variants (meter.sites.rules.experiments): the digest of the anonymous
    # id the reader registered, activated or first signed in with, so they stay in the variant they
    # had as a visitor; carried in their tokens. None: their own (reader_seed).
    variant_seed: Mapped[str | None] = mapped_column(String(32))

    @property
    def state(self) -> str:
        if self.is_subscriber():
            return "subscriber"
        return "verified" if self.verified_at else "registered"

    def is_subscriber(self, now: datetime | None = None) -> bool:
        return self.subscription_until is not None and self.subscription_until > (now or utcnow())


class ReaderSession(db.Model):
    """One login; a reader token names it, and revoking it kills the token everywhere.

    `device` is a short label made from the browser's User-Agent at login ("Chrome · Android"), kept
    so the reader can tell their sessions apart on the account page; never the User-Agent itself.
    """

    __tablename__ = "reader_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    device: Mapped[str | None] = mapped_column(String(80))
    # Last seen where meter looks the session up in SQL (pages, /v1/readers/me …), not on access checks.
    last_used_at: Mapped[datetime | None]
