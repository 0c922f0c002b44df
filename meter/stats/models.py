"""The tables of this feature: DailyStat, ActivationTime."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from meter.platform.db import db


class DailyStat(db.Model):
    """The console's and /v1/stats' figures, per site and day (the site's time zone): one row per figure.

    `metric` is views (key: the access check's reason), registrations, activations, signins (key: the
    method), subscriptions_started or gifts_made. Views are counted in Redis by the access check's
    script and rolled up here by the worker each minute; the others are counted here as they happen.
    No row names a reader: deleting one leaves the figures as they were.
    """

    __tablename__ = "daily_stats"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True, default="")
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class ActivationTime(db.Model):
    """How long one reader took from registration to activation (for the median), without the reader."""

    __tablename__ = "activation_times"
    __table_args__ = (Index("ix_activation_times_site_day", "site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date]
    seconds: Mapped[int]
