"""The tables of this feature: Unlock, UnlockDoubt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from meter.platform.clock import utcnow
from meter.platform.db import db


class Unlock(db.Model):
    """The ledger of unlocks: the truth the Redis meter is rebuilt from."""

    __tablename__ = "unlocks"
    __table_args__ = (
        UniqueConstraint("site_id", "subject", "meter", "period", "article_id", name="uq_unlocks_subject_article"),
        Index("ix_unlocks_subject_period", "site_id", "subject", "meter", "period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(160))  # "r:<reader id>" or "a:<anonymous id>"
    # The meter the unlock counted in (the policy's `meters`): "default" for the site's own.
    meter: Mapped[str] = mapped_column(String(32), default="default", server_default="default")
    period: Mapped[str] = mapped_column(String(32))
    article_id: Mapped[str] = mapped_column(String(512))
    unlocked_at: Mapped[datetime] = mapped_column(default=utcnow)


class UnlockDoubt(db.Model):
    """A recording check whose Redis reply was lost: the script may have unlocked the article or not.

    Settled by `metering.settle_doubts` (the worker, `flask meter settle`): in Redis → into the ledger,
    else forgotten. Without it, such an unlock lived in Redis only and was lost with Redis's data.
    """

    __tablename__ = "unlock_doubts"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(160))
    meter: Mapped[str] = mapped_column(String(32), default="default", server_default="default")
    article_id: Mapped[str] = mapped_column(String(512))
    checked_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
