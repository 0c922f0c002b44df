"""Every way a reader logs in keeps the device it came from on the session row: the account rules take
the device as an argument (`meter.accounts.this_device`, made by the web layer from the request), so a
view that forgot to pass it would leave the account page's "Chrome · Android" empty; this walks each."""

from __future__ import annotations

from sqlalchemy import select

from meter.accounts.models import ReaderSession
from meter.platform.db import db
from tests.conftest import token_of
from tests.functional.test_account_pages import ANDROID, IPHONE, browser, csrf, log_in

EMAIL, PASSWORD = "pembaca@example.com", "rahasia-sekali"


def _devices(app) -> list[str | None]:
    with app.app_context():
        return list(db.session.scalars(select(ReaderSession.device).order_by(ReaderSession.created_at)))


def test_the_api_activation_login_and_password_change_keep_the_callers_device(app, api, register):
    phone = {"User-Agent": ANDROID, "X-Forwarded-For": "203.0.113.7"}
    activated = api.post("/v1/activations", json={"token": token_of(register(EMAIL, PASSWORD))}, headers=phone)
    assert activated.status_code == 200
    logged = api.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD}, headers=phone)
    assert logged.status_code == 200
    changed = api.post(
        "/v1/readers/me/password",
        json={"current_password": PASSWORD, "password": "rahasia-yang-baru"},
        headers={**phone, "X-Reader-Token": logged.get_json()["reader_token"]},
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    devices = _devices(app)
    assert len(devices) == 3 and all(d is not None and d.startswith("Chrome · Android") for d in devices), devices


def test_the_login_page_and_the_reset_page_keep_the_browsers_device(app, verified_reader, mailbox, deliver):
    verified_reader(EMAIL, PASSWORD)
    phone = browser(app, IPHONE)
    log_in(phone)
    page = phone.get("/tempo/forgot-password").get_data(as_text=True)
    assert phone.post("/tempo/forgot-password", data={"csrf_token": csrf(page), "email": EMAIL}).status_code == 200
    deliver()
    link = next(link for link in _links(mailbox.to(EMAIL)[-1]["msg"]) if "/reset-password/" in link)
    path = link.split("://", 1)[1].split("/", 1)[1]
    form = phone.get("/" + path).get_data(as_text=True)
    reset = phone.post(
        "/" + path, data={"csrf_token": csrf(form), "password": "rahasia-yang-baru", "confirm": "rahasia-yang-baru"}
    )
    assert reset.status_code in (200, 303), reset.get_data(as_text=True)
    devices = _devices(app)
    assert [d.split(" @ ")[0] if d else d for d in devices[-2:]] == ["Safari · iPhone", "Safari · iPhone"], devices


def _links(message) -> list[str]:
    from tests.conftest import links_in

    return links_in(message)
