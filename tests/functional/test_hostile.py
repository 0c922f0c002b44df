"""More of the hostile-input catalogue, built on tests/functional/test_bad_input.py's World and Case.

`MORE_CASES` is a table like `test_bad_input.CASES`, checked by the same function: the documented
status and problem, and no trace left in the database. To add a case, append a `Case` (or use the
builders `page`, `bad_token`, `malformed`, …); for a form page, add its path to `FORM_PAGES` and
every CSRF case is generated for it.

Cases whose documented answer is not a 4xx (the no-enumeration 202s, a `next` that is silently
dropped, an activation while another reader is logged in) are the plain tests below the table.
Already covered elsewhere, not repeated: two confirmations of one reset token at the same instant
(tests/functional/test_tokens.py::test_two_simultaneous_confirmations_of_one_reset_token_exactly_one_wins),
expired, tampered, truncated, future-dated tokens and tokens of another purpose or site
(tests/functional/test_bad_input.py), and the registration page's honeypot
(tests/functional/test_pages.py::test_honeypot_answers_alike_and_registers_nobody).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from meter.accounts.models import Reader
from meter.accounts.rules import emails
from meter.platform import tokens
from meter.platform.db import db
from meter.platform.models import OutboxMail
from tests.conftest import token_of
from tests.functional.test_bad_input import (
    ACT,
    DEEP,
    EMAIL,
    MB,
    NEW_PASSWORD,
    PASSWORD,
    RESET,
    Case,
    World,
    _activate_page,
    _reset_page,
    bad_token,
    malformed,
    page,
    snapshot,
    with_csrf,
)
from tests.functional.test_bad_input import test_bad_request as check_case

# Every JSON route that takes a body, with the method it is called with.
BODY_ROUTES = [
    ("POST", "/v1/readers"),
    ("POST", "/v1/readers/resend-activation"),
    ("POST", "/v1/activations"),
    ("POST", "/v1/sessions"),
    ("DELETE", "/v1/sessions"),
    ("POST", "/v1/password-resets"),
    ("POST", "/v1/password-resets/confirm"),
    ("POST", "/v1/access"),
    ("PUT", lambda w: f"/v1/readers/{w.reader_id}/subscription"),  # a real reader: the body is the problem
]


def _raw(method: str, path, body: bytes):
    return lambda w: w.raw(method, path(w) if callable(path) else path, body)


def _slug(path) -> str:
    if callable(path):
        return "subscription"
    return path.strip("/").replace("/", "-").replace("v1-", "")


def body_cases() -> list[Case]:
    """Bodies no route may choke on: 10 MB, invalid UTF-8, JSON nested 10,000 deep, on every route."""
    cases = []
    for method, path in BODY_ROUTES:
        name = f"{method.lower()}-{_slug(path)}"
        cases.append(
            Case(f"{name}-10mb-body", _raw(method, path, b"{" + b" " * (10 * MB) + b"}"), 413, "payload-too-large")
        )
        cases.append(
            Case(f"{name}-invalid-utf8", _raw(method, path, b'{"email": "\xff\xfe@x"}'), 400, "malformed-json")
        )
        cases.append(Case(f"{name}-nested-10000-deep", _raw(method, path, DEEP.encode()), 400, "malformed-json"))
    return cases


# Every reader page with a form: (name, page path builder, extra form fields).
FORM_PAGES = [
    ("activate", _activate_page, {}),
    ("reset", _reset_page, {"password": NEW_PASSWORD}),
    ("register", lambda w: "/tempo/register", {"email": "baru@example.com", "password": NEW_PASSWORD}),
    ("login", lambda w: "/tempo/login", {"email": EMAIL, "password": PASSWORD}),
    ("forgot", lambda w: "/tempo/forgot-password", {"email": EMAIL}),
]


def csrf_cases() -> list[Case]:
    """CSRF missing, forged, or taken from another browser's session, on every form."""
    cases = []
    for name, path, fields in FORM_PAGES:
        cases.append(page(f"{name}-form-csrf-missing", "POST", path, 400, dict(fields)))
        cases.append(page(f"{name}-form-csrf-forged", "POST", path, 400, {"csrf_token": "forged", **fields}))
        cases.append(Case(f"{name}-form-csrf-of-another-session", _csrf_of_another_session(path, fields), 400, None))
    return cases


def _csrf_of_another_session(path, fields):
    def send(w: World):
        token = w.csrf(path(w))  # a valid token, for the session cookie of this client
        other = w.app.test_client()  # another browser: no session cookie, so the token is not its own
        w.before = snapshot(w.app)
        return other.post(path(w), data={"csrf_token": token, **fields})

    return send


