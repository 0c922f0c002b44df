"""AMP access: `/amp/<site>/authorization` (never counts) and `/amp/<site>/pingback` (counts the view).

The reader is AMP's READER_ID (`rid`), an anonymous id unless a login through the reader pages with
`?rid=` linked it to a reader (`meter.amp_link`); meter's own login cookie counts too when the browser
sends it. CORS answers only the site's own origins and the AMP caches, with credentials, and echoes
`__amp_source_origin` when it is one of the site's origins. Answers are small (no personal data),
`Cache-Control: no-store`, and carry the amp-subscriptions fields `granted`, `grantReason`, `data`.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, Response, g, json, request

from meter.domain import amp_readers, judge
from meter.domain.sites import normalise_origin
from meter.web import cookies, validation
from meter.web.csrf import csrf
from meter.web.http import site_or_404
from meter.web.problems import Problem

bp = Blueprint("amp", __name__, url_prefix="/amp/<site_slug>")

AMP_CACHE_RE = re.compile(r"^https://[a-z0-9-]+\.(cdn\.ampproject\.org|bing-amp\.com)$")
GRANT = {"subscriber": "SUBSCRIBER", "free_content": "FREE"}


@bp.url_value_preprocessor
def load_site(_endpoint, values) -> None:
    g.site = site_or_404(values.pop("site_slug"))


def _cors() -> dict[str, str]:
    """The CORS headers for this request; a Problem (403, no CORS headers) for a refused origin."""
    headers = {"Vary": "Origin", "Cache-Control": "no-store"}
    origin = request.headers.get("Origin")
    if origin:
        norm = normalise_origin(origin)
        if norm != origin or not (norm in g.site.origins or AMP_CACHE_RE.match(norm)):
            raise Problem(403, "origin-refused", "Origin refused", "This origin may not ask about this site.")
        headers.update({"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"})
    source = request.args.get("__amp_source_origin")
    if source is not None:
        if normalise_origin(source) != source or source not in g.site.origins:
            raise Problem(403, "origin-refused", "Origin refused", "__amp_source_origin is not an origin of this site.")
        headers["AMP-Access-Control-Allow-Source-Origin"] = source
        headers["Access-Control-Expose-Headers"] = "AMP-Access-Control-Allow-Source-Origin"
    return headers


def _decide(record: bool):
    rid = request.args.get("rid", "")
    if not amp_readers.RID_RE.match(rid):
        raise Problem(400, "bad-request", "Bad request", "rid must be 8 to 128 of A-Za-z0-9_-.")
    url = request.args.get("url", "")
    item = validation.article(request.args.get("article") or url or None, request.args.get("class"))
    return judge.decide(
        g.site,
        item.id,
        item.class_,
        record,
        reader_token=cookies.reader_token(g.site),
        linked=amp_readers.reader_of(g.site, rid),
        anonymous_id=rid,
    )


@bp.route("/authorization", methods=["GET", "OPTIONS"])
def authorization() -> Response:
    headers = _cors()
    if request.method == "OPTIONS":
        return Response(status=204, headers={**headers, "Access-Control-Allow-Methods": "GET, POST"})
    decision, logged_in, _token = _decide(record=False)
    granted = decision.allowed
    meter = decision.meter()
    body = {
        "granted": granted,
        "grantReason": (GRANT.get(decision.reason, "METERING") if granted else None),
        "data": {
            "articlesRead": meter["used"],
            "articlesLeft": meter["remaining"],
            "articleLimit": meter["limit"],
            "isLoggedIn": logged_in,
        },
        "access": granted,
        "reason": decision.reason,
        "subscriber": decision.reason == "subscriber",
    }
    return Response(json.dumps(body, separators=(",", ":")), mimetype="application/json", headers=headers)


@bp.route("/pingback", methods=["POST", "OPTIONS"])
def pingback() -> Response:
    headers = _cors()
    if request.method == "OPTIONS":
        return Response(status=204, headers={**headers, "Access-Control-Allow-Methods": "GET, POST"})
    _decide(record=True)
    return Response(status=204, headers=headers)


def init_app(app: Flask) -> None:
    csrf.exempt(bp)  # no cookie-authenticated change of state beyond counting a view the reader made
    app.register_blueprint(bp)
