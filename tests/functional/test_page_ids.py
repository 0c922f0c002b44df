"""Every element id of a reader or console page is unique, and every label points at a field of the page.

Why: the account page had three `<input id="password">` (change password, change address, delete), so
tapping "Kata sandi" under "Hapus akun saya" focused the first field, and two of the three had no label
of their own. The pages are reached as a reader and a staff member reach them: from a few entry points,
following every link of the site's pages (GET), and in their error states (forms posted wrong).
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

from tests.console_helpers import staff_client
from tests.functional.test_account_pages import csrf, log_in

PASSWORD = "rahasia-sekali"


class Ids(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.fors: list[str] = []
        self.links: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.append(attrs["id"])
        if tag == "label" and attrs.get("for"):
            self.fors.append(attrs["for"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def problems(path: str, html: str) -> list[str]:
    page = Ids(html)
    found = [f"{path}: id {name!r} {count} times" for name, count in Counter(page.ids).items() if count > 1]
    found += [f"{path}: label for {name!r}, no such id" for name in page.fors if name not in page.ids]
    return found


def crawl(client, starts: list[str], prefixes: tuple[str, ...], limit: int = 120) -> tuple[list[str], list[str]]:
    """GET every page reachable from `starts` under `prefixes` (no logout, no downloads); (visited, problems)."""
    seen, queue, found = set(), list(starts), []
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        answer = client.get(path)
        if "text/html" not in answer.content_type:
            continue
        html = answer.get_data(as_text=True)
        page = Ids(html)
        found += problems(path, html)
        for href in page.links:
            href = urldefrag(href)[0]
            parts = urlsplit(href)
            if parts.netloc and parts.netloc != "localhost":
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if target.startswith(prefixes) and not re.search(r"logout|signout|\.csv|\.json|/export", target):
                queue.append(target)
    return sorted(seen), found


def test_every_reader_page_has_unique_ids_and_labels_that_point_at_their_fields(app, verified_reader):
    verified_reader("pembaca@example.com", PASSWORD)
    found = []
    anonymous = app.test_client()
    for lang in ("id", "en"):
        visited, more = crawl(
            anonymous,
            [f"/tempo/register?lang={lang}", "/tempo/login", "/tempo/forgot-password", "/tempo/reset-password/x"],
            ("/tempo/",),
        )
        found += more
        page = anonymous.get("/tempo/register")
        wrong = {"csrf_token": csrf(page.get_data(as_text=True)), "email": "bukan-email", "password": "pendek"}
        found += problems("POST /tempo/register", anonymous.post("/tempo/register", data=wrong).get_data(as_text=True))
    reader = app.test_client()
    assert log_in(reader, "pembaca@example.com", PASSWORD, "/tempo/account").status_code == 303
    visited, more = crawl(reader, ["/tempo/account"], ("/tempo/",))
    found += more
    assert "/tempo/account" in visited
    token = csrf(reader.get("/tempo/account").get_data(as_text=True))
    for path, data in (
        ("/tempo/account/password", {"current_password": "salah", "password": "x"}),
        ("/tempo/account/email", {"email": "bukan-email", "password": "salah"}),
        ("/tempo/account/delete", {"password": "salah"}),
    ):
        answer = reader.post(path, data={"csrf_token": token, **data})
        found += problems(f"POST {path}", answer.get_data(as_text=True))
    assert found == []


def test_the_account_pages_password_fields_each_have_their_own_label(app, verified_reader):
    verified_reader("pembaca@example.com", PASSWORD)
    reader = app.test_client()
    assert log_in(reader, "pembaca@example.com", PASSWORD, "/tempo/account").status_code == 303
    html = reader.get("/tempo/account").get_data(as_text=True)
    fields = re.findall(r'<input[^>]*type="password"[^>]*>', html)
    ids = [re.search(r'id="([^"]+)"', field).group(1) for field in fields]
    assert len(ids) == 4 and len(set(ids)) == 4, ids  # current and new; the address change's; the deletion's
    for name in ids:
        assert f'<label for="{name}">' in html, name


def test_every_console_page_has_unique_ids_and_labels_that_point_at_their_fields(app, runner, api):
    client = staff_client(app, runner, "owner@tempo.co", "tempo", "owner")
    visited, found = crawl(client, ["/console/tempo/"], ("/console/",))
    assert len(visited) > 5, visited
    assert found == []


def test_the_register_form_shows_every_fields_error_at_once(app, api, client):
    page = client.get("/tempo/register?lang=id")
    wrong = {"csrf_token": csrf(page.get_data(as_text=True)), "email": "bukan-email", "password": "pendek"}
    answer = client.post("/tempo/register", data=wrong)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="email-error"' in html and 'id="password-error"' in html, html
    for name in ("email", "password"):
        [field] = re.findall(rf'<input[^>]*\bid="{name}"[^>]*>', html)
        assert 'aria-invalid="true"' in field and f'aria-describedby="{name}-error"' in field, field
    assert "Masukkan alamat email yang valid." in html, html
