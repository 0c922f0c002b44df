"""Model-based test of where the features meet (hypothesis stateful testing): ONE site, three people.

Alice and Bob are honest; Mallory is the attacker. Each has two addresses (only they read mail sent
there), a browser (a Flask test client with its cookies), a Facebook account that gives their
first address and one that gives none, and two AMP reader ids. Facebook is the STAND-IN of
tests/social_standin.py (meter's real OAuth client against a local server in this process): unlike
the OpenID provider of tests/oidc (a Node process), it lets each sign-in choose whether the account
gives an address, at no start-up cost. Mail goes through the real SMTP catcher; a person follows the
link of a mail they expect (their own registration, address change, deletion, social address), and
every other mail is opened as it arrives by a mail scanner that runs a page's own script (an
auto-submitting form is posted) and presses no button.

Everyone starts with an account at their first address; gifts are switched on from the command line
(`gifts.per_period=3`); Bob subscribes. Then random steps: registrations (pages and API, the
activation link followed), password logins (pages, API, AMP's login flow `?rid=…&return=…`),
Facebook sign-ins with and without an address, Mallory typing a victim's address on Facebook's
address page (then signing in with Facebook again), a victim logging in through Mallory's
`/{site}/login?rid=MALLORY&next=…` (or `/{site}/login/facebook?rid=…`), subscriptions, gifts made
and opened, access checks (articles of the default meter and of a second, `koran`), policy changes from the command line (`flask sites policy --set`) and
from the console's form, password and address changes, deletions (`DELETE /v1/readers/me`, the
account page) and the database cut away for a moment (tests/faults.py). Left out: AMP pingbacks
and anonymous-to-account merges, which add ledger rows without an `unlocked_now` answer.

After every step, against the real app, Redis and database:
 (a) no deleted reader's data is reachable: no row names its id, no Redis key or field of it is
     left (but the empty state an access check caches for an id that is gone), its gift links are
     refused, and its id is never given to a new reader;
 (b) only the owner of an address is signed in to its account (browsers, API tokens, AMP reader
     ids), no account holds an honest address its owner did not make, and no way in is listed that
     the owner did not add;
 (c) every way in of an account and every AMP reader id linked to it are on its account page;
 (d) the ledger holds every unlock that was answered (`unlocked_now` answers == new ledger rows);
 (e) policy keys a change did not touch keep their values.
The surfaces (c) reads are small functions below (`amp_entries_listed`, `ways_listed`, `amp_reader_of`).
"""

from __future__ import annotations

import itertools
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from meter import worker
from meter.access.models import Unlock, UnlockDoubt
from meter.access.rules import amp_readers
from meter.access.rules.metering.layout import buckets, pack_state, place, reader_subject
from meter.accounts.models import Reader, ReaderSession
from meter.gifts.models import Gift
from meter.gifts.rules import links as gift_links
from meter.platform import clock, mail, redis_keys
from meter.platform.db import db
from meter.sites.models import Site
from meter.sites.rules import sites
from meter.sites.rules.policy import DEFAULT_POLICY, normalise
from meter.social.models import Identity
from tests.conftest import Api, links_in, make_site, rebuilt
from tests.console_helpers import staff_client
from tests.faults import DatabaseCut
from tests.social_standin import StandIn

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(300)]  # about 30 s alone; minutes at a load average of 10

SLUG, ORIGIN = "model", "https://model.example"
HONEST, ATTACKER = ("alice", "bob"), "mallory"
ACTORS = (*HONEST, ATTACKER)
ARTICLES = [f"model:artikel:{i}" for i in range(6)]
# The site has a second meter, `koran`, for that section; a section the policy does not name counts in
# the default meter, as an article without one does.
SECTIONS = {"model:artikel:3": "koran", "model:artikel:4": "koran", "model:artikel:5": "olahraga"}
LABELS = {"password": "Email and password", "facebook": "Facebook"}
CLI_KEYS = {
    "gifts.per_period": st.integers(0, 4),
    "gifts.devices": st.integers(1, 5),
    "gifts.days": st.integers(1, 30),
    "crawlers": st.sampled_from(["off", "verified"]),
    "degraded_mode": st.sampled_from(["allow", "deny"]),
    "quota.anonymous": st.integers(0, 2),
    "quota.verified": st.integers(0, 4),
    "meters.koran.quota.anonymous": st.integers(0, 2),
    "meters.koran.quota.verified": st.integers(0, 3),
}
_serial = itertools.count()
NOBODY = pack_state(False, 0, []).decode()  # the state an access check caches for a reader id that is gone


