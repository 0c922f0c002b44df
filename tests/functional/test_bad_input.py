"""Malformed and hostile requests: each gets its documented 4xx (never a 500) and leaves no trace.

Every /v1 error must be application/problem+json (RFC 9457) with `type` ending in `/problems/<name>`,
`title`, `status` equal to the HTTP status, `detail`, and `errors` (field → message) on 422. After
each request the database must hold exactly what it held before: no reader, session, mail, unlock,
verification, password or subscription change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

import pytest
from sqlalchemy import func, select

from meter.access.models import Unlock
from meter.accounts.models import Reader, ReaderSession
from meter.accounts.rules import confirm
from meter.platform import clock, tokens
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.sites.models import Site
from meter.sites.rules import sites
from tests.conftest import Api, links_in, make_site, rebuilt, token_of

EMAIL = "pembaca@example.com"
PASSWORD = "rahasia-sekali"
REGISTER_OK = {"email": "baru@example.com", "password": PASSWORD}
ACCESS_OK = {"article": {"id": "tempo:koran:a", "class": "metered"}, "anonymous_id": "visitor-0001"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
MB = 1024 * 1024
_SITE_A = object()  # call(): authenticate with site A's key (the default)


def snapshot(app) -> dict[str, Any]:
    """Everything a request could leave behind in the database."""
    with app.app_context():

        def count(model, *where) -> int:
            return db.session.scalar(select(func.count()).select_from(model).where(*where))

        readers = db.session.execute(
            select(
                Reader.id, Reader.verified_at, Reader.password_hash, Reader.auth_version, Reader.subscription_until
            ).order_by(Reader.id)
        ).all()
        return {
            "readers": [tuple(row) for row in readers],
            "sessions": count(ReaderSession),
            "live_sessions": count(ReaderSession, ReaderSession.revoked_at.is_(None)),
            "outbox": count(OutboxMail),
            "unlocks": count(Unlock),
        }


def wrong_tail(key: str) -> str:
    """The key with its last characters changed: the same prefix (so the row is found), another hash."""
    return key[:-4] + ("xxxx" if key[-4:] != "xxxx" else "yyyy")


def tamper(token: str) -> str:
    """Change one character in the middle of the payload (never the last base64 character of a part)."""
    i = token.index(".") // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


class World:
    """What the cases need, built lazily: each case pays only for what it uses."""

    def __init__(self, app, client, api: Api, mailbox, deliver) -> None:
        self.app, self.client, self.api, self.mailbox, self.deliver = app, client, api, mailbox, deliver
        self.before: dict[str, Any] | None = None

    # --- requests -------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, key: Any = _SITE_A, auth: str | None = None, **kw):
        """Send one request; the database is snapshotted just before, after all set-up ran."""
        headers = dict(kw.pop("headers", None) or {})
        if auth is not None:
            headers["Authorization"] = auth
        elif key is not None:
            headers["Authorization"] = f"Bearer {self.api.key if key is _SITE_A else key}"
        self.before = snapshot(self.app)
        return self.client.open(path, method=method, headers=headers, **kw)

    def raw(self, method: str, path: str, body: bytes | str, **kw):
        data = body.encode("utf-8") if isinstance(body, str) else body
        return self.call(method, path, data=data, content_type="application/json", **kw)

    # --- set-up ---------------------------------------------------------------------------------

    def _mailed_link(self, address: str, marker: str) -> str:
        self.deliver()
        links = [link for m in self.mailbox.to(address) for link in links_in(m["msg"]) if marker in link]
        assert links, f"no {marker} link reached {address}"
        return links[-1]

    def _register(self, api: Api, address: str) -> str:
        response = api.post("/v1/readers", json={"email": address, "password": PASSWORD})
        assert response.status_code == 202, response.get_data(as_text=True)
        return token_of(self._mailed_link(address, "/activate/"))

    def _reader(self, slug: str, address: str) -> Reader:
        with self.app.app_context():
            site_id = db.session.scalar(select(Site.id).filter_by(slug=slug))
            reader = db.session.scalar(select(Reader).filter_by(site_id=site_id, email=address))
            db.session.expunge(reader)
            return reader

    @cached_property
    def activation_token(self) -> str:
        """The real activation token of a registered, unverified reader of site A, from the mail."""
        return self._register(self.api, EMAIL)

    @cached_property
    def reader_id(self) -> int:
        self.activation_token  # noqa: B018  (registers the reader)
        return self._reader("tempo", EMAIL).id

    @cached_property
    def reader_token(self) -> str:
        self.activation_token  # noqa: B018
        response = self.api.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["reader_token"]

    @cached_property
    def reset_token(self) -> str:
        self.activation_token  # noqa: B018
        assert self.api.post("/v1/password-resets", json={"email": EMAIL}).status_code == 202
        return token_of(self._mailed_link(EMAIL, "/reset-password/"))

    @cached_property
    def key_b(self) -> str:
        return make_site(self.app, "koran", ("https://koran.example",))

    @cached_property
    def api_b(self) -> Api:
        return Api(self.client, self.key_b, "koran")

    @cached_property
    def subscriber_b(self) -> int:
        """A reader of site B with a subscription set by B's billing."""
        address = "langganan@example.com"
        token = self._register(self.api_b, address)
        reader_id = self.api_b.post("/v1/activations", json={"token": token}).get_json()["reader_id"]
        until = {"until": "2030-01-01T00:00:00+07:00"}
        assert self.api_b.put(f"/v1/readers/{reader_id}/subscription", json=until).status_code == 200
        return reader_id

    @cached_property
    def revoked_key(self) -> str:
        """A second key of site A that worked, then was revoked with meter.sites.rules.sites.revoke_key."""
        with self.app.app_context():
            site = db.session.scalar(select(Site).filter_by(slug="tempo"))
            key = sites.new_key(site)
            db.session.commit()
        assert Api(self.client, key, "tempo").post("/v1/access", json=ACCESS_OK).status_code == 200
        with self.app.app_context():
            site = db.session.scalar(select(Site).filter_by(slug="tempo"))
            assert sites.revoke_key(site, key[: sites.KEY_PREFIX_LEN]) == 1
        return key

    def activation_token_with(self, *, secret_key: str | None = None, clock_ahead: timedelta | None = None) -> str:
        """The reader's own activation payload, signed with another key or at another time."""
        self.activation_token  # noqa: B018
        reader = self._reader("tempo", EMAIL)
        signer = rebuilt(self.app, SECRET_KEY=secret_key) if secret_key else self.app  # a service with another key
        with signer.app_context():
            if clock_ahead:
                clock.travel(clock_ahead)
            try:
                return confirm.activation_token(reader, None)
            finally:
                if clock_ahead:
                    clock.travel(-clock_ahead)

    def expire(self, seconds: int) -> None:
        clock.travel(timedelta(seconds=seconds + 60))

    def csrf(self, path: str) -> str:
        """GET a page as a browser would and return the CSRF token of its form (the cookie stays in the client)."""
        page = self.client.get(path)
        assert page.status_code == 200, page.get_data(as_text=True)
        return CSRF_RE.search(page.get_data(as_text=True)).group(1)


