"""`GET /<site>/.well-known/jwks.json`: the public keys a publisher verifies the site's grants with.

Public and cacheable: a verifier (a publisher's content server, an edge worker) fetches it once and
again only on a `kid` it does not know. `max-age` is the site's grant lifetime, so a key made by a
rotation is fetched before the grants of the old one run out; a key rotated out stays listed until
every grant it signed has expired (meter.sites.rules.grant_keys).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, json

from meter.platform import responses as out
from meter.platform.openapi import Answer, describe
from meter.platform.problems import Problem
from meter.sites.rules import grant_keys as keys
from meter.sites.rules import sites

bp = Blueprint("jwks", __name__)


@describe(
    "The site's grant keys as a JWK Set (RFC 7517): every key that signs its grants, or signed one that may "
    "still be valid. An empty set: the site has no grant key. Cache-Control: public, max-age = the grant lifetime.",
    {200: Answer("The JWK Set.", out.JwkSet, media="application/jwk-set+json")},
    errors={404: "Unknown site."},
    secured=False,
)
@bp.get("/<site_slug>/.well-known/jwks.json")
def jwks(site_slug: str) -> Response:
    site = sites.info_by_slug(site_slug)  # cached: its grant lifetime
    found = keys.jwk_set(site_slug) if site is not None else None
    if site is None or found is None:
        raise Problem(404, "not-found", "Not Found", "No such site.")
    response = Response(json.dumps(found), mimetype="application/jwk-set+json")
    response.headers["Cache-Control"] = f"public, max-age={site.grant_lifetime}"
    response.headers["Access-Control-Allow-Origin"] = "*"  # public keys: an edge worker or a browser may fetch them
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
