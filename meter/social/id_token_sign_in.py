"""`POST /v1/sessions` with `{provider, id_token}`: for a publisher page that uses the provider's own sign-in
button (Sign in with Google or Apple) and hands meter the ID token it got.

The token passes the callback's checks (`clients.verify_id_token`) and the same account rules; a
token that fails any check is a 401 `id-token-invalid` that says no more (a forger learns nothing).
"""

from __future__ import annotations

import logging

import requests
from flask import g
from joserfc.errors import JoseError

from meter.accounts import reader_json, this_device
from meter.platform import metrics
from meter.platform import responses as out
from meter.platform.problems import Problem
from meter.platform.schemas import SocialLoginBody
from meter.social import oauth_clients as clients
from meter.social.rules import accounts, providers
from meter.social.rules.sealing import SealError

log = logging.getLogger(__name__)

INVALID = Problem(401, "id-token-invalid", "ID token invalid", "The ID token is not valid for this site's provider.")
UNAVAILABLE = Problem(
    503,
    "provider-unavailable",
    "Provider unavailable",
    "The provider's keys cannot be fetched just now.",
    headers={"Retry-After": "30"},
)


def _refuse(provider: str, kind: str, problem: Problem, exc: BaseException | None = None) -> Problem:
    metrics.social_failure(g.site.slug, provider, kind)
    log.info(
        "ID token sign-in with %s refused: %s",
        provider,
        kind,
        extra={"provider": provider, "failure": kind, "error": type(exc).__name__ if exc else None},
    )
    return problem


def social_login(body: SocialLoginBody) -> out.LoggedIn:
    try:
        config = providers.get(g.site, body.provider)
    except SealError:
        log.error("the secret of sign-in provider %r of %s cannot be opened", body.provider, g.site.slug)
        raise UNAVAILABLE from None
    if config is None or not config.is_openid:
        message = "not one of the site's OpenID Connect sign-in providers"
        raise Problem(422, "validation-failed", "Validation failed", message, {"provider": message})
    try:
        profile = clients.verify_id_token(config, body.id_token, body.nonce)
    except (requests.RequestException, clients.ProviderFailure) as exc:
        raise _refuse(config.name, "unreachable", UNAVAILABLE, exc) from None
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise _refuse(config.name, "id_token", INVALID, exc) from None
    outcome = accounts.sign_in(g.site, config.name, profile, g.site.locale, body.anonymous_id, device=this_device())
    if isinstance(outcome, accounts.NeedsAddress):
        message = "the ID token carries no verified address: sign in through meter's pages instead"
        raise _refuse(
            config.name,
            "address_required",
            Problem(422, "address-required", "Address required", message, {"id_token": message}),
        )
    return out.LoggedIn(reader_token=outcome.reader_token, reader=reader_json(outcome.reader))
