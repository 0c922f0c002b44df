"""The Redis client, the Lua scripts registered on it, and a short circuit breaker for when Redis is away.

When a call fails, Redis is skipped for REDIS_RETRY_AFTER seconds, so that an outage costs each
access check nothing rather than a socket timeout. Failures are reported through the `on_error`
callback given at `init_app` (the app counts them in its metrics): this module knows nothing above it.
An outage is logged here, once when it starts, then a summary every REDIS_OUTAGE_LOG_SECONDS while it
lasts, and once when Redis is back (`OutageLog`): not a line per request, which buried everything
else (1,847 lines in 12 s under load). Each process logs its own. Scripts are package data of the modules that own them, registered once by name (`register_script`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from importlib.resources.abc import Traversable
from typing import Any

import redis
from flask import Flask, current_app
from redis.commands.core import Script
from redis.connection import Connection

from meter.platform.settings import ConfigError

try:
    from hiredis import pack_command
except ImportError:  # pragma: no cover - hiredis is in requirements.txt
    pack_command = None

EXT_KEY = "meter.redis"


class RedisUnavailable(Exception):
    """Redis could not answer. `sent`: the command may have reached Redis (and run) before the failure,
    as when a reply is lost to a timeout; False when Redis was skipped or refused it."""

    def __init__(self, message: str, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


log = logging.getLogger(__name__)


class OutageLog:
    """Redis's state as this process sees it, logged when it changes and summed up while it is away."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.since: float | None = None  # monotonic time of the first failure of this outage; None: up
        self._failed = 0
        self._logged = 0.0  # monotonic time of the last line
        self._lock = threading.Lock()

    def failed(self, cause: object) -> None:
        now = time.monotonic()
        with self._lock:
            self._failed += 1
            if self.since is None:
                self.since = self._logged = now
                log.warning("Redis unreachable (%s): answers are degraded until it is back", cause)
            elif now - self._logged >= self.every:
                self._logged = now
                log.warning(
                    "Redis still unreachable after %.0f s: %d calls failed or were skipped",
                    now - self.since,
                    self._failed,
                )

    def recovered(self) -> None:
        with self._lock:
            if self.since is None:
                return
            log.warning(
                "Redis reachable again after %.1f s: %d calls failed or were skipped",
                time.monotonic() - self.since,
                self._failed,
            )
            self.since, self._failed = None, 0


class _NotSent(redis.ConnectionError):
    """No connection could be made (refused, unreachable, timed out): the command never left."""


