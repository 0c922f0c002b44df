"""The reader's own account over the API (header X-Reader-Token): password, address, export, deletion.

For a publisher's own account page; meter's `/{site}/account` does the same for readers who use
meter's pages. The rules are the domain's (`accounts.profile`, `reader_data`); this module only
maps their outcomes to the contract's answers.
"""

from __future__ import annotations

from flask import g, request

from meter.accounts import rate_limits as ratelimit
from meter.accounts.client import this_device
from meter.accounts.models import Reader
from meter.accounts.rules import profile, sessions
from meter.accounts.views.api import token_problem
from meter.accounts.views.api_readers import READER_TOKEN
from meter.platform import responses as out
from meter.platform import tokens
from meter.platform.openapi import Answer, describe
from meter.platform.problems import Problem
from meter.platform.redis_conn import RedisUnavailable
from meter.platform.schemas import DeletionBody, EmailChangeBody, PasswordChangeBody, TokenBody
from meter.platform.validation import parse
from meter.reader_data import Export, erasure, export
from meter.sites import api_blueprint

bp = api_blueprint("me_api", __name__)

WRONG_PASSWORD = Problem(401, "invalid-credentials", "Invalid credentials", "The password is not correct.")
NO_PASSWORD = Problem(
    403,
    "password-not-set",
    "No password",
    "This account signs in with another account and has no password: set one with a password reset first.",
)
REDIS_AWAY = Problem(
    503, "service-unavailable", "Service unavailable", "Try again shortly.", headers={"Retry-After": "5"}
)
TOKEN_401 = "A bad, expired or revoked reader token (`token-invalid`, `token-expired`)."


def signed_in() -> Reader:
    """The reader of X-Reader-Token, its session alive; 401 otherwise (as GET /v1/readers/me)."""
    status, reader = sessions.live_reader(g.site, request.headers.get("X-Reader-Token"))
    if reader is None:
        name = "token-expired" if status == "expired" else "token-invalid"
        raise Problem(401, name, "Reader token " + ("missing" if status == "none" else status), "Log in again.")
    return reader


def change_problem(exc: profile.ChangeError) -> Problem:
    return Problem(422, "validation-failed", "Validation failed", exc.message, {exc.field: exc.message})


@describe(
    "Change the password; every session of the reader ends, and a new reader token is given.",
    {200: Answer("The reader's new token (the one sent is now revoked).", out.ReaderToken)},
    body=PasswordChangeBody,
    errors={
        401: TOKEN_401 + " Or a wrong current password (`invalid-credentials`).",
        403: "The account has no password (`password-not-set`): a password reset sets one.",
    },
    params=READER_TOKEN,
    description="A notice is mailed to the reader's address. Every attempt counts against "
    "RATELIMIT_ACCOUNT_CHANGE (per account).",
)
@bp.post("/readers/me/password")
@ratelimit.account_change
def change_password():
    reader = signed_in()
    body = parse(PasswordChangeBody)
    try:
        return out.ReaderToken(
            reader_token=profile.change_password(
                g.site, reader, body.current_password, body.password, device=this_device()
            )
        )
    except profile.ChangeError as exc:
        raise change_problem(exc) from None
    except profile.WrongPassword:
        raise WRONG_PASSWORD from None
    except profile.NoPassword:
        raise NO_PASSWORD from None


@describe(
    "Change the address: a confirmation link goes to the new one; the old one stays until it is opened.",
    {202: Answer("The confirmation is on its way (also for an address taken on the site).", out.ConfirmationSent)},
    body=EmailChangeBody,
    errors={
        401: TOKEN_401 + " Or a wrong password (`invalid-credentials`).",
        403: "The account has no password (`password-not-set`): a password reset sets one.",
        422: "Invalid fields (`validation-failed`): not an address, or the account's own.",
        429: "Rate limited, or the new address's mail budget is spent (`rate-limited`); `Retry-After`.",
    },
    params=READER_TOKEN,
    description="An address that has an account on the site answers the same: that address gets an "
    '"already registered" mail instead of the link. Once the link is opened the old address gets a notice.',
)
@bp.post("/readers/me/email")
@ratelimit.account_change
def change_email():
    reader = signed_in()
    body = parse(EmailChangeBody)
    try:
        profile.request_email_change(g.site, reader, body.password, body.email)
    except profile.ChangeError as exc:
        raise change_problem(exc) from None
    except profile.WrongPassword:
        raise WRONG_PASSWORD from None
    except profile.NoPassword:
        raise NO_PASSWORD from None
    return out.ConfirmationSent(status="confirmation_sent"), 202


@describe(
    "Confirm an address change with the token of the link mailed to the new address.",
    {200: Answer("The account's address is now the new one.", out.EmailChanged)},
    body=TokenBody,
    errors={400: "Malformed JSON, or an expired (`token-expired`) or bad or used (`token-invalid`) token."},
)
@bp.post("/email-changes/confirm")
def confirm_email_change():
    body = parse(TokenBody)
    try:
        reader = profile.confirm_email_change(g.site, body.token)
    except tokens.TokenError as exc:
        raise token_problem(exc) from None
    return out.EmailChanged(email=reader.email)


@describe(
    "Everything meter holds about the reader, as JSON (the reader's copy of their data).",
    {200: Answer("The account, sign-in methods, sessions, unlocks, gifts, subscription and mails.", Export)},
    errors={401: TOKEN_401},
    params=READER_TOKEN,
)
@bp.get("/readers/me/export")
def export_data():
    reader = signed_in()
    response = export.export(g.site, reader)
    return Export(**response)


@describe(
    "Delete the account: every token stops working, the ledger keeps no link to the person.",
    {
        204: Answer("Deleted."),
        202: Answer("The account has no password: a link that confirms the deletion was mailed.", out.ConfirmationSent),
    },
    body=DeletionBody,
    errors={
        400: "Malformed JSON, or a `confirm_token` expired (`token-expired`) or not this account's (`token-invalid`).",
        401: TOKEN_401 + " Or a wrong or missing password (`invalid-credentials`).",
        429: "Rate limited, or (mailing the link) the address's mail budget is spent (`rate-limited`).",
    },
    params=READER_TOKEN,
    description='With a password: `{"password"}`. Without one (social sign-in only): `{}` mails a link whose '
    'token, as `{"confirm_token"}`, deletes. The address may register afresh afterwards.',
)
@bp.delete("/readers/me")
@ratelimit.account_change
def delete_me():
    reader = signed_in()
    body = parse(DeletionBody)
    if body.confirm_token is not None:
        try:
            named = erasure.reader_for_deletion(g.site, body.confirm_token)
        except tokens.TokenError as exc:
            raise token_problem(exc) from None
        if named.id != reader.id:
            raise token_problem(tokens.TokenError("invalid"))
    else:
        try:
            profile.check_password(reader, body.password or "")
        except profile.WrongPassword:
            raise WRONG_PASSWORD from None
        except profile.NoPassword:
            erasure.request_deletion(g.site, reader)
            return out.ConfirmationSent(status="confirmation_sent"), 202
    try:
        erasure.erase(g.site, reader, "reader")
    except RedisUnavailable:
        raise REDIS_AWAY from None
    return "", 204
