"""The demo site's content endpoint: the article's body, only for a request that carries a valid grant.

This is what a publisher's content server does with content protection on (`flask sites settings
SLUG --content-protection on`): the article page carries no body, only `data-content-url`; meter.js
asks meter, and with the grant of an allowed, counted answer fetches
`GET /demo-site/content/<slug>` with `Authorization: Bearer <grant>`. The grant is verified here
offline, as a publisher would, with PyJWT and the site's JWK Set: the keys are fetched once and
kept, and fetched again only for a `kid` not seen yet (PyJWKClient). Checked: the signature, `iss`
(meter's PUBLIC_BASE_URL), `aud` (the site's slug), `exp`, and `art` (this article). Anything else
is 401, with no body.
"""

from __future__ import annotations

import threading

import jwt
from flask import Response, current_app, render_template_string

GRANT_ALGORITHMS = ["EdDSA", "ES256"]
_clients: dict[str, jwt.PyJWKClient] = {}
_lock = threading.Lock()
REFUSED = Response(
    "A valid grant for this article is needed.\n",
    401,
    {"WWW-Authenticate": 'Bearer error="invalid_token"', "Cache-Control": "no-store"},
    mimetype="text/plain",
)
BODY = "{% for p in paragraphs %}<p>{{ p }}</p>{% endfor %}"


def jwks_client(url: str) -> jwt.PyJWKClient:
    """One client per JWK Set URL for the process: its keys stay cached between requests."""
    with _lock:
        if url not in _clients:
            _clients[url] = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)
        return _clients[url]


def forget_keys() -> None:
    """Drop the cached sets (tests: as if their lifespan had passed)."""
    with _lock:
        _clients.clear()


def verified(authorization: str | None, site_slug: str, article_id: str) -> dict | None:
    """The grant's claims when it lets this reader read this article now; None otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    base = current_app.config["PUBLIC_BASE_URL"]
    try:
        key = jwks_client(f"{base}/{site_slug}/.well-known/jwks.json").get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=GRANT_ALGORITHMS,
            audience=site_slug,
            issuer=base,
            options={"require": ["iss", "aud", "art", "iat", "exp"]},
        )
    except (jwt.PyJWTError, ValueError):
        return None
    return claims if claims.get("art") == article_id else None


def body(authorization: str | None, site_slug: str, article_id: str, paragraphs: tuple[str, ...]) -> Response:
    if verified(authorization, site_slug, article_id) is None:
        return REFUSED
    response = Response(render_template_string(BODY, paragraphs=paragraphs), mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    return response
