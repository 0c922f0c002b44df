"""Signed tokens: one itsdangerous serializer per purpose, each with its own salt.

A token of one purpose never verifies as another. Keys rotate through SECRET_KEY_FALLBACKS: the
current key signs, every listed key verifies. Payloads name what they vouch for (the email, the
password version, the session), so a token dies when that thing changes.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from flask import Config, current_app
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from meter.platform import clock

ACTIVATION = "activation"
RESET = "password-reset"
READER = "reader"
SOCIAL_LINK = "social-link"  # the activation mail that links another account's identity (meter.social.rules)
EMAIL_CHANGE = "email-change"  # the link mailed to a new address (meter.accounts.rules.profile)
ACCOUNT_DELETION = "account-deletion"  # the link that confirms a deletion without a password (accounts.erasure)

_SALTS = {
    ACTIVATION: "meter.activation.v1",
    RESET: "meter.password-reset.v1",
    READER: "meter.reader.v1",
    SOCIAL_LINK: "meter.social-link.v1",
    EMAIL_CHANGE: "meter.email-change.v1",
    ACCOUNT_DELETION: "meter.account-deletion.v1",
}
# How far the clock of the server that signed may run ahead of ours (several hosts behind a balancer).
CLOCK_SKEW = 60
_MAX_AGE_SETTING = {
    ACTIVATION: "ACTIVATION_MAX_AGE",
    RESET: "RESET_MAX_AGE",
    READER: "READER_TOKEN_MAX_AGE",
    SOCIAL_LINK: "ACTIVATION_MAX_AGE",
    EMAIL_CHANGE: "EMAIL_CHANGE_MAX_AGE",
    ACCOUNT_DELETION: "ACCOUNT_DELETION_MAX_AGE",
}


class _ClockSigner(TimestampSigner):
    """Reads meter's clock, so expiry follows the same time as everything else."""

    def get_timestamp(self) -> int:
        return int(clock.now().timestamp())


class TokenError(Exception):
    """`kind` is "expired" or "invalid"."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class Token:
    payload: dict[str, Any]
    issued_at: int


_serializers: dict[tuple, URLSafeTimedSerializer] = {}


def _serializer(purpose: str, config: Config | None = None) -> URLSafeTimedSerializer:
    """One serializer per purpose and key set, made once: building one costs more than verifying a token.
    `config`: the app's, when the caller has it already (each `current_app` costs a context lookup)."""
    if config is None:
        config = current_app.config
    keys = (*config.get("SECRET_KEY_FALLBACKS", []), config["SECRET_KEY"])  # last one signs
    cache_key = (purpose, keys)
    serializer = _serializers.get(cache_key)
    if serializer is None:
        if len(_serializers) > 64:  # keys rotate rarely; tests make many apps
            _serializers.clear()
        serializer = _serializers[cache_key] = URLSafeTimedSerializer(
            list(keys), salt=_SALTS[purpose], signer=_ClockSigner
        )
    return serializer


def make(purpose: str, payload: dict[str, Any]) -> str:
    return _serializer(purpose).dumps(payload)


# Signatures already verified, per (purpose, key set, token): a reader's token is checked on every access
# check, and its signature cannot change; its age is still judged each time. Bounded, per process.
_verified: dict[tuple, tuple[Any, int]] = {}
VERIFIED_CACHE_SIZE = 50_000


def _verify(purpose: str, token: str, config: Config) -> tuple[Any, int]:
    serializer = _serializer(purpose, config)
    cache_key = (purpose, tuple(serializer.secret_keys), token)
    hit = _verified.get(cache_key)
    if hit is not None:
        return hit
    payload, issued = serializer.loads(token, return_timestamp=True)
    result = (payload, int(issued.timestamp()))
    if len(_verified) >= VERIFIED_CACHE_SIZE:
        _verified.clear()
    _verified[cache_key] = result
    return result


def load(purpose: str, token: Any, max_age: int | None = None) -> Token:
    """Verify signature and age; raise TokenError("expired" | "invalid")."""
    if not isinstance(token, str) or not 10 <= len(token) <= 4096:
        raise TokenError("invalid")
    config = current_app.config
    if max_age is None:
        max_age = config[_MAX_AGE_SETTING[purpose]]
    try:  # the signature only; the age is judged below
        payload, issued_at = _verify(purpose, token, config)
    except (BadSignature, ValueError, TypeError, UnicodeError):
        raise TokenError("invalid") from None
    age = int(clock.now().timestamp()) - issued_at
    if age < -CLOCK_SKEW:
        raise TokenError("invalid")  # dated in the future: forged or minted by a broken clock, not "expired"
    if age > max_age:
        raise TokenError("expired")
    if not isinstance(payload, dict):
        raise TokenError("invalid")
    return Token(dict(payload), issued_at)


def _keys() -> tuple[str | bytes, ...]:
    """Every key in rotation, the signing key last."""
    config = current_app.config
    return (*config.get("SECRET_KEY_FALLBACKS", []), config["SECRET_KEY"])


def _digest(key: str | bytes, purpose: str, value: str) -> str:
    raw_key = key.encode("utf-8") if isinstance(key, str) else key
    message = f"meter.fingerprint.{purpose}\x00{value}".encode()
    return hmac.new(raw_key, message, hashlib.sha256).hexdigest()[:32]


def fingerprint(purpose: str, value: str) -> str:
    """A keyed digest that binds a token to a value (an address, a password hash) without revealing it.

    Why keyed: token payloads are signed, not encrypted; anyone holding a link can read them. A plain
    `sha256(email)` there confirmed a guessed address offline. An HMAC with the secret key, labelled
    per purpose (one token's digest of an address is not another's), confirms nothing without the key.
    """
    return _digest(_keys()[-1], purpose, value)


def fingerprint_matches(purpose: str, value: str, found: Any) -> bool:
    """Whether `found` (from a payload) is this value's fingerprint under any key in rotation, so links
    mailed before a key rotation keep working while the old key is a fallback. Constant time."""
    if not isinstance(found, str):
        return False
    matched = False
    for key in _keys():
        matched |= hmac.compare_digest(_digest(key, purpose, value), found)
    return matched
