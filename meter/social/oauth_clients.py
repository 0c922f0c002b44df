"""Authlib's Flask client, one per site and provider: the authorization-code flow with state, nonce and
PKCE (S256), the token exchange, the ID token's checks, Facebook's Graph API.

Each provider gets its own Authlib client (`FlaskOAuth2App`), built from its configuration and kept
per process, so the discovery document and the keys (JWKS) are fetched once, not per sign-in. A
client is rebuilt when the operator replaces the provider, and every half hour (a fresh discovery
document; for Apple, a fresh client-secret JWT). Two places are meter's own, through the hooks
Authlib offers for them:

- where a started sign-in's state lives (`StateIntegration`): in Redis, used once, bound to the
  browser (`meter.social.rules.state`), instead of Flask's cookie session, which a replayed
  callback could present again and which Apple's cross-site form post does not carry;
- what the ID token must say (`meter.social.rules.id_tokens`): `iss`, `aud`, `sub`, `exp`, `iat`
  essential, and asymmetric algorithms only; a forced refresh of the keys for an unknown `kid` at
  most once a minute, so forged `kid`s cannot make meter hammer the provider.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Any

from authlib.integrations.base_client import MismatchingStateError
from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App
from authlib.oidc.core import CodeIDToken
from flask import current_app, g, request

from meter.social.rules import id_tokens
from meter.social.rules import state as social_state
from meter.social.rules.accounts import Profile
from meter.social.rules.providers import Provider, redirect_uri

CLIENT_TTL = 1800.0  # seconds a built client (its discovery document, Apple's client secret) is kept
JWKS_REFRESH_GAP = 60.0  # at most one forced refresh of a provider's keys per this many seconds
BINDING_COOKIE = "meter_sso"
CANCELLED = frozenset({"access_denied", "user_cancelled_authorize"})  # OAuth's, and Apple's form post


class ProviderFailure(Exception):
    """The provider answered, but not with a usable sign-in (an error, no ID token, a mismatch)."""


class IssuerMismatch(ProviderFailure):
    """The authorization response names another issuer (RFC 9207): a mix-up or a forged response, not a
    provider's failure. Its state is used up."""


class StateIntegration(FlaskIntegration):
    """Authlib's storage of a started sign-in, kept by meter.social.rules.state (Redis, once, this browser)."""

    def __init__(self, name: str, provider: Provider) -> None:
        super().__init__(name)
        self.site_id, self.provider = provider.site_id, provider.name

    def set_state_data(self, session, state, data) -> None:
        extra = g.get("social_extra") or {}
        social_state.save(self.site_id, self.provider, state, {**data, **extra}, g.social_binding)

    def get_state_data(self, session, state):
        data = social_state.take(self.site_id, self.provider, state, request.cookies.get(BINDING_COOKIE))
        g.social_state = data  # the view reads where to return (next, rid, lang) from it
        return data

    def clear_state_data(self, session, state) -> None:
        """`take` has deleted it already."""


class MeterOAuth2App(FlaskOAuth2App):
    """Authlib's Flask client, with the discovery document checked and the key refresh throttled."""

    provider: Provider
    checked = False  # its discovery document (OpenID providers: _build gives them one) was read and checked

    def load_server_metadata(self) -> dict:
        metadata = super().load_server_metadata()  # fetched once, then Authlib's copy
        if self.provider.is_openid and not self.checked:
            if metadata.get("issuer") != self.provider.issuer:  # OpenID Connect Discovery 1.0, section 4.3
                _forget(self)  # the next attempt builds a client, which reads the document again
                raise ProviderFailure("the discovery document names another issuer")
            advertised = metadata.get("id_token_signing_alg_values_supported")
            metadata["id_token_signing_alg_values_supported"] = id_tokens.algorithms(advertised)
            self.checked = True
        return metadata

    def fetch_jwk_set(self, force: bool = False) -> dict:
        if force and self.server_metadata.get("jwks"):
            last = self.server_metadata.get("_jwks_forced_at", 0.0)
            if time.monotonic() - last < JWKS_REFRESH_GAP:
                return self.server_metadata["jwks"]
            self.server_metadata["_jwks_forced_at"] = time.monotonic()
        return super().fetch_jwk_set(force=force)


_lock = threading.Lock()
_clients: dict[tuple[int, str], tuple[str, float, MeterOAuth2App]] = {}


def client_for(provider: Provider) -> MeterOAuth2App:
    key = (provider.site_id, provider.name)
    config = current_app.config
    # Rebuilt when the operator replaced the provider, or where it lives changed (GOOGLE_ISSUER, …).
    version = "|".join(
        (provider.version, provider.issuer or "", config["FACEBOOK_DIALOG_URL"], config["FACEBOOK_GRAPH_URL"])
    )
    now = time.monotonic()
    with _lock:
        hit = _clients.get(key)
    if hit is not None and hit[0] == version and now - hit[1] < CLIENT_TTL:
        return hit[2]
    client = _build(provider)
    with _lock:
        if len(_clients) > 1000:
            _clients.clear()
        _clients[key] = (version, now, client)
    return client


def forget_clients() -> None:
    with _lock:
        _clients.clear()


