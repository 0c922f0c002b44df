"""Reader calls: who am I (with the meter), and subscriptions set by the publisher's billing."""

from __future__ import annotations

from flask import g, request

from meter.access import metering
from meter.accounts.answers import reader_json
from meter.accounts.models import Reader
from meter.accounts.rules import sessions, subscriptions
from meter.platform import responses as out
from meter.platform.db import db
from meter.platform.openapi import Answer, describe
from meter.platform.problems import Problem
from meter.platform.schemas import SubscriptionBody
from meter.platform.validation import parse
from meter.sites import api_blueprint
from meter.social import accounts as social_accounts

bp = api_blueprint("readers_api", __name__)

READER_TOKEN = {
    "X-Reader-Token": {
        "name": "X-Reader-Token",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 4096},
    }
}


@describe(
    "The reader of X-Reader-Token, with this period's count in each meter of the site.",
    {200: Answer("The reader.", out.Me)},
    errors={401: "Missing or wrong site key, or a bad, expired or revoked reader token."},
    params=READER_TOKEN,
)
@bp.get("/readers/me")
def me():
    status, reader = sessions.live_reader(g.site, request.headers.get("X-Reader-Token"))
    if reader is None:
        name = "token-expired" if status == "expired" else "token-invalid"
        raise Problem(401, name, "Reader token " + ("missing" if status == "none" else status), "Log in again.")
    subject = metering.Subject.reader(reader.id).key
    return out.Me(
        **reader_json(reader),
        logins=social_accounts.logins(reader),
        meter=metering.summary(g.site, subject, reader.state),
        meters=metering.summaries(g.site, subject, reader.state),
    )


MAX_ID = 2**31 - 1  # readers.id is a 32-bit INTEGER on PostgreSQL; anything larger names no reader
READER_ID = {"reader_id": {"schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}}


def _reader_of_site(reader_id: int) -> Reader:
    reader = db.session.get(Reader, reader_id) if 0 < reader_id <= MAX_ID else None
    if reader is None or reader.site_id != g.site.id:
        raise Problem(404, "reader-not-found", "Reader not found", f"No reader {reader_id} on this site.")
    return reader


@describe(
    "Set the subscription's end (the publisher's billing calls this).",
    {200: Answer("The reader.", out.ReaderOut)},
    body=SubscriptionBody,
    errors={404: "No such reader on this site (`reader-not-found`)."},
    params=READER_ID,
)
@bp.put("/readers/<int:reader_id>/subscription")
def set_subscription(reader_id: int):
    reader = _reader_of_site(reader_id)
    body = parse(SubscriptionBody)
    subscriptions.set_until(reader, body.until)
    return reader_json(reader)


@describe(
    "End the subscription now.",
    {200: Answer("The reader.", out.ReaderOut)},
    errors={404: "No such reader on this site (`reader-not-found`)."},
    params=READER_ID,
)
@bp.delete("/readers/<int:reader_id>/subscription")
def end_subscription(reader_id: int):
    reader = _reader_of_site(reader_id)
    subscriptions.end(reader)
    return reader_json(reader)
