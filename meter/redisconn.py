"""The Redis client, its Lua scripts, and a short circuit breaker for when Redis is away.

When a call fails, Redis is skipped for REDIS_RETRY_AFTER seconds, so that an outage costs each
access check nothing rather than a socket timeout.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import redis
from flask import Flask, current_app
from redis.commands.core import Script

from . import metrics

EXT_KEY = "meter.redis"


class RedisUnavailable(Exception):
    pass


class RedisConn:
    def __init__(self, url: str, timeout: float, retry_after: float) -> None:
        self.url = url
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
        self.scripts: dict[str, Script] = {}
        for name in ("check",):
            source = resources.files("meter").joinpath("lua", f"{name}.lua").read_text("utf-8")
            self.scripts[name] = self.client.register_script(source)

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def call(self, fn, *args, **kwargs):
        """Run one Redis operation; RedisUnavailable if Redis is down (now or very recently)."""
        if not self.available():
            raise RedisUnavailable("redis marked down")
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError, OSError) as exc:
            self._down_until = time.monotonic() + self.retry_after
            metrics.redis_error()
            raise RedisUnavailable(str(exc)) from exc
        except redis.exceptions.ResponseError as exc:
            if "LOADING" in str(exc) or "MASTERDOWN" in str(exc) or "CLUSTERDOWN" in str(exc):
                raise RedisUnavailable(str(exc)) from exc
            raise

    def mark_up(self) -> None:
        self._down_until = 0.0


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL") or ""
    if not url:
        url = _embedded_url(app)
        app.config["REDIS_URL"] = url
    app.extensions[EXT_KEY] = RedisConn(url, app.config["REDIS_SOCKET_TIMEOUT"], app.config["REDIS_RETRY_AFTER"])


def _embedded_url(app: Flask) -> str:
    """The embedded Redis that `make run` starts under instance/ (see meter.embedded)."""
    from .embedded import socket_path

    return f"unix://{socket_path(app.instance_path)}"


def conn() -> RedisConn:
    return current_app.extensions[EXT_KEY]
