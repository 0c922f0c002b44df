"""Account calls: register, activate, resend, log in and out, reset a password."""

from __future__ import annotations

from flask import g

from meter.accounts import rate_limits as ratelimit
from meter.accounts.answers import reader_json
from meter.accounts.client import this_device
from meter.accounts.rules import confirm, passwords, recover, register, sessions
from meter.platform import responses as out
from meter.platform import tokens
from meter.platform.openapi import Answer, describe
from meter.platform.problems import Problem
from meter.platform.schemas import (
    ActivationBody,
    EmailBody,
    LoginBody,
    LogoutBody,
    RegisterBody,
    ResendBody,
    ResetConfirmBody,
    SessionBody,
    SocialLoginBody,
)
from meter.platform.validation import json_body, parse
from meter.sites import api_blueprint
from meter.social import social_login

bp = api_blueprint("accounts_api", __name__)

ACCEPTED = (out.Accepted(status="activation_sent"), 202)


def token_problem(exc: tokens.TokenError) -> Problem:
    if exc.kind == "expired":
        return Problem(400, "token-expired", "Token expired", "This link has expired; ask for a new one.")
    return Problem(400, "token-invalid", "Token invalid", "This link is not valid or was already used.")


@describe(
    "Register a reader; the activation mail is queued (202 also for a taken address: no enumeration).",
    {202: Answer("Activation mail queued.", out.Accepted)},
    body=RegisterBody,
)
@bp.post("/readers")
@ratelimit.register_ip
def create_reader():
    body = parse(RegisterBody)
    try:
        register.register(g.site, body.email, body.password, body.locale, body.next, body.anonymous_id)
    except register.RegistrationError as exc:
        raise Problem(422, "validation-failed", "Validation failed", exc.message, {exc.field: exc.message}) from None
    return ACCEPTED


@describe(
    "Send the activation mail again (202 whether or not the address exists). `next`, as at registration, "
    "is where the new link's page returns the reader.",
    {202: Answer("Accepted.", out.Accepted)},
    body=ResendBody,
)
@bp.post("/readers/resend-activation")
@ratelimit.resend_ip
def resend_activation():
    body = parse(ResendBody)
    confirm.resend(g.site, body.email, body.next)
    return ACCEPTED


@describe(
    "Activate with the token of the link; the first click gets a reader token.",
    {200: Answer("The reader is verified.", out.Activated)},
    body=ActivationBody,
    errors={400: "Malformed JSON, or an expired (`token-expired`) or bad (`token-invalid`) token."},
)
@bp.post("/activations")
def activate():
    body = parse(ActivationBody)
    try:
        result = confirm.activate(g.site, body.token, body.anonymous_id, device=this_device())
    except tokens.TokenError as exc:
        raise token_problem(exc) from None
    answer = out.Activated(reader_id=result.reader.id, state=result.reader.state)
    if result.reader_token:
        answer["reader_token"] = result.reader_token
    if result.next_url:
        answer["next"] = result.next_url
    return answer


@describe(
    "Log in: with an address and a password, or with an ID token from one of the site's sign-in providers.",
    {200: Answer("A reader token and the reader.", out.LoggedIn)},
    body=SessionBody,
    errors={
        401: "Wrong key (`unauthorized`), credentials (`invalid-credentials`), or an ID token that fails a check "
        "(`id-token-invalid`: signature, iss, aud, exp, nonce).",
        422: "Invalid fields (`validation-failed`, with `errors`), or an ID token without a verified address "
        "(`address-required`: sign in through meter's pages instead).",
        503: "The provider's keys cannot be fetched just now (`provider-unavailable`), or the database or Redis "
        "is unreachable; `Retry-After` says when.",
    },
    description="With `{provider, id_token}` (for a page that uses Sign in with Google or Apple itself), the ID "
    "token is checked against the provider's published keys (JWKS), its `iss`, `aud` (the provider's client id), "
    "`exp` and, when `nonce` is given, its nonce; the account rules are those of the sign-in pages.",
)
@bp.post("/sessions")
@ratelimit.login_fail_ip
@ratelimit.login_fail_account
def login():
    data = json_body()
    if isinstance(data, dict) and "id_token" in data:
        return social_login(parse(SocialLoginBody, data))
    body = parse(LoginBody, data)
    result = sessions.login(g.site, body.email, body.password, body.anonymous_id, device=this_device())
    if result is None:
        raise Problem(401, "invalid-credentials", "Invalid credentials", "The email or password is not correct.")
    token, reader = result
    return out.LoggedIn(reader_token=token, reader=reader_json(reader))


@describe(
    "Log out: the token stops working everywhere.",
    {204: Answer("Logged out.")},
    body=LogoutBody,
    errors={400: "Malformed JSON, or not a reader token of this site (`token-invalid`)."},
)
@bp.delete("/sessions")
def logout():
    body = parse(LogoutBody)
    if not sessions.logout(g.site, body.reader_token):
        raise Problem(400, "token-invalid", "Token invalid", "This reader token is not valid.")
    return "", 204


@describe("Ask for a password-reset mail (202 always).", {202: Answer("Accepted.", out.ResetAccepted)}, body=EmailBody)
@bp.post("/password-resets")
@ratelimit.reset_ip
@ratelimit.reset_email
def request_reset():
    body = parse(EmailBody)
    recover.request_reset(g.site, body.email)
    return out.ResetAccepted(status="reset_sent"), 202


@describe(
    "Set a new password with the token of the mail; older reader tokens stop working.",
    {200: Answer("A new reader token.", out.ReaderToken)},
    body=ResetConfirmBody,
    errors={400: "Malformed JSON, or an expired (`token-expired`) or bad (`token-invalid`) token."},
)
@bp.post("/password-resets/confirm")
def confirm_reset():
    body = parse(ResetConfirmBody)
    if not passwords.MIN_LENGTH <= len(body.password) <= passwords.MAX_LENGTH:
        message = f"from {passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters"
        raise Problem(422, "validation-failed", "Validation failed", message, {"password": message})
    try:
        reader_token = recover.confirm_reset(g.site, body.token, body.password, device=this_device())
    except tokens.TokenError as exc:
        raise token_problem(exc) from None
    return out.ReaderToken(reader_token=reader_token)
