"""Where a reader came from, by the referrer's host (meter.access.rules.arrival, hosts.json): the search
engines and social networks publishers see most, their country domains and subdomains and apps; look-alikes
and anything that is not a URL are another site, never an error."""

from __future__ import annotations

import pytest

from meter.access.rules.arrival import DIRECT, Arrival, arrival, campaign_in, source_of


@pytest.mark.parametrize(
    "referrer",
    [
        "https://www.google.com/",
        "https://www.google.co.id/",
        "https://news.google.com.au/x",
        "https://www.bing.com/search?q=tempo",
        "https://duckduckgo.com/",
        "https://search.yahoo.co.jp/",
        "https://yandex.ru/search/",
        "https://www.baidu.com/s?wd=x",
        "https://www.ecosia.org/",
        "https://search.brave.com/",
        "HTTPS://WWW.GOOGLE.COM.",
        "android-app://com.google.android.googlequicksearchbox/",
    ],
)
def test_search_engines(referrer):
    assert source_of(referrer) == "search"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://l.facebook.com/l.php?u=x",
        "https://m.facebook.com/",
        "https://t.co/AbC",
        "https://twitter.com/tempo",
        "https://x.com/tempo",
        "https://www.instagram.com/",
        "https://www.linkedin.com/feed/",
        "https://lnkd.in/x",
        "https://old.reddit.com/r/indonesia",
        "https://web.whatsapp.com/",
        "https://line.me/R/",
        "https://t.me/tempo",
        "https://www.tiktok.com/@tempo",
        "https://id.pinterest.com/",
        "android-app://com.facebook.katana/",
        "android-app://org.telegram.messenger/",
    ],
)
def test_social_networks(referrer):
    assert source_of(referrer) == "social"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://www.tempo.co/",
        "https://notgoogle.com/",
        "https://google.evil.co/",  # google.* takes a top-level domain, not any domain
        "https://mail.yahoo.com/",  # Yahoo's mail is no search
        "https://google/",
        "https://g\u043e\u043egle.com/",  # Cyrillic o's
        "https://b\u00fccher.de/",
        "http://[::1",
        "javascript:alert(1)",
        "not a url",
        "x" * 5000,
        "android-app://com.example.reader/",
        "ftp://google.com/",
    ],
)
def test_anything_else_is_another_site(referrer):
    assert source_of(referrer) == "other"


@pytest.mark.parametrize("referrer", [None, "", "   ", 7, b"https://google.com/"])
def test_no_referrer_is_direct(referrer):
    assert source_of(referrer) == "direct"


def test_the_campaign_of_a_pages_url():
    assert campaign_in("https://tempo.co/a?utm_source=wa&utm_campaign=Ramadan%202026") == "ramadan 2026"
    assert campaign_in("https://tempo.co/a?utm_campaign=a&utm_campaign=b") == "a"
    for url in (
        "https://tempo.co/a",
        "https://tempo.co/a?utm_campaign=",
        f"https://t.co/?utm_campaign={'r' * 65}",
        None,
    ):
        assert campaign_in(url) is None
    assert arrival() is DIRECT
    assert arrival("https://t.co/", " Lebaran ") == Arrival("social", "lebaran")
