"""The checks every ID token passes, whichever route brought it (the callback or `POST /v1/sessions`).

Authlib verifies the signature against the provider's published keys (JWKS) and the claims given
here. Its defaults are not enough on their own: without options it checks `iss` only when the
discovery document names an issuer and never compares `aud` with the client id (only `azp`), and
it takes the signing algorithms from the provider's own document, `none` included if listed. So
`iss`, `aud`, `sub`, `exp` and `iat` are made essential with the values this provider must carry,
and only asymmetric algorithms are accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from meter.social.rules.accounts import Profile
from meter.social.rules.providers import Provider

# Public-key signatures only: never `none`, never HS* (whose key would be our own client secret).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519")
LEEWAY = 60  # seconds of clock difference allowed on exp and iat


def claims_options(provider: Provider) -> dict[str, dict[str, Any]]:
    issuers = [provider.issuer]
    if provider.kind == "google" and provider.issuer and provider.issuer.startswith("https://"):
        issuers.append(provider.issuer.removeprefix("https://"))  # Google also signs "accounts.google.com"
    return {
        "iss": {"essential": True, "values": issuers},
        "aud": {"essential": True, "value": provider.client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }


def algorithms(advertised: Iterable[str] | None) -> list[str]:
    """The algorithms to accept: those the provider advertises that are in ALGORITHMS (RS256 when it says none)."""
    allowed = [alg for alg in (advertised or ()) if alg in ALGORITHMS]
    return allowed or ["RS256"]


def verified_flag(value: object) -> bool:
    """OpenID Connect's `email_verified` is a boolean; Apple sends the string "true"."""
    return value is True or value == "true"


def profile(claims: Mapping[str, Any]) -> Profile:
    """Who the verified claims (of an ID token, or of the userinfo answer for the same `sub`) name."""
    email = claims.get("email")
    email = email if isinstance(email, str) and 0 < len(email) <= 320 else None
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    verified = email is not None and verified_flag(claims.get("email_verified"))
    return Profile(str(claims["sub"]), email, verified, name)
