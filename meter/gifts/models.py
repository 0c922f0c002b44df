"""The tables of this feature: Gift, GiftOpening."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meter.platform.clock import utcnow
from meter.platform.db import db


class Gift(db.Model):
    """An article a subscriber gave: its link works for `expires_at`, for at most the policy's
    `gifts.devices` different readers or visitors, until revoked. The truth the gifted reads' Redis
    copy (meter.gifts.rules) is rebuilt from. `token` is the link's secret; a new one replaces a
    revoked or expired link when the same article is given again in the same period."""

    __tablename__ = "gifts"
    __table_args__ = (
        Index("ix_gifts_reader_created", "reader_id", "created_at"),
        {"sqlite_autoincrement": True},  # gift_openings name a gift by id: never given again (as readers')
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    article_id: Mapped[str] = mapped_column(String(512))
    article_class: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(2200))
    devices: Mapped[int]  # the device limit when it was made (the policy may change later)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    openings: Mapped[list[GiftOpening]] = relationship(
        back_populates="gift", cascade="all, delete-orphan", passive_deletes=True
    )


class GiftOpening(db.Model):
    """A device that opened a gift: the 8-byte hash (hex) of the reader or anonymous id, never the id."""

    __tablename__ = "gift_openings"
    __table_args__ = (UniqueConstraint("gift_id", "device", name="uq_gift_openings_gift_device"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gift_id: Mapped[int] = mapped_column(ForeignKey("gifts.id", ondelete="CASCADE"))
    device: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)

    gift: Mapped[Gift] = relationship(back_populates="openings")