def unknown_slug_cases() -> list[Case]:
    cases = []
    for method in ("GET", "POST"):
        for name, path, _fields in FORM_PAGES:
            token_path = (lambda p: lambda w: "/nosuchsite/" + p(w).split("/", 2)[2])(path)
            cases.append(page(f"{name}-page-{method.lower()}-unknown-slug", method, token_path, 404))
        cases.append(page(f"unknown-page-{method.lower()}-unknown-slug", method, "/nosuchsite/login", 404))
    return cases


def _change_email(w: World, address: str = "baru-alamat@example.com") -> None:
    """What a completed address change leaves in the row (new address and key), written directly: the
    change's own flow (password, link to the new address) is tests/functional/test_account_api.py's."""
    with w.app.app_context():
        db.session.execute(
            update(Reader).where(Reader.email == EMAIL).values(email=address, email_key=emails.lookup_key(address))
        )
        db.session.commit()


def _reset_after_email_change(w: World):
    token = w.reset_token
    _change_email(w)
    return w.call("POST", RESET, json={"token": token, "password": NEW_PASSWORD})


def _activation_after_email_change(w: World):
    token = w.activation_token
    _change_email(w)
    return w.call("POST", ACT, json={"token": token})


def _activation_page_after_email_change(w: World):
    token = w.activation_token
    csrf = w.csrf(f"/tempo/activate/{token}")
    _change_email(w)
    return w.call("POST", f"/tempo/activate/{token}", data={"csrf_token": csrf}, key=None)


def _reset_used_twice(w: World):
    token = w.reset_token
    first = w.api.post(RESET, json={"token": token, "password": NEW_PASSWORD})
    assert first.status_code == 200
    return w.call("POST", RESET, json={"token": token, "password": "and-again-123"})


def _reset_after_password_changed(w: World):
    token = w.reset_token
    with w.app.app_context():  # the password changed by another route (auth_version moves on)
        db.session.execute(update(Reader).where(Reader.email == EMAIL).values(auth_version=Reader.auth_version + 1))
        db.session.commit()
    return w.call("POST", RESET, json={"token": token, "password": NEW_PASSWORD})


def _reset_token_of_old_shape(w: World):
    """A correctly signed reset token without the address fingerprint (as issued before it existed)."""
    w.activation_token  # noqa: B018
    reader = w._reader("tempo", EMAIL)
    with w.app.app_context():
        token = tokens.make(tokens.RESET, {"r": reader.id, "s": reader.site_id, "v": reader.auth_version})
    return w.call("POST", RESET, json={"token": token, "password": NEW_PASSWORD})


MORE_CASES: list[Case] = [
    *body_cases(),
    *csrf_cases(),
    *unknown_slug_cases(),
    Case("reset-token-used-twice", _reset_used_twice, 400, "token-invalid"),
    Case("reset-token-after-email-change", _reset_after_email_change, 400, "token-invalid"),
    Case("reset-token-after-password-change", _reset_after_password_changed, 400, "token-invalid"),
    Case("reset-token-without-address-fingerprint", _reset_token_of_old_shape, 400, "token-invalid"),
    Case("activation-after-email-change", _activation_after_email_change, 400, "token-invalid"),
    Case("activation-page-after-email-change", _activation_page_after_email_change, 400, None),
    bad_token("activation-token-with-crlf", ACT, lambda w: {"token": w.activation_token + "\r\nX-Evil: 1"}),
    malformed("register-crlf-raw-in-json-string", "/v1/readers", b'{"email": "a@example.com\r\nBcc: x@evil.example"}'),
    page(
        "reset-page-post-empty-password",
        "POST",
        _reset_page,
        422,
        with_csrf(_reset_page, password=""),
    ),
]


@pytest.fixture
def world(app, client, api, mailbox, deliver) -> World:
    return World(app, client, api, mailbox, deliver)


def test_the_whole_catalogue_is_big_enough():
    from tests.functional.test_bad_input import CASES

    ids = [case.id for case in CASES + MORE_CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 35 + 50


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in MORE_CASES])
def test_more_bad_requests(world: World, case: Case):
    check_case(world, case)


# --- answers that are not 4xx by design, still leaving nothing behind ---------------------------