# --- the surfaces the invariants read (one small function each, for the lead to adapt) ---------------


def amp_entries_listed(account_html: str) -> int:
    """How many linked AMP reader ids the account page lists: its sessions' rows that read "AMP · <when> · <browser>"."""
    section = account_html.split('id="sessions-heading"', 1)[1].split("</section>", 1)[0]
    return len(re.findall(r"<li><span><strong>AMP · ", section))


def ways_listed(account_html: str) -> set[str]:
    """The labels under "Ways to sign in" on the account page."""
    section = account_html.split('id="methods-heading"', 1)[1].split("</section>", 1)[0]
    return {re.sub(r"\s+", " ", label).strip() for label in re.findall(r"<li><span>(.*?)</span>", section, re.S)}


def amp_reader_of(app, redis, site_id: int, rid: str) -> int | None:
    """The reader an AMP reader id is signed in as: AMP's authorization says logged in, and the link
    in Redis (its builder: meter.access.rules.amp_readers.key) names the reader."""
    answer = app.test_client().get(f"/amp/{SLUG}/authorization", query_string={"rid": rid, "url": f"{ORIGIN}/amp/x"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    if not answer.get_json()["data"]["isLoggedIn"]:
        return None
    with app.app_context():
        key = amp_readers.key(site_id, rid)
    linked = amp_readers.parse(redis.get(key) or "")
    return linked[0] if linked else None


# --- forms and mail --------------------------------------------------------------------------------


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
        elif not self.forms or (not a.get("name") and tag != "option"):
            return
        fields = self.forms[-1]["fields"]
        if tag == "input" and a.get("type") not in ("submit", "button", "image"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and (self._select not in fields or "selected" in a):
            fields[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a["name"]
            fields[a["name"]] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea and self.forms:
            self.forms[-1]["fields"][self._textarea] += data


def form_of(html: str, action: str | None = None) -> dict:
    """The fields of the page's form (posting to `action` when given: a path, compared without query)."""
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if action is None or urlsplit(form["action"]).path in ("", urlsplit(action).path):
            return dict(form["fields"])
    raise AssertionError(f"no form posting to {action}")


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def submits_itself(html: str) -> bool:
    return re.search(r"<script[^>]*>[^<]*\.submit\(\)", html) is not None


# --- the model -------------------------------------------------------------------------------------


@dataclass
class Account:
    reader_id: int
    email: str
    password: str | None
    methods: set[str]
    amp: set[str] = field(default_factory=set)  # AMP reader ids its owner linked through AMP's login flow
    subscriber: bool = False
    gifts: dict[str, str] = field(default_factory=dict)  # gift token → article id


@dataclass
class Actor:
    name: str
    browser: object
    addresses: tuple[str, str]
    rids: tuple[str, str]
    fb_with: str  # Facebook subject whose account gives the actor's first address
    fb_without: str  # Facebook subject whose account gives no address
    tokens: list[str] = field(default_factory=list)  # API reader tokens
    passwords: itertools.count = field(default_factory=itertools.count)

    def new_password(self) -> str:
        return f"{self.name}-rahasia-{next(self.passwords)}"


@pytest.fixture
def standin():
    server = StandIn().start()
    yield server
    server.stop()


@pytest.mark.config(RATELIMIT_ENABLED=False, RATELIMIT_RESEND_EMAIL="10000/minute")
def test_accounts_gifts_amp_and_policy_keep_their_rules(app, database_url, redis_client, mailbox, tmp_path, standin):
    cut = DatabaseCut(database_url)
    app = rebuilt(
        app,
        SQLALCHEMY_DATABASE_URI=cut.url,
        SITE_CACHE_TTL=60.0,  # as deployed: access checks answer from the cached site while the database is away
        FACEBOOK_DIALOG_URL=f"{standin.base}/facebook/dialog/oauth",
        FACEBOOK_GRAPH_URL=f"{standin.base}/facebook/graph",
    )
    runner = app.test_cli_runner()
    server = Api(app.test_client(), make_site(app, SLUG, (ORIGIN,)), SLUG)
    with app.app_context():
        site_id = sites.by_slug(SLUG).id
    secret = tmp_path / "facebook-secret"
    secret.write_text(standin.facebook["client_secret"])
    facebook = ["--kind", "facebook", "--client-id", standin.facebook["client_id"], "--client-secret-file", str(secret)]
    added = runner.invoke(args=["sites", "login-providers", "add", SLUG, "facebook", *facebook])
    assert added.exit_code == 0, added.output
    sites.forget_cached()
    editor = staff_client(app, runner, "editor@model.example", SLUG, "editor")

    def sql(query):
        with app.app_context():
            try:
                return db.session.scalar(query)
            finally:
                db.session.remove()

    class Integrity(RuleBasedStateMachine):
        @initialize()
        def fresh_people(self) -> None:
            clock.reset()
            n = next(_serial)
            self.actors = {}
            for name in ACTORS:
                browser = app.test_client()
                browser.get(f"/{SLUG}/login?lang=en")  # the pages in English from now on
                self.actors[name] = Actor(
                    name,
                    browser,
                    (f"{name}.{n}@example.com", f"{name}.{n}.lain@example.com"),
                    (f"amp-{name}-{n:04d}-satu", f"amp-{name}-{n:04d}-dua"),
                    f"fb-{name}-{n}",
                    f"fbx-{name}-{n}",
                )
            self.owner = {a: actor.name for actor in self.actors.values() for a in actor.addresses}
            self.accounts: dict[int, Account] = {}
            self.deleted: dict[int, Account] = {}
            self.identities: dict[str, int] = {}  # Facebook subject → reader id, linked by the owner
            self.handled: set[int] = set()  # mails already acted on
            self.unlocked = 0  # `unlocked_now` answers
            self.visitors = itertools.count()
            self.pages_seen: set[tuple] = set()
            with app.app_context():
                site = db.session.get(Site, site_id)
                site.policy = normalise(DEFAULT_POLICY)
                db.session.commit()
                sites.forget_cached()
                self.ledger_base = db.session.scalar(select(func.count()).select_from(Unlock))
                db.session.remove()
            self.policy = normalise(DEFAULT_POLICY)
            self.set_policy("gifts.per_period", 3)
            self.set_policy("meters.koran.quota.verified", 1)
            self.set_policy("sections.koran", "koran")
            for name, via in zip(ACTORS, ("page", "api", "page"), strict=True):
                self.register(name, 0, via)  # everyone starts with an account, so every rule has work
            self.subscribe("bob")

        # --- helpers ---------------------------------------------------------------------------

        def account_at(self, address: str) -> Account | None:
            return next((acc for acc in self.accounts.values() if acc.email == address), None)

        def cookie(self, actor: Actor) -> str | None:
            found = actor.browser.get_cookie(f"meter_r_{SLUG}")
            return found.value if found else None

        def me(self, token: str | None) -> dict | None:
            if not token:
                return None
            answer = server.get("/v1/readers/me", headers={"X-Reader-Token": token})
            return answer.get_json() if answer.status_code == 200 else None

        def signed_in(self, actor: Actor) -> Account | None:
            """The model's account the actor's browser is signed in to (an honest actor's is always known)."""
            found = self.me(self.cookie(actor))
            return self.accounts.get(found["reader_id"]) if found else None

        def new_account(self, actor: Actor, email: str, password: str | None, methods: set[str]) -> Account:
            found = self.me(self.cookie(actor))
            assert found and found["email"] == email, (actor.name, email, found)
            assert found["reader_id"] not in self.deleted, f"(a) reader id {found['reader_id']} given again"
            acc = self.accounts[found["reader_id"]] = Account(found["reader_id"], email, password, methods)
            return acc

        def access(self, **body) -> dict:
            answer = server.post("/v1/access", json={"record": True, **body})
            assert answer.status_code == 200, answer.get_data(as_text=True)
            found = answer.get_json()
            self.unlocked += found["reason"] == "unlocked_now"
            return found

        def mail_link(self, address: str, part: str) -> str:
            """The link with `part` in the newest mail to `address` (delivered now), which its reader expects
            and follows; the other new mail goes to the scanners."""
            with app.app_context():
                mail.deliver_due()
            for message in reversed(mailbox.to(address)):
                found = [u for u in links_in(message["msg"]) if part in u]
                if found and id(message) not in self.handled:
                    self.handled.add(id(message))
                    self.scan()
                    return found[0]
            raise AssertionError(f"no mail with {part} reached {address}")

        def scan(self) -> None:
            """Mail nobody expects, as it arrives at an honest person's inbox: a mail scanner opens each link
            and runs the page's own script (an auto-submitting form is posted); it presses no button."""
            with app.app_context():
                mail.deliver_due()
            scanner = app.test_client()
            for address in (a for name in HONEST for a in self.actors[name].addresses):
                for message in mailbox.to(address):
                    if id(message) in self.handled:
                        continue
                    self.handled.add(id(message))
                    for link in links_in(message["msg"]):
                        if not link.startswith(f"http://meter.test/{SLUG}/"):
                            continue
                        page = scanner.get(path_of(link))
                        html = page.get_data(as_text=True)
                        if page.status_code == 200 and submits_itself(html):
                            scanner.post(path_of(link), data=form_of(html, path_of(link)))

        def follow(self, browser, link: str, status: int = 200):
            """Open a mailed link and press its page's button, as its reader does."""
            page = browser.get(path_of(link))
            assert page.status_code == 200, page.get_data(as_text=True)[:300]
            done = browser.post(path_of(link), data=form_of(page.get_data(as_text=True), path_of(link)))
            assert done.status_code == status, done.get_data(as_text=True)[:300]
            return done

        def page_post(self, browser, page_path: str, action: str, **values):
            page = browser.get(page_path)
            assert page.status_code == 200, page.get_data(as_text=True)[:300]
            return browser.post(action, data={**form_of(page.get_data(as_text=True), action), **values})

        def unlink_amp(self, rid: str) -> None:
            for acc in self.accounts.values():
                acc.amp.discard(rid)

        # --- registration, login, social sign-in ------------------------------------------------

        @rule(name=st.sampled_from(ACTORS), which=st.integers(0, 1), via=st.sampled_from(["page", "api"]))
        def register(self, name, which, via) -> None:
            actor = self.actors[name]
            address = actor.addresses[which]
            if self.account_at(address):
                return
            password = actor.new_password()
            if via == "page":
                sent = self.page_post(actor.browser, f"/{SLUG}/register", f"/{SLUG}/register", email=address,
                                      password=password)  # fmt: skip
                assert sent.status_code == 303, sent.get_data(as_text=True)[:300]
            else:
                sent = server.post("/v1/readers", json={"email": address, "password": password})
                assert sent.status_code == 202, sent.get_data(as_text=True)
            self.follow(actor.browser, self.mail_link(address, "/activate/"))
            self.new_account(actor, address, password, {"password"})

        @rule(name=st.sampled_from(ACTORS), which=st.integers(0, 1), via=st.sampled_from(["page", "api", "amp"]),
              rid=st.integers(0, 1))  # fmt: skip
        def login(self, name, which, via, rid) -> None:
            actor = self.actors[name]
            acc = self.account_at(actor.addresses[which])
            if acc is None or acc.password is None:
                return
            if via == "api":
                answer = server.post("/v1/sessions", json={"email": acc.email, "password": acc.password})
                assert answer.status_code == 200, answer.get_data(as_text=True)
                actor.tokens = [*actor.tokens[-1:], answer.get_json()["reader_token"]]  # the last two
                return
            query = f"?rid={actor.rids[rid]}&return={ORIGIN}/amp-login-done" if via == "amp" else ""
            answer = self.page_post(actor.browser, f"/{SLUG}/login{query}", f"/{SLUG}/login", email=acc.email,
                                    password=acc.password)  # fmt: skip
            assert answer.status_code in (200, 303), answer.get_data(as_text=True)[:300]
            if via == "amp":  # AMP's own login flow: the owner links their AMP reader id
                self.unlink_amp(actor.rids[rid])
                acc.amp.add(actor.rids[rid])

        @rule(victim=st.sampled_from(HONEST), which=st.integers(0, 1), rid=st.integers(0, 1),
              via=st.sampled_from(["password", "facebook"]))  # fmt: skip
        def login_by_mallorys_link(self, victim, which, rid, via) -> None:
            """The victim signs in through a link Mallory made: `/{site}/login?rid=MALLORY&next=…`, or the
            same to `/{site}/login/facebook` (the victim's Facebook account gives their address)."""
            actor, mallorys = self.actors[victim], self.actors[ATTACKER].rids[rid]
            if via == "facebook":
                self.sign_in_with_facebook(actor, True, 0, {"rid": mallorys, "next": f"{ORIGIN}/artikel/1"})
                return
            acc = self.account_at(actor.addresses[which])
            if acc is None or acc.password is None:
                return
            query = f"?rid={mallorys}&next={ORIGIN}/artikel/1"
            answer = self.page_post(actor.browser, f"/{SLUG}/login{query}", f"/{SLUG}/login", email=acc.email,
                                    password=acc.password)  # fmt: skip
            assert answer.status_code == 303, answer.get_data(as_text=True)[:300]

        @rule(name=st.sampled_from(ACTORS), with_address=st.booleans(), typed=st.integers(0, 1))
        def facebook(self, name, with_address, typed) -> None:
            self.sign_in_with_facebook(self.actors[name], with_address, typed, {"next": f"{ORIGIN}/artikel/2"})

        @rule(victim=st.sampled_from(HONEST), which=st.integers(0, 1))
        def mallory_types_a_victims_address(self, victim, which) -> None:
            """Mallory signs in with her Facebook account that gives no address and types the victim's on the
            address page; the victim's mail scanner opens the mail; Mallory signs in with Facebook again."""
            mallory = self.actors[ATTACKER]
            back = {"next": f"{ORIGIN}/artikel/3"}
            self.sign_in_with_facebook(mallory, False, self.actors[victim].addresses[which], back)
            self.sign_in_with_facebook(mallory, False, mallory.addresses[0], back)

        def sign_in_with_facebook(self, actor: Actor, with_address: bool, typed: int | str, query: dict) -> None:
            """Through the stand-in's dialog; without an address, the address page, where the person types
            their own (`typed`: which) or Mallory a victim's (`typed`: the address), and the mailed link is
            followed by the person it reached."""
            name = actor.name
            subject = actor.fb_with if with_address else actor.fb_without
            standin.facebook_user = {"id": subject, "name": name, "email": actor.addresses[0] if with_address else None}
            start = actor.browser.get(f"/{SLUG}/login/facebook", query_string=query)
            assert start.status_code == 302, start.get_data(as_text=True)[:300]
            dialog = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
            back = actor.browser.get(path_of(dialog.headers["Location"]))
            assert back.status_code == 303, back.get_data(as_text=True)[:300]
            if not back.headers["Location"].endswith("/login/facebook/address"):
                if subject in self.identities:
                    expected = self.accounts[self.identities[subject]]
                elif with_address:  # a verified address from Facebook: linked to its account, or a new one
                    expected = self.account_at(actor.addresses[0])
                    if expected is None:
                        expected = self.new_account(actor, actor.addresses[0], None, set())
                    expected.methods.add("facebook")
                    self.identities[subject] = expected.reader_id
                else:
                    return  # an identity nobody linked signed in: invariant (b) says to whose account
                assert self.signed_in(actor) is expected, (name, subject)
                return
            assert subject not in self.identities, (name, subject)
            address = typed if isinstance(typed, str) else actor.addresses[typed]
            asked = self.page_post(actor.browser, path_of(back.headers["Location"]), path_of(back.headers["Location"]),
                                   email=address)  # fmt: skip
            assert asked.status_code == 200, asked.get_data(as_text=True)[:300]
            if self.owner[address] != name:
                self.scan()  # the mail went to someone else's inbox
                return
            acc = self.account_at(address)
            self.follow(actor.browser, self.mail_link(address, "/login/facebook/"))
            if acc is None:
                acc = self.new_account(actor, address, None, set())
            acc.methods.add("facebook")
            self.identities[subject] = acc.reader_id
            assert self.signed_in(actor) is acc

        # --- the account page and the API: password, address, deletion -------------------------

        @rule(name=st.sampled_from(ACTORS), via=st.sampled_from(["page", "api"]))
        def change_password(self, name, via) -> None:
            actor = self.actors[name]
            acc = self.signed_in(actor)
            if acc is None or acc.password is None:
                return
            new = actor.new_password()
            if via == "page":
                done = self.page_post(actor.browser, f"/{SLUG}/account", f"/{SLUG}/account/password",
                                      current_password=acc.password, password=new)  # fmt: skip
                assert done.status_code == 303, done.get_data(as_text=True)[:300]
            else:
                body = {"current_password": acc.password, "password": new}
                done = server.post("/v1/readers/me/password", json=body, headers={"X-Reader-Token": self.cookie(actor)})
                assert done.status_code == 200, done.get_data(as_text=True)
                actor.browser.set_cookie(f"meter_r_{SLUG}", done.get_json()["reader_token"])
            acc.password = new
            acc.amp.clear()  # a password change ends every session, AMP's too

        @rule(name=st.sampled_from(ACTORS))
        def change_address(self, name) -> None:
            actor = self.actors[name]
            acc = self.signed_in(actor)
            if acc is None or acc.password is None:
                return
            new = next(a for a in actor.addresses if a != acc.email)
            if self.account_at(new):
                return
            asked = self.page_post(actor.browser, f"/{SLUG}/account", f"/{SLUG}/account/email", email=new,
                                   password=acc.password)  # fmt: skip
            assert asked.status_code == 303, asked.get_data(as_text=True)[:300]
            self.follow(actor.browser, self.mail_link(new, "/account/email/"))
            acc.email = new

        @rule(name=st.sampled_from(ACTORS), via=st.sampled_from(["page", "api"]))
        def delete_account(self, name, via) -> None:
            actor = self.actors[name]
            acc = self.signed_in(actor)
            if acc is None:
                return
            if acc.password is None:  # confirmed by a mailed link
                asked = self.page_post(actor.browser, f"/{SLUG}/account", f"/{SLUG}/account/delete")
                assert asked.status_code == 303, asked.get_data(as_text=True)[:300]
                self.follow(actor.browser, self.mail_link(acc.email, "/account/delete/"))
            elif via == "page":
                done = self.page_post(actor.browser, f"/{SLUG}/account", f"/{SLUG}/account/delete",
                                      password=acc.password)  # fmt: skip
                assert done.status_code == 200, done.get_data(as_text=True)[:300]
            else:
                body = {"password": acc.password}
                done = server.delete("/v1/readers/me", json=body, headers={"X-Reader-Token": self.cookie(actor)})
                assert done.status_code == 204, done.get_data(as_text=True)
            self.deleted[acc.reader_id] = self.accounts.pop(acc.reader_id)
            self.identities = {s: r for s, r in self.identities.items() if r != acc.reader_id}

        # --- reading, subscriptions, gifts -------------------------------------------------------

        @rule(name=st.sampled_from(ACTORS), article=st.sampled_from(ARTICLES), who=st.sampled_from(["browser", "api"]))
        def read(self, name, article, who) -> None:
            actor = self.actors[name]
            token = self.cookie(actor) if who == "browser" or not actor.tokens else actor.tokens[-1]
            body = {"reader_token": token} if token else {"anonymous_id": f"anon-{actor.rids[0]}"}
            item = {"id": article, "class": "metered"}
            if article in SECTIONS:
                item["section"] = SECTIONS[article]
            self.access(article=item, **body)

        @rule(name=st.sampled_from(ACTORS))
        def subscribe(self, name) -> None:
            acc = self.signed_in(self.actors[name])
            if acc is None:
                return
            until = (datetime.now(UTC) + timedelta(days=365)).isoformat()
            assert server.put(f"/v1/readers/{acc.reader_id}/subscription", json={"until": until}).status_code == 200
            acc.subscriber = True

        @rule(name=st.sampled_from(ACTORS), article=st.sampled_from(ARTICLES))
        def give(self, name, article) -> None:
            actor = self.actors[name]
            acc = self.signed_in(actor)
            if acc is None:
                return
            item = {"id": article, "class": "metered", "url": f"{ORIGIN}/artikel/{article.rsplit(':', 1)[1]}"}
            made = server.post("/v1/gifts", json={"reader_token": self.cookie(actor), "article": item})
            per_period = self.policy["gifts"]["per_period"]
            new = article not in acc.gifts.values()
            if not acc.subscriber or per_period == 0 or (new and len(set(acc.gifts.values())) >= per_period):
                assert made.status_code == 403, made.get_data(as_text=True)
                return
            assert made.status_code in (200, 201), made.get_data(as_text=True)
            acc.gifts[made.get_json()["gift_token"]] = article

        @rule(data=st.data())
        def open_gift(self, data) -> None:
            gifts = sorted(
                (t, a) for acc in [*self.accounts.values(), *self.deleted.values()] for t, a in acc.gifts.items()
            )
            if gifts:
                token, article = data.draw(st.sampled_from(gifts))
                visitor = f"gift-visitor-{next(self.visitors):06d}"
                self.access(article={"id": article, "class": "metered"}, gift_token=token, anonymous_id=visitor)

        # --- policy ------------------------------------------------------------------------------

        @rule(key=st.sampled_from(sorted(CLI_KEYS)), data=st.data())
        def policy_from_the_command_line(self, key, data) -> None:
            self.set_policy(key, data.draw(CLI_KEYS[key]))

        def set_policy(self, key: str, value) -> None:
            result = runner.invoke(args=["sites", "policy", SLUG, "--set", f"{key}={value}"])
            assert result.exit_code == 0, result.output
            *groups, last = key.split(".")
            place = self.policy
            for group in groups:
                place = place.setdefault(group, {})
            place[last] = value
            if key.startswith("meters.") and len(groups) == 3:  # a new meter: its other keys at their defaults
                self.policy = normalise(self.policy)

        @rule(verified=st.none() | st.integers(0, 4))
        def policy_from_the_console(self, verified) -> None:
            """The console's form saved as shown, or with only the verified quota changed."""
            path = f"/console/{SLUG}/policy"
            fields = form_of(editor.get(path).get_data(as_text=True), path)
            if verified is not None:
                fields["quota_verified"] = str(verified)
            preview = editor.post(path, data={**fields, "preview": "1"})
            assert preview.status_code == 200, preview.get_data(as_text=True)[:300]
            saved = editor.post(path, data={**form_of(preview.get_data(as_text=True), path), "save": "1"})
            assert saved.status_code == 303, saved.get_data(as_text=True)[:300]
            if verified is not None:
                self.policy["quota"]["verified"] = verified

        # --- the database away for a moment --------------------------------------------------

        @rule(name=st.sampled_from(ACTORS), article=st.sampled_from(ARTICLES))
        def database_away(self, name, article) -> None:
            """Checks answered while the database is cut away (its reader's state warm in Redis), then the
            database back and the worker's pass: the ledger must hear of every unlock answered."""
            token = self.cookie(self.actors[name])
            if self.me(token) is None:
                return
            self.access(article={"id": ARTICLES[0], "class": "metered"}, reader_token=token, record=False)
            with app.app_context():
                cut.cut(db.engine)
            try:
                self.access(article={"id": article, "class": "metered"}, reader_token=token)
            finally:
                cut.restore()
            for _ in range(50):
                if server.client.get("/readyz").status_code == 200:
                    break
                time.sleep(0.05)
            clock.travel(timedelta(seconds=6))  # past the settling delay of unlocks in doubt
            with app.app_context():
                worker.run_once()

        # --- the invariants ----------------------------------------------------------------------

        @invariant()
        def rules_hold(self) -> None:
            """(a) to (e) of the module's docstring, after every step."""
            if not hasattr(self, "policy"):
                return  # before the first step
            self.a_no_deleted_readers_data()
            self.b_only_owners_signed_in()
            self.c_account_pages_list_every_way_in()
            self.d_ledger_holds_every_unlock()
            self.e_policy_keys_keep_their_values()

        def a_no_deleted_readers_data(self) -> None:
            if not self.deleted:
                return
            with app.app_context():
                count = buckets()
                for reader_id, acc in self.deleted.items():
                    subject = reader_subject(reader_id)
                    for table, where in [
                        (Reader, Reader.id == reader_id),
                        (ReaderSession, ReaderSession.reader_id == reader_id),
                        (Identity, Identity.reader_id == reader_id),
                        (Gift, Gift.reader_id == reader_id),
                        (Gift, Gift.token.in_(list(acc.gifts) or [""])),
                        (Unlock, Unlock.subject == subject),
                        (UnlockDoubt, UnlockDoubt.subject == subject),
                    ]:
                        rows = db.session.scalar(select(func.count()).select_from(table).where(where))
                        assert rows == 0, f"(a) {rows} row(s) of {table.__tablename__} name deleted reader {reader_id}"
                    bucket, field_ = place(subject, count)
                    keys = [redis_keys.state_bucket(site_id, bucket, count)]
                    keys += redis_client.keys(redis_keys.unlock_bucket(site_id, bucket, count, "*"))
                    keys += redis_client.keys(redis_keys.unlock_bucket(site_id, bucket, count, "*", "koran"))
                    held = [k for k in keys if redis_client.hget(k, field_.decode()) not in (None, NOBODY)]
                    held += [k for k in (redis_keys.amp_links_of(site_id, reader_id),
                                         redis_keys.rolling_unlocks(site_id, bucket, count, subject),
                                         redis_keys.rolling_unlocks(site_id, bucket, count, subject, "koran"))
                             if redis_client.exists(k)]  # fmt: skip
                    for token in acc.gifts:
                        nonce = gift_links.nonce_of(site_id, token)
                        held += [k for k in (redis_keys.gift_state(site_id, nonce),
                                             redis_keys.gift_devices(site_id, nonce)) if redis_client.exists(k)]  # fmt: skip
                    assert not held, f"(a) Redis still holds deleted reader {reader_id}: {held}"
                db.session.remove()
            for acc in self.deleted.values():
                for token, article in acc.gifts.items():
                    body = {"article": {"id": article, "class": "metered"}, "gift_token": token, "record": False,
                            "anonymous_id": f"probe-{next(self.visitors):06d}"}  # fmt: skip
                    answer = server.post("/v1/access", json=body).get_json()
                    assert answer["reason"] != "gift", f"(a) a gift link of deleted reader {acc.reader_id} still opens"

        def b_only_owners_signed_in(self) -> None:
            self.browsing = {}  # person → /v1/readers/me of their browser's login, for (c)
            for actor in self.actors.values():
                for n, token in enumerate([self.cookie(actor), *actor.tokens]):
                    found = self.me(token)
                    if n == 0:
                        self.browsing[actor.name] = found
                    if found is None:
                        continue
                    assert self.owner.get(found["email"]) == actor.name, (
                        f"(b) {actor.name} is signed in to the account of {found['email']} ({found['reader_id']})"
                    )
                    acc = self.accounts.get(found["reader_id"])
                    assert acc is not None, f"(b) {actor.name} is signed in to an account nobody made: {found}"
                    unknown = set(found["logins"]) - acc.methods
                    assert not unknown, f"(b) {found['email']} has ways in its owner never added: {unknown}"
            linked = {rid for acc in self.accounts.values() for rid in acc.amp}
            self.amp_now = {}  # AMP reader id → the reader it reads as, for (c)
            for actor in self.actors.values():
                for rid in actor.rids:
                    if actor.name != ATTACKER and rid not in linked:
                        continue  # (an honest person's own reader id only ever reaches their own accounts)
                    reader_id = self.amp_now[rid] = amp_reader_of(app, redis_client, site_id, rid)
                    if reader_id is not None:
                        email = sql(select(Reader.email).where(Reader.id == reader_id))
                        assert self.owner.get(email) == actor.name, (
                            f"(b) {actor.name}'s AMP reader id {rid} reads as {email} ({reader_id})"
                        )
            honest = [a for name in HONEST for a in self.actors[name].addresses]
            with app.app_context():
                held = db.session.execute(
                    select(Reader.id, Reader.email).where(Reader.site_id == site_id, Reader.email.in_(honest))
                ).all()
                db.session.remove()
            for reader_id, email in held:
                assert reader_id in self.accounts, f"(b) an account its owner never made holds {email} ({reader_id})"

        def c_account_pages_list_every_way_in(self) -> None:
            for name, found in self.browsing.items():
                acc = self.accounts.get(found["reader_id"]) if found else None
                if acc is None:
                    continue
                # The page is a function of these: shown again only when one of them changed.
                seen = (acc.reader_id, acc.email, frozenset(acc.methods), frozenset(acc.amp), tuple(found["logins"]))
                if seen in self.pages_seen:
                    continue
                self.pages_seen.add(seen)
                actor = self.actors[name]
                page = actor.browser.get(f"/{SLUG}/account?lang=en")  # a mailed link may have switched it
                assert page.status_code == 200, page.status_code
                html = page.get_data(as_text=True)
                missing = {LABELS[m] for m in acc.methods} - ways_listed(html)
                assert not missing, f"(c) the account page of {acc.email} does not list {missing}"
                listed = amp_entries_listed(html)
                assert listed == len(acc.amp), (
                    f"(c) the account page of {acc.email} lists {listed} AMP reader id(s), linked: {sorted(acc.amp)}"
                )
            for acc in self.accounts.values():
                for rid in acc.amp:
                    assert self.amp_now[rid] == acc.reader_id, f"(c) AMP reader id {rid} lost its link"

        def d_ledger_holds_every_unlock(self) -> None:
            rows = sql(select(func.count()).select_from(Unlock)) - self.ledger_base
            assert rows == self.unlocked, f"(d) {self.unlocked} unlocks answered, {rows} in the ledger"

        def e_policy_keys_keep_their_values(self) -> None:
            stored = normalise(sql(select(Site.policy).where(Site.id == site_id)))
            assert stored == self.policy, f"(e) policy {stored}, expected {self.policy}"

        def teardown(self) -> None:
            clock.reset()

    # Bounded: 20 sequences of up to 15 steps after the start (about 5 s of CPU). Deterministic
    # (derandomize, no example database), as CI needs. Shrinking against live servers takes minutes, so it
    # is off unless METER_HYPOTHESIS_SHRINK=1; a failure prints its steps anyway.
    phases = [Phase.explicit, Phase.generate]
    if os.environ.get("METER_HYPOTHESIS_SHRINK") == "1":
        phases.append(Phase.shrink)
    try:
        run_state_machine_as_test(
            Integrity,
            settings=settings(
                max_examples=int(os.environ.get("METER_HYPOTHESIS_EXAMPLES", "20")),
                stateful_step_count=15,
                deadline=None,
                database=None,
                derandomize=True,
                phases=phases,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        cut.close()
        with app.app_context():
            db.engine.dispose()
