"""The operator commands (`flask sites|readers|meter|mail …`), run through Flask's CLI runner against the
fixtures' real database, Redis and SMTP server, and checked by what the HTTP API then answers."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from meter import create_app
from meter.dev.redis_server import free_port
from meter.platform import clock
from meter.platform.db import db
from meter.platform.models import OutboxMail
from tests.conftest import Api, _config_dict, links_in, token_of

KEY_RE = re.compile(r"^mk_[A-Za-z0-9]{20,}$")
DEFAULT_POLICY = {
    "quota": {"anonymous": 0, "registered": 0, "verified": 2},
    "period": "month",
    "timezone": "Asia/Jakarta",
    "degraded_mode": "allow",
    "crawlers": "off",
    "gifts": {"per_period": 0, "days": 14, "devices": 10},
}


def cli(runner, *args: str):
    return runner.invoke(args=list(args))


def ok(runner, *args: str) -> list[str]:
    result = cli(runner, *args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output.strip().splitlines()


def fails(runner, *args: str, reason: str = "") -> str:
    """The command exits non-zero with a reason (containing `reason`), never a traceback."""
    result = cli(runner, *args)
    assert result.exit_code not in (0, None), (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert reason.lower() in result.output.lower(), result.output
    return result.output


def one_line_error(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]


def access_status(client, key: str, article_class: str = "free") -> int:
    body = {"article": {"id": "tempo:news:1", "class": article_class}}
    return client.post("/v1/access", json=body, headers={"Authorization": f"Bearer {key}"}).status_code


def outbox_count(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(OutboxMail)).all())


# --- sites ------------------------------------------------------------------------------------


def test_sites_create_prints_the_key_alone_on_the_last_line_and_it_works(runner, client):
    lines = ok(runner, "sites", "create", "news", "--name", "News", "--origin", "https://News.example.com/")
    key = lines[-1]
    assert KEY_RE.match(key), lines
    assert all(key not in line for line in lines[:-1])  # printed once
    assert "https://news.example.com" in "\n".join(lines)  # the origin, normalised

    answer = Api(client, key, "news").access("news:1", cls="free")
    assert (answer["allowed"], answer["reason"]) == (True, "free_content")
    metered = Api(client, key, "news").access("news:2", anonymous_id="visitor-0001")
    assert (metered["allowed"], metered["reason"]) == (False, "registration_required")  # the default policy
    assert access_status(client, key[:-1] + ("A" if key[-1] != "A" else "B")) == 401

    listed = json.loads(ok(runner, "sites", "list", "--json")[0])
    assert [(s["slug"], s["name"], s["origins"]) for s in listed] == [("news", "News", ["https://news.example.com"])]
    policy = json.loads("\n".join(ok(runner, "sites", "policy", "news")))
    assert policy == DEFAULT_POLICY


def test_sites_create_refuses_a_duplicate_slug_with_one_line(runner):
    ok(runner, "sites", "create", "news", "--name", "News", "--origin", "https://news.example.com")
    output = fails(runner, "sites", "create", "news", "--name", "Other", reason="already exists")
    one_line_error(output)
    listed = json.loads(ok(runner, "sites", "list", "--json")[0])
    assert [s["name"] for s in listed] == ["News"]


@pytest.mark.parametrize("origin", ["ftp://news.example.com", "news.example.com", "https://", "javascript:alert(1)"])
def test_sites_create_refuses_a_bad_origin_with_one_line(runner, origin):
    output = fails(runner, "sites", "create", "news", "--name", "News", "--origin", origin, reason="origin")
    one_line_error(output)
    assert json.loads(ok(runner, "sites", "list", "--json")[0]) == []  # nothing half-made


def test_sites_create_refuses_a_bad_slug(runner):
    one_line_error(fails(runner, "sites", "create", "Bad_Slug", "--name", "X", reason="slug"))


def test_key_rotation_create_then_revoke(runner, client, api):
    old = api.key
    lines = ok(runner, "sites", "keys", "create", "tempo")
    new = lines[-1]
    assert KEY_RE.match(new) and new != old
    assert access_status(client, old) == 200 and access_status(client, new) == 200  # both work during rotation

    assert ok(runner, "sites", "keys", "revoke", "tempo", old[:12])
    assert access_status(client, old) == 401
    assert access_status(client, new) == 200

    fails(runner, "sites", "keys", "revoke", "tempo", "mk_zzzzzzzzz")  # unknown prefix
    fails(runner, "sites", "keys", "revoke", "tempo", old[:12])  # already revoked
    short = one_line_error(fails(runner, "sites", "keys", "revoke", "tempo", "mk_Y2"))  # too short to name one key
    assert "at least 6 characters" in short and "'mk_Y2' has 5" in short, short
    missing = one_line_error(fails(runner, "sites", "keys", "revoke", "tempo", "mk_zzzzzz"))
    assert "no live key of tempo starts with 'mk_zzzzzz'" in missing, missing
    fails(runner, "sites", "keys", "revoke", "nosuchsite", new[:12], reason="unknown site")
    fails(runner, "sites", "keys", "create", "nosuchsite", reason="unknown site")
    assert access_status(client, new) == 200


def test_a_key_of_one_site_cannot_be_revoked_through_another(runner, client, api):
    ok(runner, "sites", "create", "news", "--name", "News")
    fails(runner, "sites", "keys", "revoke", "news", api.key[:12])
    assert access_status(client, api.key) == 200


def test_revoke_accepts_a_longer_prefix_or_the_whole_key(runner, client, api):
    second = ok(runner, "sites", "keys", "create", "tempo")[-1]
    ok(runner, "sites", "keys", "revoke", "tempo", api.key[:20])
    assert access_status(client, api.key) == 401
    ok(runner, "sites", "keys", "revoke", "tempo", second)
    assert access_status(client, second) == 401


def test_policy_shows_json_and_set_changes_what_the_access_check_allows(runner, api, verified_reader):
    assert json.loads("\n".join(ok(runner, "sites", "policy", "tempo"))) == DEFAULT_POLICY
    changed = json.loads(
        "\n".join(ok(runner, "sites", "policy", "tempo", "--set", "quota.verified=3", "--set", "period=week"))
    )
    assert changed == {**DEFAULT_POLICY, "quota": {**DEFAULT_POLICY["quota"], "verified": 3}, "period": "week"}
    assert json.loads("\n".join(ok(runner, "sites", "policy", "tempo"))) == changed  # stored

    _, token = verified_reader()
    for n, article in enumerate(("a", "b", "c"), start=1):
        answer = api.access(f"tempo:koran:{article}", reader_token=token)
        assert (answer["allowed"], answer["reason"], answer["meter"]["used"]) == (True, "unlocked_now", n)
        assert answer["meter"]["limit"] == 3
    refused = api.access("tempo:koran:d", reader_token=token)
    assert (refused["allowed"], refused["reason"]) == (False, "quota_exhausted")
    end = datetime.fromisoformat(refused["meter"]["period_end"])
    assert end.weekday() == 0 and (end.hour, end.minute) == (0, 0) and end.utcoffset() == timedelta(hours=7)
    assert timedelta(0) < end - clock.now() <= timedelta(days=7)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("quota.verified=-1", "quota.verified"),
        ("quota.verified=lots", "quota.verified"),
        ("quota.verified=10001", "quota.verified"),
        ("quota.premium=1", "quota"),
        ("period=fortnight", "period"),
        ("period=rolling:0d", "period"),
        ("timezone=Mars/Base", "time zone"),
        ("timezone=../../etc/passwd", "time zone"),
        ("degraded_mode=maybe", "degraded_mode"),
        ("nokey=1", "nokey"),
        ("quota.verified", "KEY=VALUE"),
    ],
)
def test_policy_set_refuses_bad_values_and_changes_nothing(runner, api, change, reason):
    output = fails(runner, "sites", "policy", "tempo", "--set", "quota.anonymous=1", "--set", change, reason=reason)
    one_line_error(output)
    assert json.loads("\n".join(ok(runner, "sites", "policy", "tempo"))) == DEFAULT_POLICY  # not even the good one


def test_policy_of_an_unknown_site(runner):
    one_line_error(fails(runner, "sites", "policy", "nosuchsite", reason="unknown site"))


# --- readers ----------------------------------------------------------------------------------


def test_readers_show_text_and_json_with_this_periods_unlocks(runner, api, verified_reader):
    reader_id, token = verified_reader("pembaca@example.com")
    shown = json.loads(ok(runner, "readers", "show", "tempo", "pembaca@example.com", "--json")[0])
    assert (shown["reader_id"], shown["email"], shown["state"]) == (reader_id, "pembaca@example.com", "verified")
    assert shown["unlocked"] == [] and shown["subscription_until"] is None and shown["verified_at"]
    assert shown["verified_at"].endswith("+00:00") and shown["created_at"].endswith("+00:00")  # times say their zone

    api.access("tempo:koran:b", reader_token=token)
    api.access("tempo:koran:a", reader_token=token)
    api.access("tempo:koran:a", reader_token=token)  # re-reading counts once
    api.access("tempo:koran:c", reader_token=token)  # refused: not an unlock
    api.access("tempo:laput:1", cls="premium", reader_token=token)
    shown = json.loads(ok(runner, "readers", "show", "tempo", "PEMBACA@example.COM", "--json")[0])
    assert shown["unlocked"] == ["tempo:koran:a", "tempo:koran:b"]

    text = ok(runner, "readers", "show", "tempo", "pembaca@example.com")
    fields = dict(line.split(": ", 1) for line in text)
    assert fields["email"] == "pembaca@example.com"
    assert fields["state"] == "verified"
    assert fields["reader_id"] == str(reader_id)
    assert fields["unlocked"] == "tempo:koran:a, tempo:koran:b"
    assert fields["created_at"].endswith("+00:00") and fields["verified_at"].endswith("+00:00")


def test_readers_show_of_an_unknown_site_or_reader(runner, api, verified_reader):
    verified_reader("pembaca@example.com")
    one_line_error(fails(runner, "readers", "show", "nosuchsite", "pembaca@example.com", reason="unknown site"))
    one_line_error(fails(runner, "readers", "show", "tempo", "nobody@example.com", reason="unknown reader"))
    one_line_error(fails(runner, "readers", "show", "tempo", "not an address", reason="unknown reader"))
    ok(runner, "sites", "create", "news", "--name", "News")
    fails(runner, "readers", "show", "news", "pembaca@example.com", reason="unknown reader")  # sites stay apart


def test_readers_resend_activation_queues_one_mail_that_arrives(app, runner, api, register, mailbox, deliver):
    first = register("pembaca@example.com")
    mailbox.clear()
    before = outbox_count(app)
    # the registration's mail spent the address's budget: refused, unless forced
    refused = fails(runner, "readers", "resend-activation", "tempo", "pembaca@example.com", reason="mail budget")
    assert "--force" in one_line_error(refused)
    assert outbox_count(app) == before
    lines = ok(runner, "readers", "resend-activation", "tempo", "Pembaca@Example.com", "--force")
    assert "pembaca@example.com" in lines[-1]
    assert outbox_count(app) == before + 1
    assert deliver() == (1, 0)
    [envelope] = mailbox.messages
    assert envelope["to"] == ["pembaca@example.com"]
    [link] = [link for link in links_in(envelope["msg"]) if "/activate/" in link]
    assert link.startswith("http://meter.test/tempo/activate/") and first
    activated = api.post("/v1/activations", json={"token": token_of(link)})
    assert activated.status_code == 200 and activated.get_json()["state"] == "verified"

    one_line_error(fails(runner, "readers", "resend-activation", "tempo", "pembaca@example.com", reason="verified"))
    fails(runner, "readers", "resend-activation", "tempo", "nobody@example.com", reason="unknown reader")
    fails(runner, "readers", "resend-activation", "tempo")  # neither EMAIL nor --all-unverified
    assert outbox_count(app) == before + 1


def test_readers_resend_activation_to_all_unverified(app, runner, api, register, verified_reader, mailbox, deliver):
    verified_reader("done@example.com")
    register("one@example.com")
    register("two@example.com")
    mailbox.clear()
    assert ok(runner, "readers", "resend-activation", "tempo", "--all-unverified")[-1].startswith(
        "queued: 0, skipped (sent within the hour): 2"
    )
    clock.travel(timedelta(hours=2))
    dry = ok(runner, "readers", "resend-activation", "tempo", "--all-unverified", "--since", "7d", "--dry-run")
    assert dry[-1].startswith("would queue: 2")
    assert deliver() == (0, 0)
    assert ok(runner, "readers", "resend-activation", "tempo", "--all-unverified", "--since", "1h")[-1].startswith(
        "queued: 0"
    )
    assert ok(runner, "readers", "resend-activation", "tempo", "--all-unverified", "--since", "7d")[-1].startswith(
        "queued: 2"
    )
    assert deliver() == (2, 0)
    assert sorted(rcpt for m in mailbox.messages for rcpt in m["to"]) == ["one@example.com", "two@example.com"]
    fails(runner, "readers", "resend-activation", "tempo", "--all-unverified", "--since", "soon")


def test_readers_subscribe_and_unsubscribe(runner, api, verified_reader):
    reader_id, token = verified_reader("pembaca@example.com")
    refused = api.access("tempo:laput:1", cls="premium", reader_token=token)
    assert (refused["allowed"], refused["reason"]) == (False, "subscription_required")

    ok(runner, "readers", "subscribe", "tempo", "pembaca@example.com", "--until", "2099-01-01T00:00:00Z")
    allowed = api.access("tempo:laput:1", cls="premium", reader_token=token)
    assert (allowed["allowed"], allowed["reason"], allowed["reader"]["state"]) == (True, "subscriber", "subscriber")
    shown = json.loads(ok(runner, "readers", "show", "tempo", "pembaca@example.com", "--json")[0])
    assert (shown["state"], shown["subscription_until"]) == ("subscriber", "2099-01-01T00:00:00+00:00")
    me = api.get("/v1/readers/me", headers={"X-Reader-Token": token}).get_json()
    assert me["state"] == "subscriber" and me["subscription_until"].startswith("2099-01-01T00:00:00")

    ended = ok(runner, "readers", "unsubscribe", "tempo", "pembaca@example.com")
    assert ended == ["ended the subscription of pembaca@example.com (it ran until 2099-01-01T00:00:00+00:00)"]
    again = api.access("tempo:laput:1", cls="premium", reader_token=token)
    assert (again["allowed"], again["reason"], again["reader"]["state"]) == (False, "subscription_required", "verified")

    assert ok(runner, "readers", "unsubscribe", "tempo", "pembaca@example.com") == [
        "pembaca@example.com had no running subscription; nothing changed"
    ]
    for bad in ("next-year", "2099-13-01", "01/01/2099", ""):
        fails(runner, "readers", "subscribe", "tempo", "pembaca@example.com", "--until", bad, reason="ISO-8601")
    assert json.loads(ok(runner, "readers", "show", "tempo", "pembaca@example.com", "--json")[0])["state"] == "verified"
    fails(runner, "readers", "subscribe", "tempo", "nobody@example.com", "--until", "2099-01-01T00:00:00Z")
    fails(runner, "readers", "unsubscribe", "nosuchsite", "pembaca@example.com")
    assert reader_id


@pytest.mark.parametrize("until", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+07:00"])
def test_subscribe_with_a_date_out_of_range_in_utc_exits_with_a_reason(runner, api, verified_reader, until):
    verified_reader("pembaca@example.com")
    fails(runner, "readers", "subscribe", "tempo", "pembaca@example.com", "--until", until)
    assert json.loads(ok(runner, "readers", "show", "tempo", "pembaca@example.com", "--json")[0])["state"] == "verified"


def test_subscribe_with_an_offset_is_kept_in_utc(runner, api, verified_reader):
    verified_reader("pembaca@example.com")
    ok(runner, "readers", "subscribe", "tempo", "pembaca@example.com", "--until", "2099-01-01T07:00:00+07:00")
    shown = json.loads(ok(runner, "readers", "show", "tempo", "pembaca@example.com", "--json")[0])
    assert shown["subscription_until"] == "2099-01-01T00:00:00+00:00"
    text = dict(line.split(": ", 1) for line in ok(runner, "readers", "show", "tempo", "pembaca@example.com"))
    assert text["subscription_until"] == "2099-01-01T00:00:00+00:00 (2099-01-01 07:00 Asia/Jakarta)"


@pytest.mark.parametrize("until", ["2027-01-01", "2027-01-01T00:00:00", "2027-01-01 07:00"])
def test_subscribe_refuses_a_time_without_a_utc_offset_as_the_api_does(runner, api, verified_reader, until):
    """A time without an offset is any zone's: refused, saying what to write, rather than taken as UTC."""
    verified_reader("pembaca@example.com")
    refused = fails(runner, "readers", "subscribe", "tempo", "pembaca@example.com", "--until", until)
    assert "no UTC offset" in refused and "2027-01-01T00:00:00+07:00" in refused, refused
    assert json.loads(ok(runner, "readers", "show", "tempo", "pembaca@example.com", "--json")[0])["state"] == "verified"
    put = api.put("/v1/readers/1/subscription", json={"until": until.replace(" ", "T")})
    assert put.status_code == 422  # the API refuses the same