@dataclass(frozen=True)
class Case:
    id: str
    send: Callable[[World], Any]
    status: int
    problem: str | None  # the problem name for /v1 calls; None: an HTML page
    fields: tuple[str, ...] = ()  # keys expected in `errors` on 422
    headers: dict[str, str] = field(default_factory=dict)  # response headers expected (value contained)
    bug: str | None = None  # a known bug: xfail(strict) until fixed


UNTIL = "2030-01-01T00:00:00+07:00"
NEW_PASSWORD = "baru-sekali-123"
DEEP = "[" * 10_000 + "]" * 10_000
WWW_AUTH = {"WWW-Authenticate": "Bearer"}

# Builders for the common shapes of case; `path` and `body` may be functions of the World.
Dyn = Any


def _value(w: World, x: Dyn) -> Any:
    return x(w) if callable(x) else x


def send_json(method: str, path: Dyn, body: Dyn = None, **kw) -> Callable[[World], Any]:
    return lambda w: w.call(method, _value(w, path), json=_value(w, body), **{k: _value(w, v) for k, v in kw.items()})


def send_raw(path: str, body: bytes | str) -> Callable[[World], Any]:
    return lambda w: w.raw("POST", path, body)


def malformed(id_: str, path: str, body: bytes | str) -> Case:
    return Case(id_, send_raw(path, body), 400, "malformed-json")


