"""Rate limits (Flask-Limiter on the same Redis), keyed by client IP and by normalised email.

The client IP is `request.remote_addr`, rewritten by ProxyFix from `X-Forwarded-For` only when
TRUSTED_PROXIES > 0 (so a client cannot forge its IP when no proxy sits in front). Email-keyed
limits use the address's lookup key (`emails.lookup_key`) together with the site, so `Mike@` and
`mike@` share one bucket, and one address on two sites has two. A Redis outage must never turn a
request into a 500: the limiter falls back to per-process memory and swallows storage errors.
Limits are checked after the API key is authenticated (the decorators wrap the view), so a request
without a valid key spends nobody's budget.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from types import SimpleNamespace

import limits
from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded

from meter.domain.accounts import emails
from meter.infra import signals
from meter.web.problems import problem_response

log = logging.getLogger(__name__)

LOGIN_ACCOUNT_SCOPE = "login-fail-account"


def client_ip() -> str:
    """The client's address (after ProxyFix, which create_app puts in front when TRUSTED_PROXIES > 0)."""
    return request.remote_addr or "unknown"


def _body_email() -> str | None:
    """The normalised lookup key of the JSON body's or the form's `email`, or None (none, or not an address)."""
    if "_rl_email" in g:
        return g._rl_email
    key = None
    try:
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            raw = request.form.get("email")  # the reader pages' forms
        else:
            data = json.loads(request.get_data(cache=True).decode("utf-8"))
            raw = data.get("email") if isinstance(data, dict) else None
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


def no_email() -> bool:
    """Email-keyed limits skip requests without a usable address (they send no mail and find nobody)."""
    return not email_key()


def _setting(name: str) -> Callable[[], str]:
    return lambda: current_app.config[name]


def _failed_login(response: Response) -> bool:
    """A wrong email or password: the API's 401, or the login page's flag (it answers 422 with the form)."""
    return response.status_code == 401 or bool(g.get("login_failed"))


limiter = Limiter(key_func=client_ip, in_memory_fallback_enabled=True, swallow_errors=True)


# The limits, each read from config.py at request time (one knob per line there). Shared limits, so
# that the JSON API and the reader pages' forms spend one budget per IP and per address.
def _limits(methods: list[str] | None = None) -> SimpleNamespace:
    def shared(setting: str, scope: str, **kw) -> Callable:
        return limiter.shared_limit(_setting(setting), scope, methods=methods, **kw)

    by_email = {"key_func": email_key, "exempt_when": no_email}
    return SimpleNamespace(
        register_ip=shared("RATELIMIT_REGISTER_IP", "register-ip"),
        login_fail_ip=shared("RATELIMIT_LOGIN_FAIL_IP", "login-fail-ip", deduct_when=_failed_login),
        login_fail_account=shared(
            "RATELIMIT_LOGIN_FAIL_ACCOUNT", LOGIN_ACCOUNT_SCOPE, deduct_when=_failed_login, **by_email
        ),
        resend_email=shared("RATELIMIT_RESEND_EMAIL", "resend-email", **by_email),
        reset_email=shared("RATELIMIT_RESET_EMAIL", "reset-email", **by_email),
        reset_ip=shared("RATELIMIT_RESET_IP", "reset-ip"),
    )


_api = _limits()
register_ip = _api.register_ip
login_fail_ip = _api.login_fail_ip
login_fail_account = _api.login_fail_account
resend_email = _api.resend_email
reset_email = _api.reset_email
reset_ip = _api.reset_ip
# Starting a sign-in with another account (each start keeps a state in Redis for SOCIAL_STATE_TTL).
social_ip = limiter.shared_limit(_setting("RATELIMIT_SOCIAL_IP"), "social-ip")
# The reader pages: counted on POST only (showing a form is free).
pages = _limits(methods=["POST"])


def access_ip_wait(ip: str) -> int:
    """Count one access check from `ip` against RATELIMIT_ACCESS_IP (off when empty): 0 when allowed,
    else the seconds to wait. Runs without a request context (the hot entry); a storage failure lets
    the check through (the access check answers, degraded if need be, whatever Redis does)."""
    setting = current_app.config["RATELIMIT_ACCESS_IP"]
    if not setting:
        return 0
    try:
        for item in limits.parse_many(setting):
            if not limiter.limiter.hit(item, ip or "unknown", "access-ip"):
                reset = limiter.limiter.get_window_stats(item, ip or "unknown", "access-ip").reset_time
                return max(1, math.ceil(reset - time.time()))
    except Exception:
        log.warning("access rate limit not counted: its storage is unreachable", exc_info=True)
    return 0


def _on_password_reset(_app: Flask, reader, **_: object) -> None:
    clear_failed_logins(reader.site_id, reader.email_key)


def clear_failed_logins(site_id: int, email_key_: str) -> None:
    """A successful password reset lifts the account's failed-login lockout (best effort)."""
    try:
        for item in limits.parse_many(current_app.config["RATELIMIT_LOGIN_FAIL_ACCOUNT"]):
            limiter.limiter.clear(item, account_key(site_id, email_key_), LOGIN_ACCOUNT_SCOPE)
    except Exception:  # storage away: the lockout expires by itself
        log.warning("could not clear the failed-login limit of an account", exc_info=True)


def _storage_uri(app: Flask) -> str:
    url = app.config.get("RATELIMIT_REDIS_URL") or app.config["REDIS_URL"]
    if url.startswith("unix://"):
        return "redis+unix://" + url.removeprefix("unix://")
    return url


def _drop_idle_middleware(app: Flask) -> None:
    """Every limit of meter is a decorator on its view; without default, application or meta limits,
    Flask-Limiter's before_request check finds nothing to count, yet it resolves limits on every
    request (about 30 us of CPU each, access checks included). Drop it then; the decorators, and the
    after_request hook that makes the conditional (failed-login) deductions, stay.
    """
    if any(app.config.get(name) for name in ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META")):
        return
    funcs = app.before_request_funcs.get(None, [])
    app.before_request_funcs[None] = [f for f in funcs if f != limiter._check_request_limit]


def init_app(app: Flask) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = _storage_uri(app)  # Flask-Limiter's name, derived on every init
    timeout = app.config["REDIS_SOCKET_TIMEOUT"]
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_timeout": timeout, "socket_connect_timeout": timeout})
    # One Limiter for the process (the decorators bind to it); each app gets fresh storage. A test
    # suite makes many apps: start each one trusting its storage again.
    limiter._storage_dead = False
    limiter.init_app(app)
    signals.password_reset.connect(_on_password_reset, weak=False)
    _drop_idle_middleware(app)

    @app.errorhandler(RateLimitExceeded)
    def _too_many(exc: RateLimitExceeded) -> Response:
        return too_many_problem(retry_after())


def retry_after() -> int:
    """Seconds until the breached limit of this request resets (at least 1; 60 when unknown)."""
    current = limiter.current_limit
    if current is None:
        return 60
    try:
        return max(1, math.ceil(current.reset_at - time.time()))
    except Exception:  # noqa: BLE001 - storage gone between the check and here
        return 60


def too_many_problem(retry: int) -> Response:
    """The API's answer to a breached limit: 429 problem+json with Retry-After. (The reader pages
    answer with an HTML page instead: `meter.pages`.)"""
    return problem_response(
        429,
        "rate-limited",
        "Too many requests",
        "Too many requests; try again later.",
        headers={"Retry-After": str(retry)},
    )
