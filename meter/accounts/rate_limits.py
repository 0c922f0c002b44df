"""Rate limits of meter's own, over the `limits` library, on the same Redis; keyed by client IP and by
normalised email.

Why not Flask-Limiter: it took any exception in a key function for a storage failure and switched
the worker to fresh in-memory counters. Reading the body of a 70 KB request raises 413 in the
key function, so alternating an oversized body with a password guess reset the guess counters.
Here the two are kept apart:

- a body over MAX_CONTENT_LENGTH is refused 413 before any key is read;
- an error computing a key (or reading a limit's setting) fails closed for that request: its own
  4xx when it is one (a bad body), else 429. It never skips the limit and never touches the storage;
- only an error of the storage itself switches to in-memory counters (logged), for
  REDIS_RETRY_AFTER seconds, after which the storage is tried again.

Each app has its own limiter (`app.extensions`; the counting engine is `meter.platform.rate_counter`),
storage and fallback: nothing is shared between apps. The limits are named settings of config.py,
read at request time (one knob per line there). The client IP is `request.remote_addr`, rewritten by ProxyFix from `X-Forwarded-For` only when
TRUSTED_PROXIES > 0. Email-keyed limits use the address's lookup key (`emails.lookup_key`) together
with the site, so `Mike@` and `mike@` share one bucket, and one address on two sites has two. Limits
are checked inside the view's decorator, after the API key is authenticated, so a request without a
valid key spends nobody's budget.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import limits
from flask import Flask, Response, after_this_request, current_app, g, has_request_context, request
from limits.strategies import STRATEGIES
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from meter.accounts.rules import emails, mail_budget
from meter.accounts.rules.sessions import check_token
from meter.platform import cookies, signals
from meter.platform.problems import problem_response
from meter.platform.rate_counter import Limiter, parse
from meter.platform.settings import ConfigError

log = logging.getLogger(__name__)

EXT_KEY = "meter.ratelimit"
KEY_ERROR_WAIT = 60  # Retry-After when a key could not be computed (the request is refused)


class RateLimited(HTTPException):
    """A breached limit: the API answers 429 problem+json, the reader pages a page (`meter.accounts.views.pages`)."""

    code = 429
    description = "Too many requests; try again later."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = max(1, int(retry_after))


# --- what a limit is keyed by ------------------------------------------------------------------


def client_ip() -> str:
    """The client's address (after ProxyFix, which create_app puts in front when TRUSTED_PROXIES > 0)."""
    return request.remote_addr or "unknown"


def _body_email() -> str | None:
    """The normalised lookup key of the JSON body's or the form's `email`, or None (none, or not an address).

    The body is read as JSON first, whatever its Content-Type, exactly as the API's views read it
    (`curl -d` labels JSON as a form): a JSON body sent as a form must neither dodge the address's
    limit nor lose its body to form parsing. Only a body that is not JSON is a form (the reader pages').
    A body that is neither, or holds no address, is not an error: such a request sends no mail and
    finds nobody, and its view refuses it. Anything else (413 while reading the body) propagates.
    """
    if "_rl_email" in g:
        return g._rl_email
    key = None
    try:
        body = request.get_data(cache=True)  # kept: the view and the form parser read it again
        try:
            data = json.loads(body.decode("utf-8"))
            raw = data.get("email") if isinstance(data, dict) else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            form = request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
            raw = request.form.get("email") if form else None  # the reader pages' forms
        if isinstance(raw, str):
            key = emails.lookup_key(emails.normalise(raw))
    except (ValueError, UnicodeDecodeError, RecursionError, emails.BadEmail):
        key = None
    g._rl_email = key
    return key


def account_key(site_id: int, email_key: str) -> str:
    return f"site{site_id}:{email_key}"


def email_key() -> str:
    """Key function: the site and the normalised address of the body ("" when there is none)."""
    site = g.get("site")
    found = _body_email()
    return account_key(site.id, found) if site is not None and found else ""


def with_client(account: str) -> str:
    """An account's key together with the client address: the key of its failed sign-ins from there."""
    return f"{account}|{client_ip()}"


def per_client(account_key_: Callable[[], str]) -> Callable[[], str]:
    """Key function: `account_key_`'s account together with the client address ("" without an account).

    An error computing either propagates, so the request is refused (`_key_of`), never let through."""

    def key() -> str:
        account = account_key_()
        return with_client(account) if account else ""

    key.__name__ = f"per_client_{account_key_.__name__}"
    return key


def reader_key() -> str:
    """Key function: the signed-in reader of the request (X-Reader-Token, else meter's login cookie), or ""
    (no reader: the view refuses the request itself). The token's signature only: no I/O."""
    site = g.get("site")
    if site is None:
        return ""
    check = check_token(site, request.headers.get("X-Reader-Token") or cookies.reader_token(site))
    return f"site{site.id}:r{check.reader_id}" if check.status == "valid" else ""


