"""The demo site's articles carry the schema.org structured data of docs/api.md, read back with extruct
(as a search engine's parser reads it): metered and premium say their body is not free, and which part."""

from __future__ import annotations

import extruct
import pytest
from lxml import html as lxml_html

from meter.dev.demo import STORIES


@pytest.fixture
def demo(app):
    app.config["DEMO_SITE"] = True
    from meter.dev import demo as demo_site

    if "demo" not in app.blueprints:
        demo_site.init_app(app)
    return app.test_client()


@pytest.mark.parametrize("story", STORIES, ids=lambda s: f"{s.cls}:{s.slug}")
def test_each_article_says_what_is_free(demo, story):
    page = demo.get(f"/demo-site/{story.slug}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    found = extruct.extract(text, base_url=f"http://meter.test/demo-site/{story.slug}", syntaxes=["json-ld"])["json-ld"]
    (article,) = [item for item in found if item.get("@type") == "NewsArticle"]
    assert article["@context"] == "https://schema.org"
    assert article["headline"] == story.title["id"]
    assert article["url"].endswith(f"/demo-site/{story.slug}")
    if story.cls == "free":
        assert article["isAccessibleForFree"] is True
        assert "hasPart" not in article
        return
    assert article["isAccessibleForFree"] is False
    part = article["hasPart"]
    assert part == {"@type": "WebPageElement", "isAccessibleForFree": False, "cssSelector": ".meter-body"}
    name = part["cssSelector"].removeprefix(".")  # a class selector, as Google's documentation asks
    (body,) = lxml_html.fromstring(text).xpath(f'//*[contains(concat(" ", normalize-space(@class), " "), " {name} ")]')
    assert body.get("data-meter-body") is not None  # the very element meter.js hides behind the wall
    assert story.paragraphs["id"][0] in body.text_content()
