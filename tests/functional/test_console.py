"""The publisher console over HTTP: sign-in and its limits, sessions, the figures (the same as GET /v1/stats),
reader support and its audit rows, keys shown once, secrets never shown, bulk resend with progress, mail retry,
bad input answered with a page."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from meter import worker
from meter.accounts.models import Reader
from meter.platform import clock
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.stats import rules as stats
from tests.conftest import make_site, past_the_mail_budget
from tests.console_helpers import (
    PASSWORD,
    at_the_start_of_a_code_step,
    code,
    create_staff,
    csrf_of,
    english,
    set_up,
    sign_in,
    staff_client,
)
from tests.paths import ROOT_DIR


def _token(client) -> str:
    return csrf_of(client.get("/console/signin").get_data(as_text=True))


def _post(client, url: str, **data):
    return client.post(url, data={"csrf_token": _token(client), **data})


def _audit(runner, *args) -> list[dict]:
    result = runner.invoke(args=["audit", "show", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# --- accounts, sign-in, sessions ----------------------------------------------------------------


def test_set_up_link_works_once_and_sign_in_needs_password_and_a_fresh_code(app, runner, api):
    at_the_start_of_a_code_step()
    link = create_staff(runner, "ed@tempo.co", "tempo", "editor")
    client = english(app.test_client())
    secret = set_up(client, link)
    path = "/" + link.split("/", 3)[3]
    assert client.get(path).status_code == 404  # spent
    assert sign_in(client, "ed@tempo.co", secret, password="not the password").status_code == 422
    assert sign_in(client, "nobody@tempo.co", secret).status_code == 422
    wrong = sign_in(client, "ed@tempo.co", secret, steps_ahead=5)
    assert wrong.status_code == 422 and "email, password or code is not correct" in wrong.get_data(as_text=True)
    assert sign_in(client, "ed@tempo.co", secret, steps_ahead=0).status_code == 422  # the set-up's code: used
    assert sign_in(client, "ed@tempo.co", secret).status_code == 303
    other = app.test_client()
    assert sign_in(other, "ed@tempo.co", secret).status_code == 422  # the same code cannot sign in twice
    assert client.get("/console/tempo/").status_code == 200


def test_a_set_up_link_expires(app, runner, api):
    link = create_staff(runner, "late@tempo.co", "tempo", "support")
    clock.travel(timedelta(days=3, seconds=1))
    assert app.test_client().get("/" + link.split("/", 3)[3]).status_code == 404


def test_failed_sign_ins_are_limited_per_address(app, runner, api):
    client = app.test_client()
    secret = set_up(client, create_staff(runner, "ed@tempo.co", "tempo", "editor"))
    for _ in range(5):
        assert sign_in(client, "ed@tempo.co", secret, password="guess guess guess").status_code == 422
    refused = sign_in(client, "ed@tempo.co", secret)
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert "Terlalu banyak percobaan" in refused.get_data(as_text=True)  # Indonesian unless asked otherwise


def test_sessions_end_after_12_hours_idle_and_at_disable(app, runner, api):
    client = staff_client(app, runner, "ed@tempo.co", "tempo", "editor")
    clock.travel(timedelta(hours=11, minutes=59))
    assert client.get("/console/tempo/").status_code == 200  # a request moves the idle mark
    clock.travel(timedelta(hours=11, minutes=59))
    assert client.get("/console/tempo/").status_code == 200
    clock.travel(timedelta(hours=12, seconds=61))
    assert client.get("/console/tempo/").status_code == 303

    clock.reset()
    second = staff_client(app, runner, "sup@tempo.co", "tempo", "support")
    assert second.get("/console/tempo/readers").status_code == 200
    assert runner.invoke(args=["staff", "disable", "sup@tempo.co"]).exit_code == 0
    assert second.get("/console/tempo/readers").status_code == 303
    listed = runner.invoke(args=["staff", "list"]).output
    assert "sup@tempo.co\tdisabled\ttempo:support" in listed and "ed@tempo.co\tactive\ttempo:editor" in listed


def test_sign_out_ends_the_session(app, runner, api):
    client = staff_client(app, runner, "ed@tempo.co", "tempo", "editor")
    assert _post(client, "/console/signout").status_code == 303
    assert client.get("/console/tempo/").status_code == 303
    assert [e["action"] for e in _audit(runner)][:2] == ["console.signout", "console.signin"]


def test_a_form_without_its_csrf_token_is_refused_with_the_consoles_page(app, runner, api):
    client = staff_client(app, runner, "own@tempo.co", "tempo", "owner")
    answer = client.post("/console/tempo/keys/new?lang=en", data={})
    assert answer.status_code == 400 and "This form has expired" in answer.get_data(as_text=True)
    missing = client.get("/console/tempo/nothing-here")
    assert missing.status_code == 404 and "meter console" in missing.get_data(as_text=True)


# --- the figures ---------------------------------------------------------------------------------


def test_the_dashboard_and_its_csv_are_the_figures_of_v1_stats(app, runner, api, register):
    for n in range(3):
        api.access(f"tempo:koran:{n}", anonymous_id="visitor-0001")
    link = register()
    token = api.post("/v1/activations", json={"token": link.rsplit("/activate/", 1)[1].split("?")[0]}).get_json()[
        "reader_token"
    ]
    api.access("tempo:koran:a", reader_token=token)
    with app.app_context():
        stats.roll_up()  # yesterday's and today's rolled-up part in SQL, the rest live in Redis
    api.access("tempo:koran:b", reader_token=token)
    api.access("tempo:koran:c", reader_token=token)
    client = staff_client(app, runner, "ed@tempo.co", "tempo", "editor")
    days = api.get("/v1/stats").get_json()["days"]
    first, last = days[0]["date"], days[-1]["date"]
    page = client.get("/console/tempo/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and f'value="{first}"' in html and f'value="{last}"' in html
    exported = client.get("/console/tempo/figures.csv", query_string={"from": first, "to": last})
    assert exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [row["date"] for row in rows] == [day["date"] for day in days]
    for row, day in zip(rows, days, strict=True):
        for reason, n in day["views"].items():
            assert int(row[f"views.{reason}"]) == n
        for method, n in day["signins"].items():
            assert int(row[f"signins.{method}"]) == n
        for name in ("registrations", "activations", "subscriptions_started", "gifts_made"):
            assert int(row[name]) == day[name]
        assert (row["median_activation_seconds"] or None) == (
            None if day["median_activation_seconds"] is None else str(day["median_activation_seconds"])
        )
    today = days[-1]["views"]
    assert (today["registration_required"], today["unlocked_now"], today["quota_exhausted"]) == (3, 2, 1)
    for name, value in (("registration_required", 3), ("unlocked_now", 2), ("quota_exhausted", 1)):
        assert f'data-figure="{name}"><span class="value">{value}</span>' in html


def test_the_sign_in_methods_are_named_in_the_consoles_language(app, runner, api):
    client = staff_client(app, runner, "ed@tempo.co", "tempo", "editor")
    english = client.get("/console/tempo/", query_string={"lang": "en"}).get_data(as_text=True)
    indonesian = client.get("/console/tempo/", query_string={"lang": "id"}).get_data(as_text=True)
    assert '<span class="pill" data-method="password">Password: 0</span>' in english
    assert '<span class="pill" data-method="password">Kata sandi: 0</span>' in indonesian


def test_a_range_that_is_not_one_shows_the_last_30_days_and_says_why(app, runner, api):
    client = staff_client(app, runner, "ed@tempo.co", "tempo", "editor")
    for query in ({"from": "2026-02-30"}, {"from": "2026-11-02", "to": "2026-11-01"}, {"from": "x" * 5000}):
        page = client.get("/console/tempo/", query_string=query)
        assert page.status_code == 200 and 'class="problem"' in page.get_data(as_text=True)
    assert client.get("/console/tempo/figures.csv", query_string={"to": "nope"}).status_code == 200


# --- readers ---------------------------------------------------------------------------------------


def test_support_finds_helps_and_every_action_is_audited(app, runner, api, register, mailbox, deliver):
    register("lupa@example.com")
    make_site(app, "other", ("https://other.example",))
    with app.app_context():
        other = Reader(site_id=2, email="lupa@other.example", email_key="lupa@other.example", password_hash="!")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
        reader_id = db.session.scalar(db.select(Reader.id).filter_by(email="lupa@example.com"))
    client = staff_client(app, runner, "sup@tempo.co", "tempo", "support")
    found = client.get("/console/tempo/readers", query_string={"q": "LUPA"}).get_data(as_text=True)
    assert "lupa@example.com" in found and "lupa@other.example" not in found
    assert client.get(f"/console/tempo/readers/{other_id}").status_code == 404  # another site's reader
    page = f"/console/tempo/readers/{reader_id}"

    refused = _post(client, f"{page}/resend")  # the registration's mail spent the budget a moment ago
    assert "mailed recently" in client.get(refused.headers["Location"]).get_data(as_text=True)
    past_the_mail_budget()
    assert _post(client, f"{page}/resend").status_code == 303
    deliver()
    assert len(mailbox.to("lupa@example.com")) == 2
    shown = client.get(page).get_data(as_text=True)
    assert shown.count('data-kind="activation" data-status="sent"') == 2

    assert _post(client, f"{page}/subscription", until="2099-12-31").status_code == 303
    with app.app_context():
        assert db.session.get(Reader, reader_id).state == "subscriber"
    assert _post(client, f"{page}/unsubscribe").status_code == 303
    assert _post(client, f"{page}/end-sessions").status_code == 303
    assert _post(client, f"{page}/reset-meter").status_code == 303
    assert _post(client, f"{page}/subscription", until="not a date").status_code == 303  # said on the page
    actions = [e["action"] for e in _audit(runner, "--site", "tempo", "--since", "1h")]
    for action in ("reader.view", "reader.resend_activation", "reader.subscribe", "reader.unsubscribe",
                   "reader.end_sessions", "reader.reset_meter"):  # fmt: skip
        assert action in actions
    assert all(
        e["actor"] == "sup@tempo.co" for e in _audit(runner, "--site", "tempo") if e["action"].startswith("reader.")
    )


def test_bulk_resend_is_worked_by_the_worker_with_progress(app, runner, api, mailbox, deliver):
    for n in range(3):
        api.post("/v1/readers", json={"email": f"baru{n}@example.com", "password": "rahasia-sekali"})
    with app.app_context():
        db.session.execute(db.update(Reader).values(last_activation_sent_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
    past_the_mail_budget()
    client = staff_client(app, runner, "sup@tempo.co", "tempo", "support")
    since = (clock.now() - timedelta(days=1)).date().isoformat()
    started = _post(client, "/console/tempo/bulk-resend", since=since)
    progress = started.headers["Location"]
    waiting = client.get(progress).get_data(as_text=True)
    assert 'http-equiv="refresh"' in waiting and 'value="0"' in waiting
    with app.app_context():
        worker.run_once()
    done = client.get(progress).get_data(as_text=True)
    assert 'data-done="1"' in done and "3 of 3 readers: 3 mailed, 0 skipped, 0 failed" in done
    assert 'http-equiv="refresh"' not in done
    deliver()
    assert all(len(mailbox.to(f"baru{n}@example.com")) == 2 for n in range(3))
    assert _post(client, "/console/tempo/bulk-resend", since="yesterday").status_code == 422


# --- the site: keys, origins, providers, policy, mail --------------------------------------------------


def test_a_new_key_is_shown_once_and_revoking_stops_it(app, runner, api):
    client = staff_client(app, runner, "own@tempo.co", "tempo", "owner")
    made = _post(client, "/console/tempo/keys/new")
    html = made.get_data(as_text=True)
    key = html.split('id="new-key" class="key">', 1)[1].split("<", 1)[0]
    assert made.status_code == 201 and key.startswith("mk_") and made.headers["Cache-Control"] == "no-store"
    assert key not in client.get("/console/tempo/keys").get_data(as_text=True)
    assert api.client.get("/v1/stats", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    _post(client, "/console/tempo/keys/revoke", prefix=key[:12])
    assert api.client.get("/v1/stats", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert key not in json.dumps(_audit(runner))


def test_origins_and_providers_with_their_secret_never_shown(app, runner, api):
    client = staff_client(app, runner, "own@tempo.co", "tempo", "owner")
    assert _post(client, "/console/tempo/origins", origin="javascript:alert(1)").status_code == 422
    assert _post(client, "/console/tempo/origins", origin="https://Koran.Tempo.co/x").status_code == 422  # a path
    assert _post(client, "/console/tempo/origins", origin="https://Koran.Tempo.co/").status_code == 303
    assert "https://koran.tempo.co" in client.get("/console/tempo/origins").get_data(as_text=True)
    assert _post(client, "/console/tempo/origins/remove", origin="https://koran.tempo.co").status_code == 303
    secret = "very-secret-client-secret-4711"
    form = {"name": "google", "kind": "google", "client_id": "cid.apps", "secret": secret}
    assert _post(client, "/console/tempo/providers", **form).status_code == 303
    bad = _post(client, "/console/tempo/providers", **{**form, "kind": "oidc"})  # oidc needs an issuer
    assert bad.status_code == 422 and secret not in bad.get_data(as_text=True)
    listed = client.get("/console/tempo/providers").get_data(as_text=True)
    assert "cid.apps" in listed and secret not in listed
    assert _post(client, "/console/tempo/providers/remove", name="google").status_code == 303
    log = json.dumps(_audit(runner))
    assert secret not in log and "provider.add" in log and "origin.add" in log and "provider.remove" in log


def test_the_policy_shows_its_change_refuses_bad_values_and_a_stale_preview(app, runner, api):
    client = staff_client(app, runner, "ed@tempo.co", "tempo", "editor")
    base = csrf_of(client.get("/console/tempo/policy").get_data(as_text=True))
    form = client.get("/console/tempo/policy").get_data(as_text=True)
    version = form.split('name="base" type="hidden" value="', 1)[1].split('"', 1)[0]
    fields = {"csrf_token": base, "base": version, "quota_anonymous": "0", "quota_registered": "0",
              "quota_verified": "5", "period": "week", "timezone": "Asia/Jakarta", "degraded_mode": "allow"}  # fmt: skip
    preview = client.post("/console/tempo/policy", data={**fields, "preview": "1"}).get_data(as_text=True)
    assert 'data-key="quota.verified"' in preview and 'data-key="period"' in preview
    bad = client.post("/console/tempo/policy", data={**fields, "timezone": "Mars/Olympus", "preview": "1"})
    assert bad.status_code == 422 and "unknown time zone" in bad.get_data(as_text=True)
    assert client.post("/console/tempo/policy", data={**fields, "quota_verified": "-1"}).status_code == 422
    assert runner.invoke(args=["sites", "policy", "tempo", "--set", "quota.anonymous=1"]).exit_code == 0
    stale = client.post("/console/tempo/policy", data={**fields, "save": "1"})
    assert stale.status_code == 200 and "changed meanwhile" in stale.get_data(as_text=True)
    assert api.access("tempo:x", anonymous_id="visitor-0009")["meter"]["limit"] == 1  # nothing saved
    fresh = stale.get_data(as_text=True).split('name="base" type="hidden" value="', 1)[1].split('"', 1)[0]
    shown = stale.get_data(as_text=True).split('name="shown" value="', 1)[1].split('"', 1)[0]
    edited = client.post(
        "/console/tempo/policy", data={**fields, "quota_verified": "6", "base": fresh, "shown": shown, "save": "1"}
    )
    assert edited.status_code == 200 and 'data-key="quota.verified"' in edited.get_data(
        as_text=True
    )  # shown, not saved
    saved = client.post("/console/tempo/policy", data={**fields, "base": fresh, "shown": shown, "save": "1"})
    assert saved.status_code == 303
    assert api.access("tempo:x", anonymous_id="visitor-0009")["meter"]["limit"] == 0


def test_dead_letters_of_the_site_are_retried_not_another_sites(app, runner, api):
    make_site(app, "other", ("https://other.example",))
    with app.app_context():
        for site_id in (1, 2):
            db.session.add(OutboxMail(site_id=site_id, kind="activation", to_addr=f"x{site_id}@example.com",
                                      subject="s", body_text="t", body_html="h", attempts=12, dead_at=utcnow(),
                                      last_error="SMTPRecipientsRefused: no such user"))  # fmt: skip
        db.session.commit()
    client = staff_client(app, runner, "sup@tempo.co", "tempo", "support")
    page = client.get("/console/tempo/mail").get_data(as_text=True)
    assert "x1@example.com" in page and "x2@example.com" not in page and "no such user" in page
    assert _post(client, "/console/tempo/mail/retry", id="2").status_code == 303  # another site's: nothing
    assert _post(client, "/console/tempo/mail/retry", id="x").status_code == 400
    assert _post(client, "/console/tempo/mail/retry", all="1").status_code == 303
    with app.app_context():
        assert [m.dead_at is None for m in db.session.scalars(db.select(OutboxMail).order_by(OutboxMail.id))] == [
            True,
            False,
        ]


def test_a_member_of_several_sites_chooses_and_sees_only_theirs(app, runner, api):
    make_site(app, "other", ("https://other.example",))
    make_site(app, "third", ("https://third.example",))
    client = staff_client(app, runner, "multi@tempo.co", "tempo", "support")
    again = runner.invoke(args=["staff", "create", "multi@tempo.co", "--site", "other", "--role", "owner"])
    assert again.exit_code == 0 and "already set up" in again.output
    home = client.get("/console/").get_data(as_text=True)
    assert "/console/tempo/readers" in home and "/console/other/" in home and "third" not in home
    assert client.get("/console/third/readers").status_code == 404
    assert client.get("/console/tempo/").status_code == 403  # support: no figures on tempo
    assert client.get("/console/other/").status_code == 200
    assert PASSWORD and code  # (helpers shared with the browser test)


# --- languages -------------------------------------------------------------------------------------


def test_the_console_catalog_is_complete_and_compiled():

    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    root = ROOT_DIR / "meter" / "translations"
    with open(root / "console.pot", "rb") as f:
        template = read_po(f)
    with open(root / "id" / "LC_MESSAGES" / "console.po", "rb") as f:
        catalog = read_po(f)
    missing = [m.id for m in template if m.id and not (catalog.get(m.id) and all(catalog.get(m.id).string))]
    assert missing == []

    def norm(value):
        return tuple(value) if isinstance(value, list | tuple) else value

    with open(root / "id" / "LC_MESSAGES" / "console.mo", "rb") as f:
        compiled = {norm(m.id): norm(m.string) for m in read_mo(f) if m.id}
    expected = {norm(m.id): norm(m.string) for m in catalog if m.id}
    assert compiled == expected, "run pybabel compile -D console -d meter/translations"


def test_the_console_speaks_indonesian_by_default_and_english_when_asked(app, runner, api):
    client = app.test_client()
    assert "Masuk ke konsol" in client.get("/console/signin").get_data(as_text=True)
    assert "Sign in to the console" in client.get("/console/signin?lang=en").get_data(as_text=True)
    assert "Sign in to the console" in client.get("/console/signin").get_data(as_text=True)  # the choice sticks
    editor = staff_client(app, runner, "ed@tempo.co", "tempo", "editor")
    assert "Dinding pendaftaran" in editor.get("/console/tempo/?lang=id").get_data(as_text=True)
    assert "Registration wall" in editor.get("/console/tempo/?lang=en").get_data(as_text=True)


# --- bad input ---------------------------------------------------------------------------------------


def test_bad_input_is_a_page_never_a_500(app, runner, api):
    client = staff_client(app, runner, "own@tempo.co", "tempo", "owner")
    token = _token(client)
    huge = "9" * 30
    gets = [
        f"/console/tempo/readers/{huge}",
        f"/console/tempo/bulk-resend/{huge}",
        "/console/tempo/readers?q=%00%00",
        "/console/tempo/readers?q=" + "a" * 5000,
        "/console/tempo/?from=0001-01-01&to=0001-01-02",
        "/console/tempo/?to=0001-01-05",
        "/console/tempo/figures.csv?from=9999-12-01&to=9999-12-31",
        "/console/setup/" + "x" * 300,
        "/console/setup/%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00",
        "/console/" + "a" * 200 + "/",
    ]
    for path in gets:
        answer = client.get(path)
        assert answer.status_code < 500 and answer.mimetype in ("text/html", "text/csv"), path
    reader = client.get("/console/tempo/readers")  # (any page: the posts below carry the session's token)
    assert reader.status_code == 200
    posts = [
        (f"/console/tempo/readers/{huge}/resend", {}),
        ("/console/tempo/mail/retry", {"id": huge}),
        ("/console/tempo/bulk-resend", {"since": "0001-01-01"}),
        ("/console/tempo/bulk-resend", {"since": "9999-12-31"}),
        ("/console/tempo/keys/revoke", {"prefix": "\x00" * 100}),
        ("/console/tempo/origins", {"origin": "https://[::1"}),
        ("/console/tempo/origins/remove", {"origin": "\x00"}),
        (
            "/console/tempo/providers",
            {"name": "x\x00", "kind": "oidc", "client_id": "a", "secret": "b", "issuer": "ftp://x"},
        ),
        ("/console/signin", {"email": "a" * 400, "password": "x", "code": "1" * 20}),
    ]
    for path, data in posts:
        answer = client.post(path, data={"csrf_token": token, **data})
        assert answer.status_code < 500 and answer.mimetype == "text/html", path
    with app.app_context():
        from meter.accounts.models import Reader as R

        db.session.add(R(site_id=1, email="a@b.example", email_key="a@b.example", password_hash="!"))
        db.session.commit()
    late = client.post("/console/tempo/readers/1/subscription", data={"csrf_token": token, "until": "9999-12-31"})
    assert late.status_code == 303
    assert api.get("/v1/stats", query_string={"from": "9999-12-01", "to": "9999-12-31"}).status_code == 200
    assert api.get("/v1/stats", query_string={"to": "0001-01-05"}).status_code == 200


def test_console_is_not_a_sites_slug(runner, app):
    made = runner.invoke(args=["sites", "create", "console", "--name", "Console"])
    assert made.exit_code != 0 and "taken by meter itself" in made.output
