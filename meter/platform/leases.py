"""A row of an outbox taken by one worker for a while: the mail outbox and the webhook deliveries.

Two workers (or a worker and `flask … retry`) may pick the same due row; the conditional UPDATE lets
exactly one take it, for `lease`, after which a worker that died holding it no longer blocks it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update

from meter.platform.clock import utcnow
from meter.platform.db import db


def claim(model: Any, row_id: int, done: Any, lease: timedelta) -> bool:
    """Take the row `row_id` of `model` (an outbox with `dead_at` and `locked_until`) unless it is
    finished (`done`, its sent/delivered column, set), dead, or held by another worker's lease."""
    now = utcnow()
    claimed = db.session.execute(
        update(model)
        .where(
            model.id == row_id,
            done.is_(None),
            model.dead_at.is_(None),
            or_(model.locked_until.is_(None), model.locked_until < now),
        )
        .values(locked_until=now + lease)
    ).rowcount
    db.session.commit()
    return claimed == 1
