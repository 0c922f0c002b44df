"""Argon2id password hashing (argon2-cffi), with a dummy hash so unknown emails take as long."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; bound the work an attacker can make us do


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def hasher() -> PasswordHasher:
    c = current_app.config
    return _hasher(c["ARGON2_TIME_COST"], c["ARGON2_MEMORY_COST"], c["ARGON2_PARALLELISM"])


@lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_cost, parallelism).hash("meter dummy password, never matches")


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not there is a hash to check (None: unknown account)."""
    c = current_app.config
    target = password_hash or _dummy_hash(c["ARGON2_TIME_COST"], c["ARGON2_MEMORY_COST"], c["ARGON2_PARALLELISM"])
    try:
        ok = hasher().verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None
