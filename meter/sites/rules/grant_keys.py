"""A site's grant keys: made, rotated and retired by the operator (`flask sites grant-keys`, the console).

The private key is kept as a PEM sealed with SECRET_KEY (meter.social.rules.sealing), so a database
dump alone signs nothing; the public key is kept as a JWK for the site's JWK Set. One key signs at a
time (sites.signing_grant_key). `rotate` publishes a new key, which signs a little later, and keeps
the old one in the set for as long as a grant it signed can live (the longest grant lifetime, plus
the time every process may keep signing with it from its site cache); `retire` takes a key out at
once, for a leaked key.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app

from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites.models import GrantKey, Site
from meter.sites.rules import sites
from meter.social import sealing

ALGORITHMS = ("EdDSA", "ES256")
LIFETIME_MIN, LIFETIME_MAX = 10, 3600  # the bounds of the site setting `grant_lifetime` (s)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _make(alg: str) -> tuple[str, dict]:
    """(the private key as PEM, the public key as a JWK without kid)."""
    if alg == "EdDSA":
        private = Ed25519PrivateKey.generate()
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        numbers = private.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
    else:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}")
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return pem, jwk


def signing_key(site: Site) -> GrantKey | None:
    return sites.signing_grant_key(site)


def create(site: Site, alg: str = "EdDSA") -> GrantKey:
    """A new key that signs from now on (the caller commits). ValueError: an unknown algorithm."""
    pem, jwk = _make(alg)
    kid = "g" + secrets.token_hex(8)
    key = GrantKey(
        site=site,
        kid=kid,
        alg=alg,
        private_key=sealing.seal(pem),
        public_jwk=json.dumps({**jwk, "kid": kid, "alg": alg, "use": "sig"}),
    )
    db.session.add(key)
    return key


def rotate(site: Site, alg: str = "EdDSA") -> tuple[GrantKey, GrantKey | None]:
    """(the new key, the one it replaces). The new key is published at once and signs GRANT_KEY_AHEAD
    seconds later (sites.signing_grant_key); the old one signs until then, and stays in the set until
    no grant it signed can be valid: the longest grant lifetime after, plus SITE_CACHE_TTL, the time
    a process may keep signing with it from its cached site."""
    old = signing_key(site)
    if old is not None:
        now = utcnow()
        old.retired_at = now + timedelta(seconds=sites.GRANT_KEY_AHEAD)
        old.published_until = old.retired_at + timedelta(
            seconds=LIFETIME_MAX + float(current_app.config["SITE_CACHE_TTL"])
        )
    return create(site, alg), old


def retire(site: Site, kid: str) -> bool:
    """Take a key out of signing and out of the set now (its grants are refused from the next fetch of
    the set on); False when the site has no such key still published."""
    now = utcnow()
    for key in site.grant_keys:
        if key.kid == kid and (key.published_until is None or key.published_until > now):
            key.retired_at = now if key.retired_at is None or key.retired_at > now else key.retired_at
            key.published_until = now
            return True
    return False


def state(key: GrantKey, now: datetime | None = None) -> str:
    now = now or utcnow()
    if key.published_until is not None and key.published_until <= now:
        return "retired"
    if key.retired_at is not None and key.retired_at <= now:
        return "published"  # signs no more; its grants may still be valid
    return "signing" if key is sites.signing_grant_key(key.site) else "next"  # next: published, signs soon


def jwk_set(slug: str) -> dict | None:
    """The site's public keys now; None for an unknown site. Read from the database on every fetch, not
    from a process cache: a site's first key signs at once, and a verifier that fetched a set without
    it would refuse its grants until it may fetch again. Verifiers fetch rarely (the answer's
    Cache-Control, and again only on an unknown `kid`)."""
    site = sites.by_slug(slug)
    if site is None:
        return None
    now = utcnow()
    return {"keys": [json.loads(key.public_jwk) for key in site.grant_keys if state(key, now) != "retired"]}