def invalid(id_: str, method: str, path: Dyn, body: Dyn, *fields: str, bug: str | None = None) -> Case:
    return Case(id_, send_json(method, path, body), 422, "validation-failed", fields, bug=bug)


def unauthorized(id_: str, method: str, path: Dyn, body: Dyn, **kw) -> Case:
    return Case(id_, send_json(method, path, body, **kw), 401, "unauthorized", headers=WWW_AUTH)


def bad_token(id_: str, path: str, body: Dyn, name: str = "token-invalid", **kw) -> Case:
    return Case(id_, send_json("POST", path, body, **kw), 400, name)


def me_with(id_: str, token: Dyn, name: str = "token-invalid", **kw) -> Case:
    headers = (lambda w: {"X-Reader-Token": _value(w, token)}) if token is not None else None
    return Case(id_, send_json("GET", "/v1/readers/me", None, headers=headers, **kw), 401, name)


def page(id_: str, method: str, path: Dyn, status: int, form: Dyn = None) -> Case:
    return Case(id_, lambda w: w.call(method, _value(w, path), data=_value(w, form), key=None), status, None)


def sub(w: World, reader_id: Any = None) -> str:
    return f"/v1/readers/{w.reader_id if reader_id is None else reader_id}/subscription"


def with_csrf(page_path: Callable[[World], str], **fields: str) -> Callable[[World], dict]:
    """A form as a browser posts it: the CSRF token from the page (GET first), plus `fields`."""
    return lambda w: {"csrf_token": w.csrf(page_path(w)), **fields}


def _expired_activation(w: World):
    token = w.activation_token
    w.expire(w.app.config["ACTIVATION_MAX_AGE"])
    return w.call("POST", "/v1/activations", json={"token": token})


def _expired_reset(w: World):
    token = w.reset_token
    w.expire(w.app.config["RESET_MAX_AGE"])
    return w.call("POST", "/v1/password-resets/confirm", json={"token": token, "password": NEW_PASSWORD})


def _expired_reader_token(w: World):
    token = w.reader_token
    w.expire(w.app.config["READER_TOKEN_MAX_AGE"])
    return w.call("GET", "/v1/readers/me", headers={"X-Reader-Token": token})


def _expired_activation_page(w: World):
    token = w.activation_token
    w.expire(w.app.config["ACTIVATION_MAX_AGE"])
    csrf = w.csrf(f"/tempo/activate/{token}")
    return w.call("POST", f"/tempo/activate/{token}", data={"csrf_token": csrf}, key=None)


def _activate_page(w: World) -> str:
    return f"/tempo/activate/{w.activation_token}"


def _other_site_activate_page(w: World) -> str:
    """Site A's activation link opened under site B's pages."""
    w.key_b  # noqa: B018  (creates site B)
    return f"/koran/activate/{w.activation_token}"


def _reset_page(w: World) -> str:
    return f"/tempo/reset-password/{w.reset_token}"


R, A = "/v1/readers", "/v1/access"
ACT, RESET = "/v1/activations", "/v1/password-resets/confirm"
NEW = "baru@example.com"

