"""The counting engine under meter's rate limits: the `limits` library's strategies on a storage of
one app, with in-memory counters only while that storage fails.

Kept apart from the limits themselves (`meter.accounts.rate_limits`), which decide what is keyed by what:
this module only counts, and knows nothing of requests. Only storage work runs inside `Limiter._run`
(keys are computed by the caller before), so an exception there is the storage's, never the request's.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import limits
from flask import Flask
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import STRATEGIES, RateLimiter

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=64)
def parse(setting: str) -> tuple[limits.RateLimitItem, ...]:
    """The items of a limit string such as "20/minute" or "1 per 3 minutes;5 per day" (ValueError when malformed)."""
    return tuple(limits.parse_many(setting))


def storage_uri(config: Mapping[str, Any]) -> str:
    """RATELIMIT_REDIS_URL, else REDIS_URL, in the `limits` library's schemes (redis://, rediss://,
    redis+cluster:// are its own; a unix socket is its redis+unix://)."""
    url = config.get("RATELIMIT_REDIS_URL") or config["REDIS_URL"]
    if url.startswith("unix://"):
        return "redis+unix://" + url.removeprefix("unix://")
    return url


class Limiter:
    """Counters on the app's Redis; in-memory ones only while that storage fails."""

    def __init__(self, app: Flask) -> None:
        self.uri = storage_uri(app.config)
        timeout = app.config["REDIS_SOCKET_TIMEOUT"]
        self.options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        self.strategy = STRATEGIES[app.config["RATELIMIT_STRATEGY"]]
        self.retry_after = float(app.config["REDIS_RETRY_AFTER"])
        self.memory: RateLimiter = self.strategy(MemoryStorage())
        self._primary: RateLimiter | None = None
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _storage(self) -> RateLimiter:
        """The Redis-backed limiter, made on first use (a cluster client connects when made)."""
        if self._primary is None:
            with self._lock:
                if self._primary is None:
                    storage = storage_from_string(self.uri, wrap_exceptions=True, **self.options)
                    self._primary = self.strategy(storage)
        return self._primary

    def _run(self, operation: Callable[[RateLimiter], int]) -> int:
        """`operation` on the Redis counters; on a failure of that storage, on the in-memory ones.

        Only storage work happens inside `operation` (keys are computed before), so an exception here
        is the storage's, never the request's.
        """
        if time.monotonic() >= self._down_until:
            try:
                return operation(self._storage())
            except Exception:  # a storage failure of any kind: count in memory meanwhile
                self._down_until = time.monotonic() + max(self.retry_after, 0.0)
                log.warning("rate-limit storage failed: in-memory counters for now", exc_info=True)
        return operation(self.memory)

    def wait(self, items: tuple[limits.RateLimitItem, ...], key: str, scope: str, count: bool) -> int:
        """Seconds to wait (0: allowed). With `count`, an allowed request spends one of each item.

        All items are tested before any is spent, so a refused request spends nothing (of "1 per 3
        minutes;5 per day", a refusal by the first does not eat into the second).
        """

        def operation(engine: RateLimiter) -> int:
            breached = [item for item in items if not engine.test(item, key, scope)]
            if not breached and count:
                breached = [item for item in items if not engine.hit(item, key, scope)]
            resets = [engine.get_window_stats(item, key, scope).reset_time for item in breached]
            return max((max(1, math.ceil(reset - time.time())) for reset in resets), default=0)

        return self._run(operation)

    def spend(self, items: tuple[limits.RateLimitItem, ...], key: str, scope: str) -> None:
        """Count one hit whatever the limit says (a failed login, counted after the answer)."""

        def operation(engine: RateLimiter) -> int:
            for item in items:
                engine.hit(item, key, scope)
            return 0

        self._run(operation)

    def clear(self, items: tuple[limits.RateLimitItem, ...], key: str, scope: str) -> None:
        def operation(engine: RateLimiter) -> int:
            for item in items:
                engine.clear(item, key, scope)
            return 0

        self._run(operation)
