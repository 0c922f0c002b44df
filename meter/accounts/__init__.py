"""A reader's account on a site: register, confirm the address (the activation mail), log in and
out, reset a password, change the password or the address (`rules`, one module per flow); the
reader pages and the account calls of the JSON API (`views`); their forms (`forms`); the rate limits
of meter's own and the one mail budget per address (`rate_limits`, `rules.mail_budget`); the shell
every reader page of a site shares (`reader_pages`); `flask readers …` (`commands`).

This module is the feature's public face: other features import from it only (import-linter keeps
the rest private); each name comes from its home on first use (`meter.platform.public`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meter.platform.public import exports

if TYPE_CHECKING:
    from meter.accounts.answers import reader_json
    from meter.accounts.client import this_device
    from meter.accounts.forms import ActionForm, ConfirmForm, EmailForm
    from meter.accounts.rate_limits import Limit, RateLimited, enforce, failed_sign_in_limits, guard
    from meter.accounts.rules import (
        confirm,
        devices,
        emails,
        events,
        mail_budget,
        passwords,
        profile,
        register,
        sessions,
        subscriptions,
    )
    from meter.accounts.rules.lookup import find_reader, mail_context, page_url, safe_next
    from meter.accounts.rules.sessions import (
        TokenCheck,
        check_token,
        create_session,
        keep_variant_seed,
        live_reader,
        live_sessions,
        revoke_all,
    )

_PUBLIC = {
    "this_device": ("meter.accounts.client", "this_device"),
    "ActionForm": ("meter.accounts.forms", "ActionForm"),
    "ConfirmForm": ("meter.accounts.forms", "ConfirmForm"),
    "EmailForm": ("meter.accounts.forms", "EmailForm"),
    "Limit": ("meter.accounts.rate_limits", "Limit"),
    "RateLimited": ("meter.accounts.rate_limits", "RateLimited"),
    "TokenCheck": ("meter.accounts.rules.sessions", "TokenCheck"),
    "check_token": ("meter.accounts.rules.sessions", "check_token"),
    "confirm": ("meter.accounts.rules.confirm", None),
    "create_session": ("meter.accounts.rules.sessions", "create_session"),
    "keep_variant_seed": ("meter.accounts.rules.sessions", "keep_variant_seed"),
    "devices": ("meter.accounts.rules.devices", None),
    "emails": ("meter.accounts.rules.emails", None),
    "enforce": ("meter.accounts.rate_limits", "enforce"),
    "events": ("meter.accounts.rules.events", None),
    "failed_sign_in_limits": ("meter.accounts.rate_limits", "failed_sign_in_limits"),
    "find_reader": ("meter.accounts.rules.lookup", "find_reader"),
    "guard": ("meter.accounts.rate_limits", "guard"),
    "live_reader": ("meter.accounts.rules.sessions", "live_reader"),
    "live_sessions": ("meter.accounts.rules.sessions", "live_sessions"),
    "mail_budget": ("meter.accounts.rules.mail_budget", None),
    "mail_context": ("meter.accounts.rules.lookup", "mail_context"),
    "page_url": ("meter.accounts.rules.lookup", "page_url"),
    "passwords": ("meter.accounts.rules.passwords", None),
    "profile": ("meter.accounts.rules.profile", None),
    "reader_json": ("meter.accounts.answers", "reader_json"),
    "register": ("meter.accounts.rules.register", None),
    "revoke_all": ("meter.accounts.rules.sessions", "revoke_all"),
    "safe_next": ("meter.accounts.rules.lookup", "safe_next"),
    "sessions": ("meter.accounts.rules.sessions", None),
    "subscriptions": ("meter.accounts.rules.subscriptions", None),
}
__all__ = [
    "ActionForm",
    "ConfirmForm",
    "EmailForm",
    "Limit",
    "RateLimited",
    "TokenCheck",
    "check_token",
    "confirm",
    "create_session",
    "devices",
    "emails",
    "enforce",
    "events",
    "failed_sign_in_limits",
    "find_reader",
    "guard",
    "keep_variant_seed",
    "live_reader",
    "live_sessions",
    "mail_budget",
    "mail_context",
    "page_url",
    "passwords",
    "profile",
    "reader_json",
    "register",
    "revoke_all",
    "safe_next",
    "sessions",
    "subscriptions",
    "this_device",
]
__getattr__ = exports(__name__, _PUBLIC)
