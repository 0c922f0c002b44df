"""The demo publisher site: its own language (`?lang=en`, kept in its own cookie) told to meter.js by
`<html lang>`, links to meter's pages that return to the article in that language, and `/` as its home."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.config(DEMO_SITE=True)


@pytest.fixture
def demo(app):
    return app.test_client()


def test_indonesian_by_default_english_with_lang_and_it_sticks(demo):
    page = demo.get("/demo-site/koran-harga-beras").get_data(as_text=True)
    assert '<html lang="id">' in page and "Harga Beras Naik" in page and ">Masuk<" in page
    english = demo.get("/demo-site/koran-harga-beras?lang=en")
    html = english.get_data(as_text=True)
    assert '<html lang="en">' in html and "Rice Prices Rise" in html and ">Log in<" in html
    assert "lang=en" in html.split('id="login"', 1)[1].split(">", 1)[0]  # meter's login page, in English too
    assert "demo_lang=en" in english.headers["Set-Cookie"]
    assert '<html lang="en">' in demo.get("/demo-site/").get_data(as_text=True)


def test_the_servers_home_is_the_demo_site(demo):
    response = demo.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/demo-site/")


def test_the_home_page_lists_each_story_once(demo):
    page = demo.get("/demo-site/").get_data(as_text=True)
    assert page.count('href="/demo-site/nato-siagakan-pasukan"') == 1
    assert page.count('href="/demo-site/koran-harga-beras"') == 1