def _forget(client: MeterOAuth2App) -> None:
    """This client is not kept (a newer one for its provider stays)."""
    key = (client.provider.site_id, client.provider.name)
    with _lock:
        hit = _clients.get(key)
        if hit is not None and hit[2] is client:
            del _clients[key]


def _build(provider: Provider) -> MeterOAuth2App:
    config = current_app.config
    client_kwargs: dict[str, Any] = {
        "code_challenge_method": "S256",
        "default_timeout": config["SOCIAL_HTTP_TIMEOUT"],
    }
    options: dict[str, Any] = {}
    if provider.kind == "facebook":
        graph = config["FACEBOOK_GRAPH_URL"]
        client_kwargs.update(scope="email public_profile", token_endpoint_auth_method="client_secret_post")
        options.update(
            authorize_url=config["FACEBOOK_DIALOG_URL"],
            access_token_url=f"{graph}/oauth/access_token",
            api_base_url=f"{graph}/",
        )
    else:
        options["server_metadata_url"] = f"{provider.issuer}/.well-known/openid-configuration"
        client_kwargs["scope"] = "openid email profile"
        if provider.kind == "apple":
            # Apple asks for "name email", answers those scopes with a form post, and takes the
            # client secret (a JWT) in the body.
            client_kwargs.update(scope="openid name email", token_endpoint_auth_method="client_secret_post")
            options["authorize_params"] = {"response_mode": "form_post"}
    framework = StateIntegration(f"{provider.site_id}:{provider.name}", provider)
    client = MeterOAuth2App(
        framework,
        framework.name,
        client_id=provider.client_id,
        client_secret=provider.client_secret(),
        client_kwargs=client_kwargs,
        **options,
    )
    client.provider = provider
    return client


# --- the flow --------------------------------------------------------------------------------------


def start(provider: Provider, site_slug: str, binding: str, extra: dict[str, Any]):
    """The redirect to the provider; its state (with `extra`: next, rid, lang) saved for this browser."""
    g.social_binding, g.social_extra = binding, extra
    return client_for(provider).authorize_redirect(redirect_uri(site_slug, provider.name))


def abandon(provider: Provider) -> dict | None:
    """The provider sent an error instead of a code: the started sign-in ends (its state is used up)."""
    return client_for(provider).framework.get_state_data(None, request.values.get("state"))


def finish(provider: Provider) -> Profile:
    """Exchange the code (with the PKCE verifier and the state's checks) and say who signed in.

    Raises authlib's OAuthError (MismatchingStateError for a wrong, used or foreign state), joserfc's
    JoseError (the ID token failed a check), requests' RequestException (the provider is unreachable),
    IssuerMismatch (a response naming another issuer, for a state of this browser) or ProviderFailure.
    """
    client = client_for(provider)
    if provider.is_openid:
        given_issuer = request.values.get("iss")
        if given_issuer is not None and given_issuer != provider.issuer:  # RFC 9207: a mix-up
            if client.framework.get_state_data(None, request.values.get("state")) is None:
                raise MismatchingStateError()  # nobody's sign-in: refused as any unknown state is
            raise IssuerMismatch("the authorization response names another issuer")
        token = client.authorize_access_token(
            claims_options=id_tokens.claims_options(provider), leeway=id_tokens.LEEWAY
        )
        if not (g.get("social_state") or {}).get("nonce"):
            raise ProviderFailure("the started sign-in had no nonce")  # never: openid scope makes one
        claims = token.get("userinfo")
        if not claims:
            raise ProviderFailure("no ID token in the token response")
        found = id_tokens.profile(claims)
        if found.email is None and client.load_server_metadata().get("userinfo_endpoint"):
            info = client.userinfo(token=token)  # a provider that keeps the address out of the ID token
            if info.get("sub") != claims["sub"]:
                raise ProviderFailure("the userinfo answer is about another subject")
            found = id_tokens.profile({**info, "sub": claims["sub"]})
        return found
    token = client.authorize_access_token()
    access_token = token.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise ProviderFailure("no access token in the token response")
    proof = hmac.new(provider.secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()
    response = client.get("me", token=token, params={"fields": "id,name,email", "appsecret_proof": proof})
    response.raise_for_status()
    me = response.json()
    if not isinstance(me, dict) or not isinstance(me.get("id"), str | int):
        raise ProviderFailure("the Graph API named nobody")
    email = me.get("email") if isinstance(me.get("email"), str) else None
    name = me.get("name") if isinstance(me.get("name"), str) else None
    # The Graph API gives only an address Facebook has confirmed (and none without the permission).
    return Profile(str(me["id"]), email, email is not None, name)


def verify_id_token(provider: Provider, id_token: str, nonce: str | None) -> Profile:
    """An ID token a publisher's page got from the provider's own button: the same checks as the callback's
    (signature by the provider's JWKS, refreshed for an unknown key; iss, aud, sub, exp, iat; the nonce when given)."""
    client = client_for(provider)
    claims = client.parse_id_token(
        {"id_token": id_token},
        nonce=nonce,
        claims_options=id_tokens.claims_options(provider),
        claims_cls=CodeIDToken,
        leeway=id_tokens.LEEWAY,
    )
    return id_tokens.profile(claims)