# --- meter and mail ---------------------------------------------------------------------------


@pytest.mark.parametrize("period", ["month", "rolling:30d"])
@pytest.mark.parametrize("redis_data", ["present", "flushed"])
def test_meter_reset_gives_the_quota_back(runner, api, redis_client, verified_reader, period, redis_data):
    ok(runner, "sites", "policy", "tempo", "--set", f"period={period}")
    _, token = verified_reader()
    assert api.access("tempo:koran:a", reader_token=token)["allowed"]
    assert api.access("tempo:koran:b", reader_token=token)["allowed"]
    assert api.access("tempo:koran:c", reader_token=token)["reason"] == "quota_exhausted"
    unlock_keys = [k for k in redis_client.keys("*") if ":u:" in k]
    assert unlock_keys  # the meter lives in Redis now
    if redis_data == "flushed":
        redis_client.flushall()

    lines = ok(runner, "meter", "reset", "tempo", "pembaca@example.com")
    assert "cleared 2 unlocks" in lines[-1]
    shown = json.loads(ok(runner, "readers", "show", "tempo", "pembaca@example.com", "--json")[0])
    assert shown["unlocked"] == []

    c = api.access("tempo:koran:c", reader_token=token)
    assert (c["allowed"], c["reason"], c["meter"]["used"]) == (True, "unlocked_now", 1)
    a = api.access("tempo:koran:a", reader_token=token)
    assert (a["allowed"], a["reason"], a["meter"]["used"]) == (True, "unlocked_now", 2)
    assert api.access("tempo:koran:b", reader_token=token)["reason"] == "quota_exhausted"
    fails(runner, "meter", "reset", "tempo", "nobody@example.com", reason="unknown reader")


