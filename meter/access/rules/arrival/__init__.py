"""Where a reader came from: search, social, another page or nowhere (direct), and the campaign.

A site's policy may give readers who arrive from search or social, or by a named campaign, extra reads
(`meter.sites.rules.arrival_rules`). The arrival is told by the page that sent the reader: the embed's
`document.referrer`, the API's `client.referrer` (the publisher's server saw the Referer header), AMP's
`DOCUMENT_REFERRER`. Its host is looked up in a shipped list (`hosts.json`: search engines and social
networks, with their Android apps). The campaign is the `utm_campaign` of the page's URL, or the one
the publisher signed with the article (`meter.access.rules.article_signing`).

All of it comes from the client, which may send what it likes: a forged referrer earns at most the
rule's extra reads, as clearing one's cookies earns a fresh anonymous quota. So nothing here refuses:
what cannot be read (too long, not a URL, an unknown scheme, a host in any script) is `other`, and a
campaign that no policy could name is none. Cost for a check: the referrer's host is split once and
its answer kept (a bounded dict), with no DNS and no file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

_HOSTS = json.loads(resources.files(__package__).joinpath("hosts.json").read_text("utf-8"))
SOURCES = ("direct", "search", "social", "other")
MAX_REFERRER = 2048  # what the schemas accept; a longer one (from a caller that skips them) is `other`
MAX_CAMPAIGN = 64  # a policy's campaign names are at most this long: a longer utm_campaign matches none


def _entries(kind: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    hosts = _HOSTS[kind]["hosts"]
    exact = frozenset(h for h in hosts if not h.endswith(".*"))
    any_tld = frozenset(h[:-2] for h in hosts if h.endswith(".*"))
    return exact, any_tld, frozenset(_HOSTS[kind]["apps"])


_KINDS = {kind: _entries(kind) for kind in ("search", "social")}


@dataclass(frozen=True)
class Arrival:
    source: str  # direct | search | social | other
    campaign: str | None = None  # lower case; None when the page named none


DIRECT = Arrival("direct")


def _tails(labels: list[str]) -> list[int]:
    """How many of the last labels can be a top-level domain: 1 (com, id), or 2 for a country's
    second level (co.id, com.au, co.uk)."""
    tails = [1]
    if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        tails.append(2)
    return tails


def host_source(host: str) -> str:
    """`search`, `social` or `other` for a lower-case host name (a subdomain counts as its domain)."""
    labels = host.split(".")
    for kind, (exact, any_tld, _apps) in _KINDS.items():
        for i in range(len(labels)):
            if ".".join(labels[i:]) in exact:
                return kind
            if any_tld:
                for tail in _tails(labels):
                    if len(labels) - tail > i and ".".join(labels[i : len(labels) - tail]) in any_tld:
                        return kind
    return "other"


def _app_source(package: str) -> str:
    for kind, (_exact, _any_tld, apps) in _KINDS.items():
        if package in apps:
            return kind
    return "other"


_seen: dict[str, str] = {}


def source_of(referrer: object) -> str:
    """Where a reader who came from this referrer came from: `direct` for none, else search, social
    or other. Never raises, whatever it is given."""
    if not isinstance(referrer, str) or not referrer.strip():
        return "direct"
    if len(referrer) > MAX_REFERRER:
        return "other"
    try:
        parts = urlsplit(referrer.strip())
        scheme = parts.scheme.lower()
        if scheme == "android-app":
            return _app_source(parts.netloc.lower())
        host = parts.hostname if scheme in ("http", "https") else None
    except ValueError:  # a broken IPv6 literal, a bad port: nothing to classify
        return "other"
    if not host or not host.isascii():
        return "other"
    host = host.rstrip(".")
    try:
        return _seen[host]
    except KeyError:
        pass
    source = host_source(host)
    if len(_seen) > 10_000:
        _seen.clear()
    _seen[host] = source
    return source


def normal_campaign(value: object) -> str | None:
    """A campaign as the policy compares it (stripped, lower case); None when none could match."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return value if 0 < len(value) <= MAX_CAMPAIGN else None


def campaign_in(url: object) -> str | None:
    """The `utm_campaign` of a page's URL (the first one), as `normal_campaign` gives it."""
    if not isinstance(url, str) or "utm_campaign" not in url or len(url) > MAX_REFERRER:
        return None
    try:
        query = urlsplit(url).query
    except ValueError:
        return None
    for name, value in parse_qsl(query, max_num_fields=100):
        if name == "utm_campaign":
            return normal_campaign(value)
    return None


def arrival(referrer: object = None, campaign: object = None) -> Arrival:
    """The arrival of a reader sent by `referrer`, with `campaign` (already trusted by the caller)."""
    source = source_of(referrer)
    named = normal_campaign(campaign)
    if source == "direct" and named is None:
        return DIRECT
    return Arrival(source, named)
