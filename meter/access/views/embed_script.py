"""The embed: `GET /embed/meter.js`, the script a publisher adds to its article pages, and its resend button
(the gift button is the gifts feature's, `meter.gifts.views.embed`).

The script asks `POST /embed/<site>/access` (served by `meter.access.views.embed`, with the other
access answers) and, on the verify wall, `POST /embed/<site>/resend`: the activation mail again to
the logged-in, unverified reader of this browser. Both answer only the site's own origins (CORS with
credentials; the Origin check stands in for a CSRF token).
"""

from __future__ import annotations

import json
from importlib import resources

from flask import Flask, Response, g, request
from flask_babel import gettext as _

from meter.access.embed_shell import cors, embed_blueprint
from meter.access.views import embed as embed_access
from meter.accounts import confirm, live_reader, mail_budget
from meter.accounts import rate_limits as ratelimit
from meter.platform import cookies
from meter.platform import responses as out
from meter.platform.openapi import Answer, describe
from meter.platform.problems import Problem

bp = embed_blueprint("embed", __name__)
SCRIPT = resources.files(__package__).joinpath("meter.js")


@describe(
    "The embed's script, for the publisher's article pages (`<script src=… data-site=…>`).",
    {200: Answer("JavaScript; Cache-Control: public, max-age=300.", media="text/javascript")},
    secured=False,
    unavailable=False,
)
@bp.get("/meter.js")
def script() -> Response:
    response = Response(SCRIPT.read_bytes(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@describe(
    "Send the activation mail again to the logged-in reader of this browser (cookies, CORS; no API key); "
    "within the address's mail budget (RATELIMIT_RESEND_EMAIL) and the per-IP resend limit. The body, JSON sent as "
    "text/plain, may name the page the new link returns the reader to (`url`, on one of the site's origins, as in the "
    "access check); anything else in it is ignored.",
    {
        200: Answer("Sent (nothing is sent to a verified reader).", out.EmbedResendSent),
        429: Answer(
            "The cool-down; `Retry-After` says how many seconds are left.",
            out.EmbedResendWait,
            headers={"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
        ),
    },
    method="post",
    errors={**embed_access.ERRORS, 401: "No live login cookie (`unauthorized`); with the CORS headers."},
    secured=False,
    params=embed_access.PARAMS,
    description=embed_access.CORS_DESCRIPTION,
)
@embed_access.describe_preflight("the resend button")
@bp.route("/<site_slug>/resend", methods=["POST", "OPTIONS"])
def resend() -> Response:
    headers = cors()
    if request.method == "OPTIONS":
        return Response(status=204, headers=headers)
    try:
        ratelimit.enforce(ratelimit.RESEND_IP)  # after the Origin check: a foreign page spends nothing
        _status, reader = live_reader(g.site, cookies.reader_token(g.site))
        if reader is None:
            raise Problem(401, "unauthorized", "Unauthorized", "Log in first.", headers=headers)
        confirm.resend(g.site, reader.email, _page())  # the address's mail budget, shared with every other path
    except (ratelimit.RateLimited, mail_budget.Spent) as exc:
        answer = out.EmbedResendWait(
            status="wait", retry_after=exc.retry_after, message=_("Wait a moment before asking for the link again.")
        )
        return Response(
            json.dumps(answer),
            429,
            mimetype="application/json",
            headers={**headers, "Retry-After": str(exc.retry_after)},
        )
    wait = mail_budget.wait(g.site.id, reader.email_key)
    answer = out.EmbedResendSent(status="sent", retry_after=wait, message=_("Sent. Check your email."))
    return Response(json.dumps(answer), mimetype="application/json", headers=headers)


def _page() -> str | None:
    """The `url` meter.js sends with the resend (the article being read), if the body holds one; a body
    that is not such JSON is ignored, as it was before the button sent one."""
    try:
        body = json.loads(request.get_data(cache=True) or b"{}")
    except (ValueError, RecursionError):
        return None
    url = body.get("url") if isinstance(body, dict) else None
    return url if isinstance(url, str) else None


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