def test_meter_reset_while_redis_is_unreachable_does_not_claim_success(runner, api, verified_reader, database_url):
    _, token = verified_reader()
    api.access("tempo:koran:a", reader_token=token)
    api.access("tempo:koran:b", reader_token=token)
    assert api.access("tempo:koran:c", reader_token=token)["reason"] == "quota_exhausted"

    # The operator's shell: the same database, but Redis cannot be reached from it.
    cut_off = create_app(
        {**_config_dict(), "SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    )
    try:
        result = cut_off.test_cli_runner().invoke(args=["meter", "reset", "tempo", "pembaca@example.com"])
    finally:
        with cut_off.app_context():
            db.engine.dispose()
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)

    after = api.access("tempo:koran:c", reader_token=token)
    if result.exit_code == 0:  # it said it worked: then it did
        assert (after["allowed"], after["reason"], after["meter"]["used"]) == (True, "unlocked_now", 1)
    else:  # or it said, in one line, that it could not
        one_line_error(result.output)
        assert "redis" in result.output.lower()


def test_meter_reset_touches_only_that_reader(runner, api, verified_reader):
    _, first = verified_reader("one@example.com")
    _, second = verified_reader("two@example.com")
    for token in (first, second):
        api.access("tempo:koran:a", reader_token=token)
        api.access("tempo:koran:b", reader_token=token)
    ok(runner, "meter", "reset", "tempo", "one@example.com")
    assert api.access("tempo:koran:c", reader_token=first)["reason"] == "unlocked_now"
    assert api.access("tempo:koran:c", reader_token=second)["reason"] == "quota_exhausted"


def test_mail_worker_once_delivers_the_queue(app, runner, api, mailbox):
    for address in ("one@example.com", "two@example.com"):
        assert api.post("/v1/readers", json={"email": address, "password": "rahasia-sekali"}).status_code == 202
    assert mailbox.messages == []
    ok(runner, "mail", "worker", "--once")
    assert sorted(rcpt for m in mailbox.messages for rcpt in m["to"]) == ["one@example.com", "two@example.com"]
    with app.app_context():
        rows = db.session.scalars(select(OutboxMail)).all()
        assert all(row.sent_at is not None and row.attempts == 1 for row in rows)
    ok(runner, "mail", "worker", "--once")
    assert len(mailbox.messages) == 2  # nothing twice
