"""What the embed's browser endpoints share (`/embed/<site>/…`, asked by meter.js from a site's pages):
the site from the path (an unknown one is a problem, not a page), CORS that answers only the site's
own origins with credentials, on answers and on refusals after the Origin was accepted, and how
those endpoints are described in /openapi.json.

The access check (`meter.access.views.embed`), the resend button (`meter.access.views.embed_script`)
and the gift button (`meter.gifts.views.embed`) each have a blueprint made here; the Origin check
stands in for a CSRF token on all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Blueprint, Response, g, request

from meter.platform.csrf import csrf
from meter.platform.i18n import choose_language
from meter.platform.openapi import Answer as OpenAnswer
from meter.platform.openapi import describe, query
from meter.platform.problems import Problem
from meter.sites import SiteInfo, info_by_slug, normalise_origin

ORIGIN_REFUSED = Problem(403, "origin-refused", "Origin refused", "Only the site's own pages may ask.")
NO_SITE = Problem(404, "not-found", "Not Found", "No such site.")

CORS_DESCRIPTION = (
    "Called by meter.js from the site's own pages, on meter's origin, with credentials: the reader is found by "
    "meter's cookies (the login cookie of the reader pages, or the anonymous id cookie `meter_anon` set here), "
    "never an API key. CORS answers only an `Origin` that is one of the site's origins "
    "(`Access-Control-Allow-Origin: <that origin>`, `Access-Control-Allow-Credentials: true`, `Vary: Origin`, "
    "`Cache-Control: no-store`), on answers and refusals alike; any other Origin, or none, is refused with 403 "
    "before anything is read or counted."
)
ERRORS = {
    403: "The Origin is missing or not one of the site's origins (`origin-refused`); no CORS headers.",
    404: "Unknown site.",
}
PARAMS = {
    "site_slug": {"description": "The site's slug (`data-site` of the script tag)."},
    "lang": query(
        "lang",
        "The reader's language for the wall, the banner and the messages (else the `lang` cookie, "
        "Accept-Language, the site's locale).",
        schema={"enum": ["id", "en"]},
    ),
}


def describe_preflight(what: str) -> Callable:
    return describe(
        f"CORS preflight for {what} (meter.js sends a simple request and needs none).",
        {204: OpenAnswer("The site's origin: the CORS headers, no body.")},
        method="options",
        errors=ERRORS,
        secured=False,
        params=PARAMS,
        description=CORS_DESCRIPTION,
    )


def site_or_problem(slug: str) -> SiteInfo:
    site = info_by_slug(slug)
    if site is None:
        raise NO_SITE
    return site


def allowed_origin(site: SiteInfo, headers: Mapping[str, str]) -> str | None:
    """The request's Origin when it is one of the site's own origins, else None."""
    origin = headers.get("Origin", "")
    if not origin or normalise_origin(origin) != origin or origin not in site.origins:
        return None
    return origin


def cors_headers(origin: str) -> list[tuple[str, str]]:
    return [
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Methods", "POST"),
        ("Access-Control-Allow-Headers", "Content-Type"),
        ("Access-Control-Max-Age", "600"),
        ("Vary", "Origin"),
        ("Cache-Control", "no-store"),
    ]


def cors() -> dict[str, str]:
    """Only the site's own origins; anything else is refused before the body is read."""
    origin = allowed_origin(g.site, request.headers)
    if origin is None:
        raise ORIGIN_REFUSED
    return dict(cors_headers(origin))


def embed_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint of browser endpoints under /embed: the site loaded from the path, the CORS headers
    on refusals too, exempt from CSRF tokens (the Origin check stands in for them)."""
    bp = Blueprint(name, import_name, url_prefix="/embed")

    @bp.url_value_preprocessor
    def load_site(_endpoint, values) -> None:
        if values and "site_slug" in values:
            g.site = site_or_problem(values.pop("site_slug"))
            g.lang = choose_language()

    @bp.after_request
    def cors_on_errors(response: Response) -> Response:
        """A refusal after the Origin was accepted carries the CORS headers too, so that meter.js on the
        site's page can read it instead of seeing a network error."""
        if "site" in g and "Access-Control-Allow-Origin" not in response.headers:
            origin = allowed_origin(g.site, request.headers)
            if origin is not None:
                response.headers.extend(cors_headers(origin))
        return response

    csrf.exempt(bp)
    return bp
