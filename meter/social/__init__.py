"""Sign-in with other accounts ("atau Masuk melalui" Google, Apple, Facebook or any OpenID provider): a
site's providers (`rules.providers`, their secrets sealed at rest by `rules.sealing`), what a sign-in
means for the site's readers (`rules.accounts`), the pages under `/<site>/login/<provider>`
(`views.pages`), Authlib's clients (`oauth_clients`), `POST /v1/sessions` with an ID token
(`id_token_sign_in`), and `flask sites login-providers` (`commands`).

This module is the feature's public face: other features import from it only (import-linter keeps
the rest private); each name comes from its home on first use (`meter.platform.public`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meter.platform.public import exports

if TYPE_CHECKING:
    from meter.social.id_token_sign_in import social_login
    from meter.social.rules import accounts, providers, sealing
    from meter.social.rules.providers import KINDS

_PUBLIC = {
    "KINDS": ("meter.social.rules.providers", "KINDS"),
    "accounts": ("meter.social.rules.accounts", None),
    "providers": ("meter.social.rules.providers", None),
    "sealing": ("meter.social.rules.sealing", None),
    "social_login": ("meter.social.id_token_sign_in", "social_login"),
}
__all__ = [
    "KINDS",
    "accounts",
    "providers",
    "sealing",
    "social_login",
]
__getattr__ = exports(__name__, _PUBLIC)
