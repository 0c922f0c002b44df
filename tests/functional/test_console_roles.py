"""Every console route against every role, from one table: who may open what.

The table names each route's least role; the test fails when a route is added without a row here.
A member with no grant on the site gets 404 (the site stays hidden), a role too low 403 (a page, in
HTML), a visitor who is not signed in is sent to the sign-in page.
"""

from __future__ import annotations

import pytest

from meter.accounts.models import Reader
from meter.console.views import auth
from meter.platform.db import db
from meter.sites.rules import sites
from tests.conftest import make_site
from tests.console_helpers import csrf_of, staff_client

# endpoint -> the least role (every method of the route is tried)
TABLE = {
    "console.dashboard": "editor",
    "console.figures_csv": "editor",
    "console.readers": "support",
    "console.reader": "support",
    "console.resend": "support",
    "console.end_sessions": "support",
    "console.subscribe": "support",
    "console.unsubscribe": "support",
    "console.reset_meter": "support",
    "console.bulk_resend": "support",
    "console.bulk_progress": "support",
    "console.mail": "support",
    "console.retry_mail": "support",
    "console.policy": "editor",
    "console.new_meter": "editor",
    "console.meter": "editor",
    "console.rules": "editor",
    "console.experiment": "editor",
    "console.keys": "owner",
    "console.new_key": "owner",
    "console.revoke_key": "owner",
    "console.new_grant_key": "owner",
    "console.retire_grant_key": "owner",
    "console.origins": "owner",
    "console.remove_origin": "owner",
    "console.login_providers": "owner",
    "console.remove_provider": "owner",
    "console.audit_log": "owner",
    "console.staff": "owner",
    "console.webhooks": "owner",
    "console.remove_webhook": "owner",
    "console.rotate_webhook": "owner",
    "console.enable_webhook": "owner",
    "console.test_webhook": "owner",
    "console.send_webhook_again": "owner",
}
ROLES = ("support", "editor", "owner")


def _reader(app, slug: str) -> int:
    with app.app_context():
        site = sites.by_slug(slug)
        reader = Reader(site_id=site.id, email=f"x@{slug}.example", email_key=f"x@{slug}.example", password_hash="!")
        db.session.add(reader)
        db.session.commit()
        return reader.id


def _rule(app, endpoint: str):
    return next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)


def _url(app, endpoint: str, slug: str, reader_id: int, job_id: int) -> str:
    rule = _rule(app, endpoint)
    args = {"site_slug": slug}
    if "reader_id" in rule.arguments:
        args["reader_id"] = reader_id
    if "job_id" in rule.arguments:
        args["job_id"] = job_id
    if (
        "meter_name" in rule.arguments
    ):  # a meter's rules or experiment: the default meter's (a meter not made is not found)
        args["meter_name"] = "default" if endpoint in ("console.rules", "console.experiment") else "koran"
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **args)


@pytest.fixture
def world(app, runner, api):
    """Two sites; on `tempo` one member per role; on `other` one owner; a reader and a bulk request on tempo."""
    make_site(app, "other", ("https://other.example",))
    reader_id = _reader(app, "tempo")
    clients = {role: staff_client(app, runner, f"{role}@tempo.co", "tempo", role) for role in ROLES}
    clients["other site's owner"] = staff_client(app, runner, "owner@other.example", "other", "owner")
    token = csrf_of(clients["owner"].get("/console/signin").get_data(as_text=True))
    made = clients["owner"].post("/console/tempo/bulk-resend", data={"csrf_token": token, "since": "2026-01-01"})
    job_id = int(made.headers["Location"].rsplit("/", 1)[1])
    return clients, reader_id, job_id


def test_the_table_names_every_console_route(app):
    site_routes = {ep for ep, role in auth.ROLES.items() if role not in ("public", "member")}
    assert site_routes == set(TABLE)
    for endpoint, role in TABLE.items():
        assert auth.ROLES[endpoint] == role


@pytest.mark.parametrize("endpoint", sorted(TABLE))
def test_every_route_for_every_role(app, world, endpoint):
    clients, reader_id, job_id = world
    least = TABLE[endpoint]
    url = _url(app, endpoint, "tempo", reader_id, job_id)
    methods = sorted(_rule(app, endpoint).methods - {"HEAD", "OPTIONS"})
    for who, client in clients.items():
        for method in methods:
            token = csrf_of(client.get("/console/signin").get_data(as_text=True))
            answer = client.post(url, data={"csrf_token": token}) if method == "POST" else client.get(url)
            _judge(endpoint, who, least, answer)
    anonymous = app.test_client()
    token = csrf_of(anonymous.get("/console/signin").get_data(as_text=True))
    for method in methods:
        answer = anonymous.post(url, data={"csrf_token": token}) if method == "POST" else anonymous.get(url)
        assert answer.status_code == 303 and "/console/signin" in answer.headers["Location"]


def _judge(endpoint: str, who: str, least: str, answer) -> None:
    if who == "other site's owner":
        assert answer.status_code == 404, (endpoint, who)
    elif ROLES.index(who) < ROLES.index(least):
        assert answer.status_code == 403, (endpoint, who)
        assert answer.mimetype == "text/html" and "Content-Security-Policy" in answer.headers
    else:
        assert answer.status_code not in (401, 403, 404, 405, 500), (endpoint, who, answer.status_code)
