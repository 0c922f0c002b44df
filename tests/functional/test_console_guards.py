"""The console's guards where attacks met them: failed sign-ins limited per staff address and client
address together (an attacker's guesses do not lock the owner out), a code that serves once under racing
sign-ins, reader searches audited and throttled per member, sign-ins recorded on every site the member sees."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from meter.accounts.models import Reader
from meter.accounts.rules import emails
from meter.console.models import StaffSession
from meter.platform.db import db
from tests.conftest import make_site
from tests.console_helpers import PASSWORD, code, create_staff, csrf_of, set_up, sign_in, staff_client

ATTACKER = "203.0.113.66"


def _from(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _audit(runner, *args) -> list[dict]:
    result = runner.invoke(args=["audit", "show", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# --- failed sign-ins: per account and client address, with a ceiling ----------------------------------


def test_an_attackers_guesses_do_not_lock_the_owner_out(app, runner, api):
    """The attack: six wrong sign-ins for the owner's address from one client address, then the owner's
    right password and code from another address got 429 for 5 minutes. The attacker's address is
    locked now, the owner's own browser gets in."""
    secret = set_up(app.test_client(), create_staff(runner, "own@tempo.co", "tempo", "owner"))
    attacker = _from(app, ATTACKER)
    for _ in range(5):
        assert sign_in(attacker, "own@tempo.co", secret, password="guess guess guess").status_code == 422
    assert sign_in(attacker, "own@tempo.co", secret, password="guess guess guess").status_code == 429
    assert sign_in(attacker, "own@tempo.co", secret).status_code == 429  # even the right one, from there
    assert sign_in(_from(app, "198.51.100.7"), "own@tempo.co", secret).status_code == 303


def test_guesses_from_many_addresses_meet_a_ceiling_per_account(app, runner, api):
    secret = set_up(app.test_client(), create_staff(runner, "own@tempo.co", "tempo", "owner"))
    for n in range(4):
        guesser = _from(app, f"198.51.100.{n}")
        for _ in range(5):
            assert sign_in(guesser, "own@tempo.co", secret, password="guess guess guess").status_code == 422
    refused = sign_in(_from(app, "198.51.100.99"), "own@tempo.co", secret)
    assert refused.status_code == 429 and refused.headers["Retry-After"]


def test_an_error_building_the_accounts_key_refuses_the_sign_in(app, runner, api, monkeypatch):
    """Fails closed: when the staff address's key cannot be computed, the sign-in is refused, not let
    through unlimited."""
    secret = set_up(app.test_client(), create_staff(runner, "own@tempo.co", "tempo", "owner"))
    client = app.test_client()
    token = csrf_of(client.get("/console/signin").get_data(as_text=True))

    def broken(_address: str) -> str:
        raise RuntimeError("no key today")

    monkeypatch.setattr(emails, "lookup_key", broken)
    data = {"csrf_token": token, "email": "own@tempo.co", "password": PASSWORD, "code": code(secret, 1)}
    assert client.post("/console/signin", data=data).status_code == 429


# --- one code, one session ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_one_code_signs_in_once_under_eight_racing_sign_ins(app, runner, api):
    """The attack: six sign-ins at once with one code gave five sessions (the last used step was read,
    then written). The step is taken by a conditional UPDATE: exactly one of eight racing sign-ins wins."""
    secret = set_up(app.test_client(), create_staff(runner, "own@tempo.co", "tempo", "owner"))
    the_code = code(secret, 1)
    forms = []
    for n in range(8):
        client = _from(app, f"10.9.0.{n}")
        token = csrf_of(client.get("/console/signin").get_data(as_text=True))
        forms.append((client, {"csrf_token": token, "email": "own@tempo.co", "password": PASSWORD, "code": the_code}))
    barrier = threading.Barrier(len(forms))

    def attempt(form) -> int:
        client, data = form
        barrier.wait(timeout=20)
        return client.post("/console/signin", data=data).status_code

    with ThreadPoolExecutor(max_workers=len(forms)) as pool:
        statuses = list(pool.map(attempt, forms))
    assert sorted(statuses) == [303] + [422] * 7, statuses
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(StaffSession)) == 1


# --- reader searches: audited, throttled ----------------------------------------------------------------


def _reader(app, email: str) -> None:
    with app.app_context():
        db.session.add(Reader(site_id=1, email=email, email_key=email, password_hash="!"))
        db.session.commit()


def test_every_reader_search_is_audited_with_its_query_and_count(app, runner, api):
    """The attack: 1,404 two-character searches harvested addresses and left no row (only opening a
    reader's page was logged). Each search is a row now: who, the query, how many were found."""
    for name in ("lupa", "lupi", "budi"):
        _reader(app, f"{name}@example.com")
    client = staff_client(app, runner, "sup@tempo.co", "tempo", "support")
    assert client.get("/console/tempo/readers", query_string={"q": "lu"}).status_code == 200
    assert client.get("/console/tempo/readers", query_string={"q": "zz"}).status_code == 200
    assert client.get("/console/tempo/readers").status_code == 200  # the empty form is no search
    searches = [e for e in _audit(runner, "--site", "tempo") if e["action"] == "reader.search"]
    assert [(e["actor"], e["detail"]) for e in searches] == [
        ("sup@tempo.co", {"query": "zz", "results": 0}),
        ("sup@tempo.co", {"query": "lu", "results": 2}),
    ]


@pytest.mark.config(RATELIMIT_CONSOLE_SEARCH="3/minute")
def test_reader_searches_are_throttled_per_member_with_a_page_that_says_so(app, runner, api):
    client = staff_client(app, runner, "sup@tempo.co", "tempo", "support")
    for n in range(3):
        assert client.get("/console/tempo/readers", query_string={"q": f"a{n}"}).status_code == 200
    assert client.get("/console/tempo/readers").status_code == 200  # no query: not counted
    refused = client.get("/console/tempo/readers", query_string={"q": "a9"})
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert "Too many searches" in refused.get_data(as_text=True)
    indonesian = client.get("/console/tempo/readers", query_string={"q": "a9", "lang": "id"})
    assert indonesian.status_code == 429 and "Terlalu banyak pencarian" in indonesian.get_data(as_text=True)
    other = staff_client(app, runner, "sup2@tempo.co", "tempo", "support")
    assert other.get("/console/tempo/readers", query_string={"q": "a9"}).status_code == 200  # per member
    searches = [e for e in _audit(runner, "--site", "tempo") if e["action"] == "reader.search"]
    assert len(searches) == 4  # a refused search is not run, and not logged as one


# --- sign-ins on every site the member sees --------------------------------------------------------------


def test_a_sign_in_is_in_the_log_of_every_site_the_member_sees(app, runner, api):
    """`console.signin` rows carried no site: an owner never saw who signed in to their site."""
    make_site(app, "koran", ("https://koran.example",))
    create_staff(runner, "sup@tempo.co", "koran", "support")
    member = staff_client(app, runner, "sup@tempo.co", "tempo", "support")
    assert member.get("/console/").status_code == 200
    for slug in ("tempo", "koran"):
        signins = [e for e in _audit(runner, "--site", slug) if e["action"] == "console.signin"]
        assert [e["actor"] for e in signins] == ["sup@tempo.co"], slug
    owner = staff_client(app, runner, "own@tempo.co", "tempo", "owner")
    page = owner.get("/console/tempo/audit").get_data(as_text=True)
    assert page.count('data-action="console.signin"') == 2  # the support member's, and the owner's own
