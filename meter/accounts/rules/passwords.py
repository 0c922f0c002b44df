"""Argon2id password hashing (argon2-cffi), with a dummy hash so unknown emails take as long."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; bound the work an attacker can make us do
# The hash of a reader who has no password (made by a sign-in with another account, or whose
# password was dropped when the owner of the address claimed the account): no password matches it.
UNUSABLE = "!"


def usable(password_hash: str | None) -> bool:
    """Whether a password can log this reader in (an Argon2 hash, not UNUSABLE)."""
    return bool(password_hash) and password_hash.startswith("$argon2")


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
    """Constant work whether or not there is a hash to check (None: unknown account; UNUSABLE: no password)."""
    c = current_app.config
    real = password_hash if usable(password_hash) else None
    target = real or _dummy_hash(c["ARGON2_TIME_COST"], c["ARGON2_MEMORY_COST"], c["ARGON2_PARALLELISM"])
    try:
        ok = hasher().verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and real is not None