CASES: list[Case] = [
    # --- bodies that are not a JSON object ------------------------------------------------------
    Case(
        "register-form-encoded-not-json",
        lambda w: w.call(
            "POST", R, data=f"email={NEW}&password={PASSWORD}", content_type="application/x-www-form-urlencoded"
        ),
        400,
        "malformed-json",
    ),
    malformed("register-invalid-utf8", R, b'{"email": "\xff\xfe@example.com", "password": "rahasia-sekali"}'),
    malformed("access-truncated-json", A, '{"article": {"id": "a"'),
    malformed("access-empty-body", A, b""),
    malformed("access-json-nested-10000-deep", A, DEEP),
    malformed("register-email-nested-10000-deep", R, '{"email": ' + DEEP + ', "password": "rahasia-sekali"}'),
    malformed("register-integer-of-5000-digits", R, '{"email": "baru@example.com", "password": ' + "7" * 5000 + "}"),
    invalid("register-json-array", "POST", R, [REGISTER_OK], ""),
    invalid("access-json-string", "POST", A, "tempo:koran:a", ""),
    Case("activation-json-null", send_raw(ACT, "null"), 422, "validation-failed", ("",)),
    Case(
        "register-10mb-body",
        send_raw(R, b'{"email": "baru@example.com", "password": "' + b"x" * (10 * MB) + b'"}'),
        413,
        "payload-too-large",
    ),
    Case("access-10mb-body", send_raw(A, b" " * (10 * MB) + b"{}"), 413, "payload-too-large"),
    # --- registration: missing fields and wrong types -------------------------------------------
    invalid("register-empty-object", "POST", R, {}, "email", "password"),
    invalid("register-missing-password", "POST", R, {"email": NEW}, "password"),
    invalid("register-password-number", "POST", R, {"email": NEW, "password": 12345678}, "password"),
    invalid("register-password-list", "POST", R, {"email": NEW, "password": list(PASSWORD)}, "password"),
    invalid("register-email-object", "POST", R, {"email": {"$ne": ""}, "password": PASSWORD}, "email"),
    invalid("register-password-7-chars", "POST", R, {"email": NEW, "password": "1234567"}, "password"),
    invalid("register-password-1025-chars", "POST", R, {"email": NEW, "password": "p" * 1025}, "password"),
    invalid("register-malformed-email", "POST", R, {"email": "baru.example.com", "password": PASSWORD}, "email"),
    invalid(
        "register-email-with-crlf-header-injection",
        "POST",
        R,
        {"email": NEW + "\r\nBcc: korban@example.org", "password": PASSWORD},
        "email",
    ),
    invalid("register-email-with-nul", "POST", R, {"email": "baru\x00@example.com", "password": PASSWORD}, "email"),
    Case(
        "register-email-lone-surrogate",
        send_raw(R, '{"email": "baru\\ud800@example.com", "password": "rahasia-sekali"}'),
        422,
        "validation-failed",
        ("email",),
    ),
    invalid("register-locale-fr", "POST", R, {**REGISTER_OK, "locale": "fr"}, "locale"),
    invalid("register-anonymous-id-too-short", "POST", R, {**REGISTER_OK, "anonymous_id": "abc1234"}, "anonymous_id"),
    invalid("register-anonymous-id-bad-chars", "POST", R, {**REGISTER_OK, "anonymous_id": "v/../0001"}, "anonymous_id"),
    invalid("register-next-number", "POST", R, {**REGISTER_OK, "next": 42}, "next"),
    # --- the access check -----------------------------------------------------------------------
    invalid("access-record-yes", "POST", A, {**ACCESS_OK, "record": "yes"}, "record"),
    invalid("access-article-string", "POST", A, {**ACCESS_OK, "article": "tempo:koran:a"}, "article"),
    invalid("access-article-missing", "POST", A, {"anonymous_id": "visitor-0001"}, "article"),
    invalid("access-article-id-empty", "POST", A, {**ACCESS_OK, "article": {"id": ""}}, "article.id"),
    invalid("access-article-id-600-chars", "POST", A, {**ACCESS_OK, "article": {"id": "a" * 600}}, "article.id"),
    invalid("access-article-id-number", "POST", A, {**ACCESS_OK, "article": {"id": 7}}, "article.id"),
    invalid("access-class-vip", "POST", A, {**ACCESS_OK, "article": {"id": "x", "class": "vip"}}, "article.class"),
    invalid("access-anonymous-id-too-short", "POST", A, {**ACCESS_OK, "anonymous_id": "abc"}, "anonymous_id"),
    invalid("access-anonymous-id-129-chars", "POST", A, {**ACCESS_OK, "anonymous_id": "a" * 129}, "anonymous_id"),
    invalid("access-anonymous-id-redis-glob", "POST", A, {**ACCESS_OK, "anonymous_id": "visit*0001}"}, "anonymous_id"),
    invalid("access-reader-token-number", "POST", A, {**ACCESS_OK, "reader_token": 12345}, "reader_token"),
    # --- the other account calls ----------------------------------------------------------------
    invalid("login-password-number", "POST", "/v1/sessions", {"email": EMAIL, "password": 12345678}, "password"),
    invalid("login-missing-email", "POST", "/v1/sessions", {"password": PASSWORD}, "email"),
    invalid("resend-email-list", "POST", "/v1/readers/resend-activation", {"email": [EMAIL]}, "email"),
    invalid("password-reset-email-number", "POST", "/v1/password-resets", {"email": 1}, "email"),
    invalid("activation-token-number", "POST", ACT, {"token": 1}, "token"),
    invalid("activation-token-4097-chars", "POST", ACT, {"token": "a" * 4097}, "token"),
    invalid(
        "activation-anonymous-id-bad",
        "POST",
        ACT,
        lambda w: {"token": w.activation_token, "anonymous_id": "no"},
        "anonymous_id",
    ),
    invalid(
        "reset-confirm-password-7-chars",
        "POST",
        RESET,
        lambda w: {"token": w.reset_token, "password": "1234567"},
        "password",
    ),
    invalid("reset-confirm-missing-password", "POST", RESET, lambda w: {"token": w.reset_token}, "password"),
    invalid("logout-missing-token", "DELETE", "/v1/sessions", {}, "reader_token"),
    Case(
        "logout-garbage-token",
        send_json("DELETE", "/v1/sessions", {"reader_token": "garbage.garbage.garbage"}),
        400,
        "token-invalid",
    ),
    Case(
        "logout-token-of-another-site",
        send_json("DELETE", "/v1/sessions", lambda w: {"reader_token": w.reader_token}, key=lambda w: w.key_b),
        400,
        "token-invalid",
    ),
    # --- subscriptions --------------------------------------------------------------------------
    invalid("subscription-until-without-offset", "PUT", sub, {"until": "2030-01-01T00:00:00"}, "until"),
    invalid("subscription-until-date-only", "PUT", sub, {"until": "2030-01-01"}, "until"),
    invalid("subscription-until-not-a-date", "PUT", sub, {"until": "next tuesday"}, "until"),
    invalid("subscription-until-number", "PUT", sub, {"until": 1893456000}, "until"),
    invalid("subscription-missing-until", "PUT", sub, {}, "until"),
    invalid(
        "subscription-until-past-year-9999-in-utc",
        "PUT",
        sub,
        {"until": "9999-12-31T23:00:00-14:00"},
        "until",
    ),
    invalid(
        "subscription-until-before-year-1-in-utc",
        "PUT",
        sub,
        {"until": "0001-01-01T00:00:00+14:00"},
        "until",
    ),
    Case(
        "subscription-put-reader-of-another-site",
        send_json("PUT", lambda w: sub(w, w.subscriber_b), {"until": UNTIL}),
        404,
        "reader-not-found",
    ),
    Case(
        "subscription-delete-reader-of-another-site",
        send_json("DELETE", lambda w: sub(w, w.subscriber_b)),
        404,
        "reader-not-found",
    ),
    Case(
        "subscription-unknown-reader", send_json("PUT", sub(None, 999_999), {"until": UNTIL}), 404, "reader-not-found"
    ),
    Case("subscription-reader-id-not-a-number", send_json("PUT", sub(None, "abc"), {"until": UNTIL}), 404, "not-found"),
    Case(
        "subscription-reader-id-beyond-64-bits",
        send_json("PUT", sub(None, 10**25), {"until": UNTIL}),
        404,
        "reader-not-found",
    ),
    # --- the site's API key ---------------------------------------------------------------------
    unauthorized("register-no-authorization-header", "POST", R, REGISTER_OK, key=None),
    unauthorized("access-no-authorization-header", "POST", A, ACCESS_OK, key=None),
    unauthorized("register-basic-scheme", "POST", R, REGISTER_OK, auth=lambda w: f"Basic {w.api.key}"),
    unauthorized("register-bearer-without-key", "POST", R, REGISTER_OK, auth="Bearer "),
    unauthorized("access-non-ascii-scheme", "POST", A, ACCESS_OK, auth=lambda w: f"Bear\u00e9r {w.api.key}"),
    unauthorized("access-non-ascii-key", "POST", A, ACCESS_OK, auth="Bearer mk_\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"),
    unauthorized("register-wrong-key", "POST", R, REGISTER_OK, key=lambda w: wrong_tail(w.api.key)),
    unauthorized("register-revoked-key", "POST", R, REGISTER_OK, key=lambda w: w.revoked_key),
    unauthorized("subscription-no-key", "PUT", sub, {"until": UNTIL}, key=None),
    unauthorized("activation-no-key", "POST", ACT, lambda w: {"token": w.activation_token}, key=None),
    # --- tokens ---------------------------------------------------------------------------------
    bad_token("activation-tampered-token", ACT, lambda w: {"token": tamper(w.activation_token)}),
    bad_token("activation-truncated-token", ACT, lambda w: {"token": w.activation_token[:-6]}),
    bad_token("activation-garbage-token", ACT, {"token": "x"}),
    Case("activation-expired-token", _expired_activation, 400, "token-expired"),
    Case(  # the problem name is checked below: token-expired or token-invalid (test_tokens says which)
        "activation-token-from-the-future",
        send_json("POST", ACT, lambda w: {"token": w.activation_token_with(clock_ahead=timedelta(days=1))}),
        400,
        None,
    ),
    bad_token(
        "activation-token-signed-with-another-secret-key",
        ACT,
        lambda w: {"token": w.activation_token_with(secret_key="not-our-key")},
    ),
    bad_token("activation-given-a-reader-token", ACT, lambda w: {"token": w.reader_token}),
    bad_token("activation-given-a-reset-token", ACT, lambda w: {"token": w.reset_token}),
    bad_token("activation-token-of-another-site", ACT, lambda w: {"token": w.activation_token}, key=lambda w: w.key_b),
    bad_token(
        "reset-confirm-given-an-activation-token",
        RESET,
        lambda w: {"token": w.activation_token, "password": NEW_PASSWORD},
    ),
    bad_token(
        "reset-confirm-given-a-reader-token", RESET, lambda w: {"token": w.reader_token, "password": NEW_PASSWORD}
    ),
    bad_token(
        "reset-confirm-tampered-token", RESET, lambda w: {"token": tamper(w.reset_token), "password": NEW_PASSWORD}
    ),
    Case("reset-confirm-expired-token", _expired_reset, 400, "token-expired"),
    bad_token(
        "reset-confirm-token-of-another-site",
        RESET,
        lambda w: {"token": w.reset_token, "password": NEW_PASSWORD},
        key=lambda w: w.key_b,
    ),
    # --- who am I -------------------------------------------------------------------------------
    me_with("me-without-reader-token", None),
    me_with("me-garbage-reader-token", "garbage"),
    me_with("me-tampered-reader-token", lambda w: tamper(w.reader_token)),
    me_with("me-activation-token-as-reader-token", lambda w: w.activation_token),
    me_with("me-reader-token-of-another-site", lambda w: w.reader_token, key=lambda w: w.key_b),
    Case("me-expired-reader-token", _expired_reader_token, 401, "token-expired"),
    # --- routes and methods ---------------------------------------------------------------------
    Case("get-on-access", send_json("GET", A), 405, "method-not-allowed", headers={"Allow": "POST"}),
    Case(
        "put-on-sessions",
        send_json("PUT", "/v1/sessions", {"reader_token": "x"}),
        405,
        "method-not-allowed",
        headers={"Allow": "DELETE"},
    ),
    Case("patch-on-subscription", send_json("PATCH", sub, {"until": UNTIL}), 405, "method-not-allowed"),
    Case("unknown-v1-endpoint", send_json("POST", "/v1/admin", {}), 404, "not-found"),
    # --- reader pages (HTML) --------------------------------------------------------------------
    page("activate-page-get-from-a-mail-scanner", "GET", _activate_page, 200),
    page("activate-page-unknown-site", "GET", lambda w: f"/nosuchsite/activate/{w.activation_token}", 404),
    page("activate-page-upper-case-slug", "POST", lambda w: f"/TEMPO/activate/{w.activation_token}", 404),
    page("activate-page-post-without-csrf", "POST", _activate_page, 400),
    page("activate-page-post-with-forged-csrf", "POST", _activate_page, 400, {"csrf_token": "forged"}),
    page(
        "activate-page-post-tampered-token",
        "POST",
        lambda w: f"/tempo/activate/{tamper(w.activation_token)}",
        400,
        with_csrf(_activate_page),
    ),
    Case("activate-page-post-expired-token", _expired_activation_page, 400, None),
    page(
        "activate-page-token-of-another-site",
        "POST",
        _other_site_activate_page,
        400,
        with_csrf(_other_site_activate_page),
    ),
    page("activate-page-put", "PUT", _activate_page, 405),
    page("reset-page-unknown-site", "GET", lambda w: f"/nosuchsite/reset-password/{w.reset_token}", 404),
    page("reset-page-post-without-csrf", "POST", _reset_page, 400, {"password": NEW_PASSWORD}),
    page("reset-page-post-short-password", "POST", _reset_page, 422, with_csrf(_reset_page, password="1234567")),
    page(
        "reset-page-post-activation-token",
        "POST",
        lambda w: f"/tempo/reset-password/{w.activation_token}",
        400,
        with_csrf(_reset_page, password=NEW_PASSWORD),
    ),
]


