"""Who is fetching: a search engine's crawler, a link-preview fetcher, or (almost always) a reader.

The user agent says what a client claims to be (`agents.json`: the tokens, with where each comes
from). A link preview is believed at its word: claiming to be WhatsApp only ever earns a refusal.
A crawler is believed only when verified (policy `crawlers: verified`): its address is in its
operator's published ranges (`ranges`), or its reverse DNS name is the operator's and resolves back
to it (`dns_check`). Everything else is judged as an ordinary visitor, impostors included.

Cost for an ordinary reader: one dictionary lookup of the user agent (the answer for each user agent
string is kept); no address parsing, no file, no DNS.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from importlib import resources

from meter.access.rules.crawlers import dns_check, ranges

_AGENTS = json.loads(resources.files(__package__).joinpath("agents.json").read_text("utf-8"))
CRAWLERS: dict[str, dict] = _AGENTS["crawlers"]
PREVIEW_TOKENS: tuple[str, ...] = tuple(entry["token"] for entry in _AGENTS["previews"])
DNS_SUFFIXES = {name: tuple(entry["dns_suffixes"]) for name, entry in CRAWLERS.items()}


@dataclass(frozen=True)
class Claim:
    kind: str  # "crawler" | "preview"
    name: str  # the crawler's operator (google, bing, …) or the preview's token


_owner: dict[str, Claim] = {}
for _name, _entry in CRAWLERS.items():
    for _token in _entry["tokens"]:
        _owner[_token.lower()] = Claim("crawler", _name)
for _token in PREVIEW_TOKENS:
    _owner[_token.lower()] = Claim("preview", _token)
# Previews first: a user agent naming both is refused rather than let in.
_PATTERN = re.compile(
    "|".join(re.escape(t) for t in sorted(_owner, key=lambda t: (_owner[t].kind != "preview", -len(t)))), re.IGNORECASE
)

_seen: dict[str, Claim | None] = {}


def claim_of(user_agent: str | None) -> Claim | None:
    """What the user agent claims to be; None for a browser (the answer is kept per user agent)."""
    if not user_agent:
        return None
    try:
        return _seen[user_agent]
    except KeyError:
        pass
    previews = [m for m in _PATTERN.finditer(user_agent) if _owner[m.group(0).lower()].kind == "preview"]
    match = previews[0] if previews else _PATTERN.search(user_agent)
    claim = _owner[match.group(0).lower()] if match else None
    if len(_seen) > 20_000:
        _seen.clear()
    _seen[user_agent] = claim
    return claim


def verified_crawler(claim: Claim, ip: str | None) -> bool:
    """Whether the client at `ip` is the crawler it claims to be: in its operator's published ranges, or
    by reverse DNS confirmed forward. No address, or not an address: no."""
    if claim.kind != "crawler" or not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if ranges.current().operator_has(claim.name, address):
        return True
    if not address.is_global:
        return False  # a private or loopback address has no public DNS name to trust
    return dns_check.verified(claim.name, str(address), DNS_SUFFIXES.get(claim.name, ()))