def no_email() -> bool:
    """Email-keyed limits skip requests without a usable address (they send no mail and find nobody)."""
    return not email_key()


def _failed_login(response: Response) -> bool:
    """A wrong email or password: the API's 401, or the login page's flag (it answers 422 with the form)."""
    return response.status_code == 401 or bool(g.get("login_failed"))


def limiter() -> Limiter:
    return current_app.extensions[EXT_KEY]


# --- limits and the decorators that apply them --------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """A named limit: its setting in config.py, the scope its counters are kept under, and what it is
    keyed by ("" from `key`: nothing to key on, not limited). A limit with `counts` is tested before
    the view and counted after it, only when `counts(response)` says so (failed logins)."""

    setting: str
    scope: str
    key: Callable[[], str] = client_ip
    counts: Callable[[Response], bool] | None = None

    def items(self) -> tuple[limits.RateLimitItem, ...]:
        return parse(current_app.config[self.setting])


def refuse_oversized() -> None:
    """413 for a body declared over MAX_CONTENT_LENGTH, before any key reads it (a chunked one is
    refused by Werkzeug when a key reads past the limit, which `enforce` answers as 413 too)."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()


def _key_of(limit: Limit) -> tuple[tuple[limits.RateLimitItem, ...], str]:
    """The limit's items and key; an error fails closed: the request's own 4xx, else 429."""
    try:
        return limit.items(), limit.key()
    except HTTPException:
        raise
    except Exception:  # whatever went wrong, this request is not let through unlimited
        log.warning("could not compute the %s limit's key: request refused", limit.scope, exc_info=True)
        raise RateLimited(KEY_ERROR_WAIT) from None


def enforce(*limits_: Limit) -> None:
    """Apply a view's limits to the current request; raise RateLimited (or the request's own 4xx).

    Every key is computed before anything is counted, and with several limits all are tested before
    any is spent: a request refused by one limit costs nothing of the others.
    """
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    refuse_oversized()
    engine = limiter()
    keyed = [(limit, *_key_of(limit)) for limit in limits_]
    keyed = [(limit, items, key) for limit, items, key in keyed if key]
    if len(keyed) > 1:
        wait = max(engine.wait(items, key, limit.scope, count=False) for limit, items, key in keyed)
        if wait:
            raise RateLimited(wait)
    for limit, items, key in keyed:
        wait = engine.wait(items, key, limit.scope, count=limit.counts is None)
        if wait:
            raise RateLimited(wait)
        if limit.counts is not None:
            after_this_request(functools.partial(_count_after, engine, limit, items, key))


def _count_after(engine: Limiter, limit: Limit, items, key: str, response: Response) -> Response:
    if limit.counts is not None and limit.counts(response):
        engine.spend(items, key, limit.scope)
    return response


def guard(*limits_: Limit, methods: tuple[str, ...] | None = None) -> Callable:
    """A view decorator applying `limits_` (only to `methods` when given: showing a form is free).

    Stacked guards merge into one, so that a view's limits are enforced together (see `enforce`).
    """

    def decorate(view: Callable) -> Callable:
        inner_view = getattr(view, "_guarded_view", view)
        guarded = (*((limit, methods) for limit in limits_), *getattr(view, "_guarded_limits", ()))

        @functools.wraps(inner_view)
        def inner(*args, **kwargs):
            applying = [limit for limit, only in guarded if only is None or request.method in only]
            if applying:
                enforce(*applying)
            return inner_view(*args, **kwargs)

        inner._guarded_view = inner_view  # type: ignore[attr-defined]
        inner._guarded_limits = guarded  # type: ignore[attr-defined]
        return inner

    return decorate


def failed_sign_in_limits(
    setting: str, ceiling: str, scope: str, account: Callable[[], str], counts: Callable[[Response], bool]
) -> tuple[Limit, Limit]:
    """The failed sign-ins of one account (a reader's, a staff member's): the one rule for both.

    Counted per account and client address (`setting`): guesses from an attacker's address lock that
    address out, never the owner's own browser. Across addresses, the account's failures meet a
    higher ceiling (`ceiling`), so that guessing from many addresses is bounded too. Enforce both
    together (`guard(*limits)`)."""
    return Limit(setting, f"{scope}-ip", per_client(account), counts), Limit(ceiling, scope, account, counts)


# The limits, shared by the JSON API and the reader pages' forms: one budget per IP and per address.
REGISTER_IP = Limit("RATELIMIT_REGISTER_IP", "register-ip")
LOGIN_FAIL_IP = Limit("RATELIMIT_LOGIN_FAIL_IP", "login-fail-ip", counts=_failed_login)
LOGIN_FAIL_ACCOUNT, LOGIN_FAIL_CEILING = failed_sign_in_limits(
    "RATELIMIT_LOGIN_FAIL_ACCOUNT",
    "RATELIMIT_LOGIN_FAIL_ACCOUNT_CEILING",
    "login-fail-account",
    email_key,
    _failed_login,
)
RESEND_IP = Limit("RATELIMIT_RESEND_IP", "resend-ip")
RESET_EMAIL = Limit("RATELIMIT_RESET_EMAIL", "reset-email", email_key)
RESET_IP = Limit("RATELIMIT_RESET_IP", "reset-ip")
ACCESS_IP = Limit("RATELIMIT_ACCESS_IP", "access-ip")
ACCOUNT_CHANGE = Limit("RATELIMIT_ACCOUNT_CHANGE", "account-change", reader_key)