def _params():
    for case in CASES:
        marks = [pytest.mark.xfail(reason=f"bug: {case.bug}", strict=True)] if case.bug else []
        yield pytest.param(case, id=case.id, marks=marks)


@pytest.fixture
def world(app, client, api, mailbox, deliver) -> World:
    return World(app, client, api, mailbox, deliver)


def test_case_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", list(_params()))
def test_bad_request(world: World, case: Case):
    response = case.send(world)
    text = response.get_data(as_text=True)
    assert response.status_code == case.status, text[:500]
    for name, value in case.headers.items():
        assert value in response.headers.get(name, ""), (name, response.headers)

    if response.request.path.startswith("/v1/"):
        assert response.mimetype == "application/problem+json", text[:500]
        doc = response.get_json()
        assert set(doc) >= {"type", "title", "status", "detail"}, doc
        assert re.match(r"^https?://\S+/problems/[a-z0-9-]+$", doc["type"]), doc
        if case.problem is not None:
            assert doc["type"].endswith(f"/problems/{case.problem}"), doc
        else:
            assert doc["type"].rsplit("/", 1)[1] in ("token-expired", "token-invalid"), doc
        assert doc["status"] == case.status
        assert isinstance(doc["title"], str) and doc["title"]
        assert isinstance(doc["detail"], str) and doc["detail"]
        if case.status == 422:
            errors = doc["errors"]
            assert isinstance(errors, dict) and errors, doc
            assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items()), errors
            for name in case.fields:
                assert name in errors, errors
        else:
            assert "errors" not in doc, doc
    else:
        assert response.mimetype == "text/html", text[:500]
        assert "Traceback" not in text

    assert world.before is not None
    assert snapshot(world.app) == world.before, "the request left a trace in the database"