def outbox(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [tuple(r) for r in db.session.execute(select(OutboxMail.kind, OutboxMail.to_addr)).all()]


@pytest.mark.parametrize(
    "address",
    [
        "pembaca@example.com\r\nBcc: victim@evil.example",
        "pembaca@example.com\nTo: victim@evil.example",
        "pembaca@example.com%0d%0aBcc:victim@evil.example",
    ],
)
@pytest.mark.parametrize("path", ["/v1/readers/resend-activation", "/v1/password-resets"])
def test_crlf_in_an_address_that_reaches_a_mail_header_sends_nothing(app, api, register, address, path):
    register(EMAIL)
    before = outbox(app)
    response = api.post(path, json={"email": address})
    assert response.status_code == 202  # the same answer as for any unknown address
    assert outbox(app) == before


@pytest.mark.parametrize(
    ("typed", "mailed"),
    [
        ("PEMBACA@Example.COM", True),  # case folding: the same mailbox
        ("pembaca@EXAMPLE.com", True),
        ("pembaca@example.com ", True),  # surrounding space
        ("pemba\u00e7a@example.com", False),  # another letter: refused (SMTPUTF8 local part) or another account
        ("pembac\u0430@example.com", False),  # Cyrillic a (U+0430)
        ("pembaca@examp1e.com", False),
    ],
)
def test_look_alike_addresses_mail_only_the_stored_address(app, api, register, mailbox, deliver, typed, mailed):
    register(EMAIL)
    mailbox.clear()
    assert api.post("/v1/password-resets", json={"email": typed}).status_code == 202
    deliver()
    recipients = [to for m in mailbox.messages for to in m["to"]]
    assert recipients == ([EMAIL] if mailed else []), recipients


def test_dotless_i_is_another_mailbox_and_ohm_sign_meets_omega(app, api, mailbox, deliver):
    """`m\u0131ke@` (dotless i) is not `mike@`; in a domain, OHM SIGN (U+2126) and OMEGA (U+03A9) are one."""
    assert api.post("/v1/readers", json={"email": "mike@example.com", "password": PASSWORD}).status_code == 202
    assert api.post("/v1/readers", json={"email": "reader@\u03a9mega.example", "password": PASSWORD}).status_code == 202
    deliver()
    mailbox.clear()
    for typed in ("m\u0131ke@example.com", "reader@\u2126mega.example"):
        assert api.post("/v1/password-resets", json={"email": typed}).status_code == 202
    deliver()
    recipients = sorted(to for m in mailbox.messages for to in m["to"])
    with app.app_context():
        stored = db.session.scalar(select(Reader.email).where(Reader.email.like("reader@%")))
    assert "mike@example.com" not in recipients  # the dotless i found nobody
    local, domain = stored.split("@")
    # the OHM SIGN found the OMEGA account, and mail went to its stored address (IDNA-encoded on the wire)
    assert recipients in ([stored], [f"{local}@{domain.encode('idna').decode()}"]), (recipients, stored)


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "javascript:alert(1)",
        "https://tempo.co.evil.example/",
        "https://tempo.co@evil.example/",
        "https:/\\evil.example",
        "data:text/html,<script>alert(1)</script>",
    ],
)
def test_next_to_a_foreign_origin_is_dropped(app, api, register, client, next_url):
    link = register(EMAIL, next=next_url)
    token = token_of(link)
    with app.app_context():
        payload = tokens.load(tokens.ACTIVATION, token).payload
    assert "n" not in payload
    body = api.post(ACT, json={"token": token}).get_json()
    assert "next" not in body


def test_next_on_the_sites_origin_is_kept(app, api, register):
    link = register(EMAIL, next="https://tempo.co/koran/2026/artikel")
    body = api.post(ACT, json={"token": token_of(link)}).get_json()
    assert body["next"] == "https://tempo.co/koran/2026/artikel"


def test_confirm_link_opened_while_logged_in_as_another_reader(app, api, register, verified_reader):
    """The link activates its own account only; the other reader's session is untouched and not used."""
    other_id, other_token = verified_reader("lain@example.com")
    link = register(EMAIL)
    token = token_of(link)
    response = api.post(ACT, json={"token": token}, headers={"X-Reader-Token": other_token})
    body = response.get_json()
    assert response.status_code == 200 and body["reader_id"] != other_id
    me = api.get("/v1/readers/me", headers={"X-Reader-Token": other_token}).get_json()
    assert me["reader_id"] == other_id and me["email"] == "lain@example.com"
    me_new = api.get("/v1/readers/me", headers={"X-Reader-Token": body["reader_token"]}).get_json()
    assert me_new["email"] == EMAIL


def test_confirm_page_opened_in_a_browser_that_has_another_readers_page_session(app, api, register, client):
    """The pages keep no login, only a CSRF session: another reader's browser activates this account, no other."""
    first = register("satu@example.com")
    second = register("dua@example.com")
    for link in (first, second):  # one browser (one cookie jar) opens both links
        path = link.split("meter.test", 1)[1]
        page_ = client.get(path).get_data(as_text=True)
        csrf = page_.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        assert client.post(path, data={"csrf_token": csrf}).status_code == 200
    with app.app_context():
        verified = sorted(r.email for r in db.session.scalars(select(Reader)) if r.verified_at)
    assert verified == ["dua@example.com", "satu@example.com"]