def _decorators(methods: tuple[str, ...] | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        register_ip=guard(REGISTER_IP, methods=methods),
        login_fail_ip=guard(LOGIN_FAIL_IP, methods=methods),
        login_fail_account=guard(LOGIN_FAIL_ACCOUNT, LOGIN_FAIL_CEILING, methods=methods),
        reset_email=guard(RESET_EMAIL, methods=methods),
        reset_ip=guard(RESET_IP, methods=methods),
    )


_api = _decorators()
register_ip = _api.register_ip
login_fail_ip = _api.login_fail_ip
login_fail_account = _api.login_fail_account
# Resends per client IP; the per-address budget is the domain's (meter.accounts.rules.mail_budget).
resend_ip = guard(RESEND_IP, methods=("POST",))
reset_email = _api.reset_email
reset_ip = _api.reset_ip
# Starting a sign-in with another account (each start keeps a state in Redis for SOCIAL_STATE_TTL).
social_ip = guard(Limit("RATELIMIT_SOCIAL_IP", "social-ip"))
# A signed-in reader's changes with the current password (every attempt counted, per account).
account_change = guard(ACCOUNT_CHANGE, methods=("POST", "DELETE"))
# The reader pages: counted on POST only (showing a form is free).
pages = _decorators(methods=("POST",))


def access_ip_wait(ip: str) -> int:
    """One access check from `ip`, counted against RATELIMIT_ACCESS_IP: 0 when allowed, else the
    seconds to wait (Retry-After). For callers without a request context (an app context is
    enough); 0 at once when the setting is empty. A malformed setting refuses (fails closed)."""
    config = current_app.config
    if not config["RATELIMIT_ACCESS_IP"] or not config["RATELIMIT_ENABLED"]:
        return 0
    try:
        items = ACCESS_IP.items()
    except Exception:  # a malformed setting
        log.warning("RATELIMIT_ACCESS_IP is malformed: access check refused", exc_info=True)
        return KEY_ERROR_WAIT
    return limiter().wait(items, ip or "unknown", ACCESS_IP.scope, count=True)


def _on_password_reset(_app: Flask, reader, **_: object) -> None:
    clear_failed_logins(reader.site_id, reader.email_key)


def clear_failed_logins(site_id: int, email_key_: str) -> None:
    """A successful password reset lifts the account's failed-login ceiling, and the lock of the
    address it was made from (the reader's own; other addresses' locks expire by themselves). Best effort."""
    account = account_key(site_id, email_key_)
    try:
        limiter().clear(LOGIN_FAIL_CEILING.items(), account, LOGIN_FAIL_CEILING.scope)
        if has_request_context():
            limiter().clear(LOGIN_FAIL_ACCOUNT.items(), with_client(account), LOGIN_FAIL_ACCOUNT.scope)
    except Exception:  # storage away or a bad setting: the lockout expires by itself
        log.warning("could not clear the failed-login limit of an account", exc_info=True)


def too_many_problem(retry: int) -> Response:
    """The API's answer to a breached limit: 429 problem+json with Retry-After. (The reader pages
    answer with an HTML page instead: `meter.accounts.views.pages`.)"""
    return problem_response(
        429,
        "rate-limited",
        "Too many requests",
        "Too many requests; try again later.",
        headers={"Retry-After": str(retry)},
    )


def init_app(app: Flask) -> None:
    for name in [n for n in app.config if n.startswith("RATELIMIT_")]:  # a malformed limit stops the start
        value = app.config[name]
        if isinstance(value, str) and value and name not in ("RATELIMIT_REDIS_URL", "RATELIMIT_STRATEGY"):
            try:
                parse(value)
            except ValueError:
                raise ConfigError(
                    f"{name} is not a limit: {value!r}; write one such as 20/minute or '1 per 3 minutes;5 per day'"
                ) from None
    if app.config["RATELIMIT_STRATEGY"] not in STRATEGIES:
        raise ConfigError(f"RATELIMIT_STRATEGY must be one of {', '.join(STRATEGIES)}")
    app.extensions[EXT_KEY] = Limiter(app)
    signals.password_reset.connect(_on_password_reset, weak=False)

    @app.errorhandler(RateLimited)
    @app.errorhandler(mail_budget.Spent)
    def _too_many(exc: RateLimited | mail_budget.Spent) -> Response:
        return too_many_problem(exc.retry_after)
