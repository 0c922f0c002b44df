"""Console sign-ins: a random token in the browser's cookie, only its SHA-256 in `staff_sessions`.

A session is alive while it has not been ended (sign-out, the member disabled or set up afresh) and
its last request is less than STAFF_IDLE_SECONDS ago (12 hours); each request moves that mark (at
most once a minute, so browsing writes little). Checked in SQL on every console request: a disable
takes effect on the next click, in every process.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import update

from meter.console.models import Staff, StaffSession
from meter.platform.clock import utcnow
from meter.platform.db import db

TOUCH_EVERY = timedelta(minutes=1)


def _id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(staff: Staff) -> str:
    """A new session (the caller has checked the password and code); the token for the cookie."""
    token = secrets.token_urlsafe(32)
    db.session.add(StaffSession(id=_id(token), staff_id=staff.id))
    db.session.commit()
    return token


def current(token: str | None) -> tuple[Staff, StaffSession] | None:
    """The member and session of this cookie, or None (unknown, ended, idle too long, member disabled)."""
    if not token or len(token) > 200:
        return None
    row = db.session.get(StaffSession, _id(token))
    if row is None or row.ended_at is not None:
        return None
    staff = db.session.get(Staff, row.staff_id)
    now = utcnow()
    idle = timedelta(seconds=current_app.config["STAFF_IDLE_SECONDS"])
    if staff is None or staff.disabled_at is not None or staff.setup_at is None or now - row.last_seen_at > idle:
        row.ended_at = row.ended_at or now
        db.session.commit()
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        db.session.commit()
    return staff, row


def end(token: str | None) -> None:
    if token and len(token) <= 200:
        db.session.execute(
            update(StaffSession)
            .where(StaffSession.id == _id(token), StaffSession.ended_at.is_(None))
            .values(ended_at=utcnow())
        )
        db.session.commit()


def end_all(staff: Staff) -> None:
    """End every session of the member (the caller commits)."""
    db.session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff.id, StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