# --- the access check: a bad reader token never fails the call --------------------------------


def _signed_with_another_secret_key(app, token: str) -> str:
    """The same reader-token payload, signed with a key this service never had."""
    with app.app_context():
        payload = tokens.load(tokens.READER, token).payload
    with rebuilt(app, SECRET_KEY="not-our-key").app_context():
        return tokens.make(tokens.READER, payload)


BAD_READER_TOKENS = [
    pytest.param("garbage", "invalid", id="garbage"),
    pytest.param("tampered", "invalid", id="tampered"),
    pytest.param("truncated", "invalid", id="truncated"),
    pytest.param("other-secret-key", "invalid", id="signed-with-another-secret-key"),
    pytest.param("other-site", "invalid", id="of-another-site"),
    pytest.param("activation-token", "invalid", id="activation-token-as-reader-token"),
    pytest.param("expired", "expired", id="expired"),
    pytest.param("empty", "invalid", id="empty-string"),
    pytest.param("long", "invalid", id="5000-chars"),
]


@pytest.mark.parametrize(("kind", "status"), BAD_READER_TOKENS)
def test_bad_reader_token_is_judged_as_anonymous(app, api, client, register, kind, status):
    activation = token_of(register())
    valid = api.post("/v1/activations", json={"token": activation}).get_json()["reader_token"]
    # With its good token this reader may read the article (2 free a month once verified)...
    assert api.access("tempo:koran:a", reader_token=valid, record=False)["reason"] == "would_unlock"

    key = api.key
    bad = {
        "garbage": "not-a-token-at-all",
        "tampered": tamper(valid),
        "truncated": valid[:-6],
        "other-secret-key": _signed_with_another_secret_key(app, valid),
        "other-site": valid,
        "activation-token": activation,
        "expired": valid,
        "empty": "",
        "long": "x" * 5000,
    }[kind]
    if kind == "other-site":
        key = make_site(app, "koran", ("https://koran.example",))
    if kind == "expired":
        clock.travel(timedelta(seconds=app.config["READER_TOKEN_MAX_AGE"] + 60))

    before = snapshot(app)
    body = {"reader_token": bad, "anonymous_id": "visitor-0001", "article": {"id": "tempo:koran:a"}, "record": True}
    response = client.post("/v1/access", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    # ...with a bad one it is an anonymous visitor, and Tempo gives anonymous visitors no free articles.
    assert answer["reader"] == {"state": "anonymous", "token": status}
    assert (answer["allowed"], answer["reason"]) == (False, "registration_required")
    assert (answer["meter"]["used"], answer["meter"]["limit"]) == (0, 0)
    assert snapshot(app) == before  # nothing unlocked, for the reader or the visitor


def test_bad_reader_token_counts_against_the_anonymous_id(app, client):
    """On a site that gives anonymous visitors an article, a bad token falls back to the visitor's own quota."""
    key = make_site(
        app, "gratis", ("https://gratis.example",), {"quota": {"anonymous": 1, "registered": 2, "verified": 3}}
    )
    api = Api(client, key, "gratis")
    assert api.post("/v1/readers", json={"email": EMAIL, "password": PASSWORD}).status_code == 202
    login = api.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD}).get_json()
    bad = tamper(login["reader_token"])

    first = api.access("gratis:a", reader_token=bad, anonymous_id="visitor-0001")
    assert first["reader"] == {"state": "anonymous", "token": "invalid"}
    assert (first["allowed"], first["reason"], first["meter"]["used"], first["meter"]["limit"]) == (
        True,
        "unlocked_now",
        1,
        1,
    )
    second = api.access("gratis:b", reader_token=bad, anonymous_id="visitor-0001")
    assert (second["allowed"], second["reason"]) == (False, "registration_required")
    # The reader's own meter was not touched: with the good token both articles are still to unlock.
    good = api.access("gratis:b", reader_token=login["reader_token"], record=False)
    assert (good["reason"], good["meter"]["used"], good["reader"]["state"]) == ("would_unlock", 0, "registered")
    with app.app_context():
        subjects = db.session.scalars(select(Unlock.subject)).all()
    assert subjects == ["a:visitor-0001"]
