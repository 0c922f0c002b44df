"""The one place meter reads the time, so that tests can travel to next month."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    return datetime.now(UTC) + _offset


def now_epoch() -> int:
    return int(now().timestamp())


def monotonic() -> float:
    """time.monotonic(), moved by the same travel: for durations such as a cache entry's age."""
    return time.monotonic() + _offset.total_seconds()


def travel(delta: timedelta) -> None:
    """Move meter's clock (tests only); `reset()` brings it back."""
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)


def utcnow() -> datetime:
    """Naive UTC, as stored; follows meter's clock so tests can travel in time."""
    return now().replace(tzinfo=None)
