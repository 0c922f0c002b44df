"""The embed's gift button: `GET /embed/<site>/gifts` (how many are left, the label) and `POST` (give
this article), for the logged-in subscriber of this browser (meter's login cookie, CORS like the rest
of the embed; a GET without Origin, which browsers send on the same origin, is answered without CORS
headers). Not on the access check's path: meter.js asks only when the check said `can_give`.
"""

from __future__ import annotations

import json

from flask import Response, g, request
from flask_babel import gettext as _
from flask_babel import ngettext

from meter.access import article_signing
from meter.access import embed_shell as embed_access
from meter.accounts import live_reader
from meter.accounts.models import Reader
from meter.gifts.rules import store
from meter.gifts.views.api import NOT_ALLOWED, give
from meter.platform import cookies
from meter.platform import responses as out
from meter.platform.clock import now_epoch
from meter.platform.openapi import Answer, describe
from meter.platform.problems import Problem
from meter.platform.schemas import EmbedGiftBody
from meter.platform.validation import load_json, parse

bp = embed_access.embed_blueprint("gifts_embed", __name__)

ERRORS = {
    **embed_access.ERRORS,
    401: "No live login cookie (`unauthorized`); with the CORS headers.",
    403: "Not one of the site's origins (`origin-refused`, no CORS headers); not a subscriber or gifts are off "
    "(`gift-not-allowed`); none left this period (`gift-limit-reached`).",
}


def label(left: int) -> str:
    return ngettext("Gift this article (%(num)d left)", "Gift this article (%(num)d left)", left)


def _giver() -> Reader:
    _status, reader = live_reader(g.site, cookies.reader_token(g.site))
    if reader is None:
        raise Problem(401, "unauthorized", "Unauthorized", "Log in first.")
    if not store.may_give(g.site, reader):
        raise NOT_ALLOWED
    return reader


def _json(payload: dict, headers: dict, status: int = 200) -> Response:
    return Response(json.dumps(payload), status, mimetype="application/json", headers=headers)


@describe(
    "The gift button of the logged-in subscriber of this browser: gifts left and the button's label.",
    {200: Answer("Gifts left this period.", out.EmbedGifts)},
    method="get",
    errors=ERRORS,
    secured=False,
    params=embed_access.PARAMS,
    description=embed_access.CORS_DESCRIPTION,
)
@describe(
    "Give the page's article (the body: its article and URL, JSON sent as text/plain): a gift link to share.",
    {
        201: Answer("A new gift, with the link.", out.EmbedGiftMade),
        200: Answer("This article was given already this period: the same gift, not counted.", out.EmbedGiftMade),
    },
    method="post",
    body=EmbedGiftBody,
    body_media=("text/plain", "application/json"),
    errors={**ERRORS, 422: "Invalid fields, a free article, or a URL not on the site's origins (`validation-failed`)."},
    secured=False,
    params=embed_access.PARAMS,
    description=embed_access.CORS_DESCRIPTION,
)
@embed_access.describe_preflight("the gift button")
@bp.route("/<site_slug>/gifts", methods=["GET", "POST", "OPTIONS"])
def gifts() -> Response:
    if request.method == "GET" and "Origin" not in request.headers:
        # A browser sends no Origin on a same-origin GET (meter serving the publisher's pages itself, as the
        # demo site does). Reading the count changes nothing, and no other page can read it without CORS.
        headers: dict[str, str] = {"Cache-Control": "no-store", "Vary": "Origin"}
    else:
        headers = embed_access.cors()
    if request.method == "OPTIONS":
        return Response(status=204, headers=headers)
    reader = _giver()
    if request.method == "GET":
        left = store.gifts_left(g.site, reader)
        return _json(out.EmbedGifts(gifts_left=left, label=label(left)), headers)
    body = parse(EmbedGiftBody, load_json(request.get_data(cache=True)))
    item = body.article
    article_class = article_signing.trusted_class(
        g.site, item.id, item.class_, item.expires, item.sig, now_epoch(), item.section, item.campaign
    )
    if article_class == "free":
        raise Problem(
            422,
            "validation-failed",
            "Validation failed",
            "A free article is free for everyone.",
            {"article.class": "a free article cannot be given"},
        )
    made = give(g.site, reader, item.id, article_class, body.url)
    answer = out.EmbedGiftMade(
        gift_token=made.gift.token,
        url=made.gift.url,
        expires_at=store.expires_iso(made.gift),
        gifts_left=made.left,
        label=label(made.left),
        message=_(
            "Anyone with this link can read the article for %(days)d days.",
            days=g.site.policy.gifts_days,
        ),
        copy_label=_("Copy link"),
        copied_label=_("Copied"),
    )
    return _json(answer, headers, 201 if made.created else 200)
