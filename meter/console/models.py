"""The tables of this feature: Staff, StaffGrant, StaffSession, BulkResend."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meter.platform.clock import utcnow
from meter.platform.db import db

if TYPE_CHECKING:
    from meter.sites.models import Site


class Staff(db.Model):
    """A publisher's staff member: signs in to the console (`/console/`), never to a site as a reader.

    Made by `flask staff create`, which mails nothing: it prints a one-time set-up link (only its SHA-256
    is kept, in `setup_token_hash`) where the member sets a password (Argon2id, as readers) and enrols an
    authenticator. `totp_secret` is sealed at rest (meter.social.rules.sealing); `totp_last_step` is the
    time step of the last code accepted, so that a code cannot be used twice.
    """

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)  # NFKC + casefold, as readers'
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    setup_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    setup_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    setup_at: Mapped[datetime | None]  # when the password and authenticator were set: signing in works from then
    disabled_at: Mapped[datetime | None]

    grants: Mapped[list[StaffGrant]] = relationship(
        back_populates="staff", cascade="all, delete-orphan", order_by="StaffGrant.site_id"
    )


class StaffGrant(db.Model):
    """A staff member's role on one site: support < editor < owner (meter.console.rules.roles)."""

    __tablename__ = "staff_grants"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))

    staff: Mapped[Staff] = relationship(back_populates="grants")
    site: Mapped[Site] = relationship()


class StaffSession(db.Model):
    """One console sign-in. `id` is the SHA-256 of the cookie's token (a database dump holds no live
    session); it ends when signed out, when idle too long (STAFF_IDLE_SECONDS) or when the member is disabled."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class BulkResend(db.Model):
    """A console request to resend the activation mail to every unverified reader registered since a
    date: worked through by the worker in batches (`cursor` is the last reader id done), so the page
    can show its progress and a large site never ties up a request."""

    __tablename__ = "bulk_resends"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    since: Mapped[datetime]  # naive UTC: readers registered from then on
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    queued: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    cursor: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime | None]


class AuditEntry(db.Model):
    """One thing done through the console or the staff commands: who, when, what, on which site.

    `actor` and `site_slug` are kept as text, so the row still says who and where after the staff
    member or the site is gone. `detail` names what was changed (a reader id, a key prefix, the
    policy before and after), never a secret.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_site_at", "site_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(320))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    site_slug: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# StaffGrant.site names Site, a table of another feature: that class is mapped whenever this module is
# imported, so the relationship resolves even where nothing else imported its module (a test of rules
# without an app). At the end: in an import cycle, this module's classes exist by then.
import meter.sites.models  # noqa: E402, F401