class RedisConn:
    def __init__(
        self,
        url: str,
        timeout: float,
        retry_after: float,
        on_error: Callable[[], None] = lambda: None,
        outage_log_every: float = 60.0,
    ) -> None:
        self.url = url
        self.on_error = on_error
        self.outage = OutageLog(outage_log_every)
        self.retry_after = retry_after
        self._down_until = 0.0
        if url.startswith("redis+cluster://"):
            from redis.cluster import RedisCluster

            self.client: Any = RedisCluster.from_url(
                "redis://" + url.removeprefix("redis+cluster://"),
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                decode_responses=True,
            )
        else:
            self.client = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
            )
        self._cluster = url.startswith("redis+cluster://")
        self._local = threading.local()
        self.scripts: dict[str, Script] = {}
        for name, source in _SCRIPTS.items():
            self.scripts[name] = self.client.register_script(source)

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def call(self, fn, *args, **kwargs):
        """Run one Redis operation; RedisUnavailable if Redis is down (now or very recently)."""
        if not self.available():
            self.outage.failed("skipped")
            raise RedisUnavailable("redis marked down")
        try:
            result = fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError, OSError) as exc:
            self._down_until = time.monotonic() + self.retry_after
            self.on_error()
            self.outage.failed(exc)
            # Only a script call knows that nothing was sent (`_evalsha`); any other failure may
            # have come after Redis ran the command.
            raise RedisUnavailable(str(exc), sent=not isinstance(exc, _NotSent)) from exc
        except redis.exceptions.ResponseError as exc:
            if "LOADING" in str(exc) or "MASTERDOWN" in str(exc) or "CLUSTERDOWN" in str(exc):
                self.outage.failed(exc)
                raise RedisUnavailable(str(exc)) from exc
            raise
        if self.outage.since is not None:  # one attribute read per call while Redis is up
            self.outage.recovered()
        return result

    def _own_connection(self) -> Connection:
        """This thread's own connection for the scripts (made again after a fork)."""
        local = self._local
        connection = getattr(local, "connection", None)
        if connection is None or local.pid != os.getpid():
            pool = self.client.connection_pool
            connection = local.connection = pool.connection_class(**pool.connection_kwargs)
            local.pid = os.getpid()
        return connection

    def redialled(self) -> bool:
        """Whether this thread's last script call was sent twice: the first may have run before its
        connection broke, so a recording check must not trust "already unlocked" to be old news."""
        return getattr(self._local, "redialled", False)

    def _evalsha(self, sha: str, keys: list, args: list):
        """One EVALSHA on this thread's own connection; a stale connection (Redis restarted) is redialled once.

        A first connection that cannot be made raises `_NotSent`: Redis never saw the script, so a
        recording check has no unlock in doubt (a refused connection is not a lost reply).
        """
        connection = self._own_connection()
        self._local.redialled = False
        for attempt in (1, 2):
            self._local.redialled = attempt == 2
            try:
                connection.connect()  # a no-op when connected
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                connection.disconnect()
                if attempt == 1:
                    raise _NotSent(str(exc)) from exc
                raise  # the first attempt may have run before its connection broke
            try:
                if pack_command is not None:  # hiredis packs in C; redis-py's wrapper loops over the args first
                    connection.send_packed_command([pack_command(("EVALSHA", sha, len(keys), *keys, *args))])
                else:
                    connection.send_command("EVALSHA", sha, len(keys), *keys, *args)
                return connection.read_response()
            except redis.exceptions.ResponseError:
                raise  # a whole reply was read: the connection is fine
            except redis.ConnectionError:
                connection.disconnect()
                if attempt == 2:
                    raise
            except BaseException:
                connection.disconnect()  # a timeout may leave half a reply behind
                raise
        raise AssertionError("unreachable")

    def run_script(self, name: str, keys: list, args: list):
        """EVALSHA a registered script (SCRIPT LOAD once if Redis lacks it); RedisUnavailable as `call`.

        Why not `Script.__call__`: this is the access check's one Redis call. On a plain Redis it goes
        over a connection of the thread's own, not through the pool: redis-py's pool checkout polls
        the socket and records metrics on every command, about half the client-side CPU of the call.
        """
        script = self.scripts[name]
        try:
            return self.call(self._evalsha_any, script.sha, keys, args)
        except redis.exceptions.NoScriptError:
            return self.call(script, keys=keys, args=args)  # loads it, then EVALSHA again

    def _evalsha_any(self, sha: str, keys: list, args: list):
        if self._cluster:
            return self.client.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        return self._evalsha(sha, keys, args)

    def mark_up(self) -> None:
        self._down_until = 0.0


_SCRIPTS: dict[str, str] = {}


def register_script(name: str, source: Traversable) -> None:
    """Make a Lua script (package data of the module that owns it) callable as `run_script(name, …)`.

    Called at import time by its owner, before any app is made: every connection registers all of them.
    """
    _SCRIPTS[name] = source.read_text("utf-8")


def init_app(app: Flask, on_error: Callable[[], None] = lambda: None) -> None:
    url = app.config.get("REDIS_URL") or ""
    if not url:
        raise ConfigError("REDIS_URL is not set: set it, such as redis://127.0.0.1:6379/0")
    try:
        app.extensions[EXT_KEY] = RedisConn(
            url,
            app.config["REDIS_SOCKET_TIMEOUT"],
            app.config["REDIS_RETRY_AFTER"],
            on_error=on_error,
            outage_log_every=app.config.get("REDIS_OUTAGE_LOG_SECONDS", 60.0),
        )
    except ValueError as exc:  # the URL itself (never echoed: it may hold a password)
        raise ConfigError(f"REDIS_URL cannot be used ({exc}): give one such as redis://127.0.0.1:6379/0") from None


def conn() -> RedisConn:
    return current_app.extensions[EXT_KEY]
