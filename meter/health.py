"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Flask
from sqlalchemy import text

from .extensions import db
from .problems import Problem
from .redisconn import RedisUnavailable, conn

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    checks = {"database": "ok", "redis": "ok"}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means not ready
        db.session.rollback()
        checks["database"] = "unreachable"
    try:
        redis = conn()
        redis.mark_up()  # readiness asks Redis itself, not the circuit breaker
        redis.call(redis.client.ping)
    except RedisUnavailable:
        checks["redis"] = "unreachable"
    if any(v != "ok" for v in checks.values()):
        failed = ", ".join(k for k, v in checks.items() if v != "ok")
        raise Problem(503, "not-ready", "Not ready", f"Unreachable: {failed}.")
    return {"status": "ready", "checks": checks}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
