"""Provider secrets sealed at rest: Fernet (AES-128-CBC + HMAC-SHA256), with keys derived from SECRET_KEY.

The first key of SECRET_KEY, then SECRET_KEY_FALLBACKS, seals; every one of them opens, so a rotation
of SECRET_KEY (the old key moved to the fallbacks) loses no provider. A database dump alone reveals
no client secret or private key.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

_INFO = b"meter.login-provider-secrets.v1"


class SealError(Exception):
    """The sealed value opens with none of the configured keys (SECRET_KEY changed without a fallback)."""


@lru_cache(maxsize=32)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    config = current_app.config
    secrets = [config["SECRET_KEY"], *[k for k in config.get("SECRET_KEY_FALLBACKS", []) if k]]
    return MultiFernet([_fernet(secret) for secret in secrets])


def seal(plain: str) -> str:
    return _keys().encrypt(plain.encode("utf-8")).decode("ascii")


def reseal(sealed: str) -> str:
    """The same secret sealed with the current SECRET_KEY (before the old key leaves SECRET_KEY_FALLBACKS)."""
    try:
        return _keys().rotate(sealed.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError, ValueError):
        raise SealError("cannot open a provider secret with SECRET_KEY or SECRET_KEY_FALLBACKS") from None


def unseal(sealed: str) -> str:
    try:
        return _keys().decrypt(sealed.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError):
        raise SealError("cannot open a provider secret with SECRET_KEY or SECRET_KEY_FALLBACKS") from None
