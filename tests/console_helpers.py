"""Helpers of the console tests: a staff member made on the command line, set up from the printed link
(the code computed from the secret on the set-up page, as an authenticator app would) and signed in."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pyotp

from meter.platform import clock

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET_RE = re.compile(r'data-secret="([A-Z2-7]+)"')
PASSWORD = "a long staff password"


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def code(secret: str, steps_ahead: int = 0) -> str:
    """The authenticator's code now, or of a later 30-second step (one step ahead is accepted, as for a
    phone whose clock runs fast: a test signs in right after set-up without waiting for a fresh code)."""
    return pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30 * steps_ahead))  # meter's clock, as the server


def at_the_start_of_a_code_step() -> None:
    """Move meter's clock to just after a 30-second step begins: a test that uses "this step's code"
    twice then stays within one step (it crossed a step's end now and then on a busy machine)."""
    into = clock.now().timestamp() % 30
    clock.travel(timedelta(seconds=30 - into + 0.5))


def create_staff(runner, email: str, slug: str, role: str) -> str:
    result = runner.invoke(args=["staff", "create", email, "--site", slug, "--role", role])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def set_up(client, link: str, password: str = PASSWORD) -> str:
    """Complete the set-up page of `link`; returns the authenticator secret."""
    path = link.split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path)
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    secret = SECRET_RE.search(html).group(1)
    answer = client.post(
        "/" + path,
        data={"csrf_token": csrf_of(html), "password": password, "confirm": password, "code": code(secret)},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return secret


def sign_in(client, email: str, secret: str, password: str = PASSWORD, steps_ahead: int = 1):
    page = client.get("/console/signin")
    data = {"csrf_token": csrf_of(page.get_data(as_text=True)), "email": email, "password": password}
    return client.post("/console/signin", data={**data, "code": code(secret, steps_ahead)})


def english(client):
    """The console in English from now on for this client (`?lang=en` sticks in a cookie); Indonesian is the default."""
    client.get("/console/signin?lang=en")
    return client


def staff_client(app, runner, email: str, slug: str, role: str):
    """A fresh test client signed in as a new member with `role` on `slug`, reading the console in English."""
    client = english(app.test_client())
    secret = set_up(client, create_staff(runner, email, slug, role))
    answer = sign_in(client, email, secret)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return client


class _Text(HTMLParser):
    """The text a person sees on a page: no markup, no attribute, nothing of <style> or <script>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in ("style", "script"):
            self.hidden += 1

    def handle_endtag(self, tag) -> None:
        if tag in ("style", "script"):
            self.hidden -= 1

    def handle_data(self, data) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


# The Indonesian console's checks: no word of this list, no code (lower-case words joined by dots:
# `staff.create`, `quota.verified`, `cli.sites.policy`) once addresses and URLs, which have dots of
# their own, are taken out of the text.
ENGLISH = ("command line", "subscriber", "password", "activation", "verified", "anonymous", "registered",
           "who", "when", "detail", "details", "owner", "support", "queued", "retrying", "revoked", "live",
           "pending", "disabled", "command")  # fmt: skip
_WORDS = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in ENGLISH) + r")(?!\w)", re.IGNORECASE)
_ADDRESSES = re.compile(r"\S+@\S+|https?://\S+")
_CODE = re.compile(r"(?<![\w.])[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+(?![\w.])")


def english_or_codes(text: str) -> list[str]:
    plain = _ADDRESSES.sub(" ", text)
    return sorted({m.group(0) for m in _WORDS.finditer(plain)} | {m.group(0) for m in _CODE.finditer(plain)})


class _FormFields(HTMLParser):
    """The values the policy page's form would send as the browser shows it (inputs, selected options)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._first: str | None = None
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and "policy" in (a.get("class") or ""):
            self._in_form = True
        if not self._in_form:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            self.fields[a["name"]] = a.get("value") or ""
        elif tag == "select":
            self._select, self._first = a["name"], None
        elif tag == "option" and self._select:
            if self._first is None:
                self._first = a.get("value")
                self.fields.setdefault(self._select, a.get("value"))
            if "selected" in a:
                self.fields[self._select] = a.get("value")

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "form":
            self._in_form = False


def policy_form_of(html: str) -> dict[str, str]:
    """What the policy page's form (or a meter's page's) would send as the browser shows it."""
    parser = _FormFields()
    parser.feed(html)
    return parser.fields
