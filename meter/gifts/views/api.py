"""Gift articles for the publisher's server: give one, list this period's, revoke one (meter.gifts.rules)."""

from __future__ import annotations

from datetime import UTC

from flask import g, request

from meter.accounts import sessions
from meter.accounts.models import Reader
from meter.gifts.rules import links, store
from meter.platform import responses as out
from meter.platform.clock import utcnow
from meter.platform.openapi import Answer, describe
from meter.platform.problems import Problem
from meter.platform.redis_conn import RedisUnavailable
from meter.platform.schemas import GiftBody
from meter.platform.validation import parse
from meter.sites import SiteInfo, api_blueprint

bp = api_blueprint("gifts_api", __name__)

READER_TOKEN_HEADER = {
    "X-Reader-Token": {
        "name": "X-Reader-Token",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 4096},
    }
}
NOT_ALLOWED = Problem(
    403, "gift-not-allowed", "Gift not allowed", "Only subscribers can give articles, on a site that has gifts."
)
LIMIT_REACHED = Problem(
    403, "gift-limit-reached", "No gifts left", "This period's gifts are used up; more come with the next period."
)
TOKEN_ERRORS = {401: "Missing or wrong site key, or a bad, expired or revoked reader token."}


def live_reader(token: str | None) -> Reader:
    status, reader = sessions.live_reader(g.site, token)
    if reader is None:
        name = "token-expired" if status == "expired" else "token-invalid"
        raise Problem(401, name, "Reader token " + ("missing" if status == "none" else status), "Log in again.")
    return reader


def made_answer(made: store.Made) -> out.GiftMade:
    return out.GiftMade(
        gift_token=made.gift.token, url=made.gift.url, expires_at=store.expires_iso(made.gift), gifts_left=made.left
    )


def give(site: SiteInfo, reader: Reader, article_id: str, article_class: str, url: str) -> store.Made:
    """`store.make` with its refusals as problems (the embed's button shares it)."""
    try:
        return store.make(site, reader, article_id, article_class, url)
    except store.NotAllowed:
        raise NOT_ALLOWED from None
    except store.LimitReached:
        raise LIMIT_REACHED from None
    except store.BadUrl as exc:
        raise Problem(
            422,
            "validation-failed",
            "Validation failed",
            "Some fields are missing or invalid.",
            {"article.url": str(exc)},
        ) from None


@describe(
    "Give an article: a link anyone can read it with, for `gifts.days`, on up to `gifts.devices` devices.",
    {
        201: Answer("A new gift.", out.GiftMade),
        200: Answer(
            "The same article again this period: the same gift (a fresh link if it was revoked or expired), "
            "not counted.",
            out.GiftMade,
        ),
    },
    body=GiftBody,
    errors={
        **TOKEN_ERRORS,
        403: "Not a subscriber or gifts are off (`gift-not-allowed`); none left this period (`gift-limit-reached`).",
        422: "Invalid fields (`validation-failed`): a `free` article, or a URL that is not on the site's origins.",
    },
)
@bp.post("/gifts")
def make_gift():
    body = parse(GiftBody)
    reader = live_reader(body.reader_token)
    made = give(g.site, reader, body.article.id, body.article.class_, body.article.url)
    return made_answer(made), 201 if made.created else 200


@describe(
    "This period's gifts of the reader of X-Reader-Token, with how often each was opened.",
    {200: Answer("The gifts, newest first.", out.GiftList)},
    errors=TOKEN_ERRORS,
    params=READER_TOKEN_HEADER,
)
@bp.get("/gifts")
def list_gifts():
    reader = live_reader(request.headers.get("X-Reader-Token"))
    gifts = store.listing(g.site, reader)
    now = utcnow()
    devices = store.devices_of([gift.id for gift in gifts])
    try:
        reads = store.reads_of(g.site.id, gifts)
    except RedisUnavailable:
        reads = {}
    return out.GiftList(
        gifts=[
            out.GiftOut(
                gift_token=gift.token,
                url=gift.url,
                article={"id": gift.article_id, "class": gift.article_class},
                created_at=gift.created_at.replace(tzinfo=UTC).isoformat(),
                expires_at=store.expires_iso(gift),
                state=store.state_of(gift, now),
                devices=devices.get(gift.id, 0),
                device_limit=gift.devices,
                opened=max(reads.get(gift.id, 0), devices.get(gift.id, 0)),
            )
            for gift in gifts
        ],
        gifts_left=store.gifts_left(g.site, reader) if store.may_give(g.site, reader) else 0,
    )


@describe(
    "Revoke a gift: its link stops working at once.",
    {204: Answer("Revoked (also when it already was).")},
    errors={**TOKEN_ERRORS, 404: "Not a gift of this reader on this site (`gift-not-found`)."},
    params={**READER_TOKEN_HEADER, "gift_token": {"schema": {"type": "string", "maxLength": 256}}},
)
@bp.delete("/gifts/<gift_token>")
def revoke_gift(gift_token: str):
    reader = live_reader(request.headers.get("X-Reader-Token"))
    try:
        found = links.nonce_of(g.site.id, gift_token) is not None and store.revoke(g.site, reader, gift_token)
    except RedisUnavailable:
        raise Problem(
            503, "service-unavailable", "Service unavailable", "Try again shortly.", headers={"Retry-After": "5"}
        ) from None
    if not found:
        raise Problem(404, "gift-not-found", "Gift not found", "No such gift of this reader.")
    return "", 204
