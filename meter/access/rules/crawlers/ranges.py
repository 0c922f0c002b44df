"""The search engines' published crawler address ranges: the shipped list, its refresh, and a fast lookup.

Why a file and not a table: the lists are public facts that change a few times a year, every process
needs all of them in memory, and a crawler check must not cost SQL. The package ships a copy
(`crawler_ranges.json`, each list with where and when it was taken); `flask crawlers update` writes
a fresher one to CRAWLER_RANGES_FILE (crawler_ranges.json in STATE_DIR, or instance/, by default), which wins over the
shipped copy once it exists. A process loads the file once and looks at its modification time again
at most every RECHECK seconds, and only when a user agent claims to be a crawler: an ordinary
reader's check never touches it.

The lookup is per operator (an address in Bing's ranges verifies a Bingbot, never a Googlebot): the
operator's networks, merged into sorted, disjoint integer intervals, searched with bisect.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from flask import current_app

SHIPPED = resources.files(__package__).joinpath("crawler_ranges.json")
RECHECK = 60.0  # seconds between two looks at the file's modification time
MIN_PREFIX = {4: 8, 6: 19}  # broader networks than these are refused: no crawler needs a /7


class RangesError(ValueError):
    """A list that cannot be trusted: not the published shape, an unparseable or too broad network, a
    private address, or no network at all (a failed download must never empty a list)."""


@dataclass(frozen=True)
class OperatorRanges:
    starts: tuple[int, ...]  # sorted interval starts (IPv4 and IPv6 apart: see `Ranges`)
    ends: tuple[int, ...]

    def __contains__(self, value: int) -> bool:
        i = bisect_right(self.starts, value) - 1
        return i >= 0 and value <= self.ends[i]


@dataclass(frozen=True)
class Ranges:
    v4: dict[str, OperatorRanges]
    v6: dict[str, OperatorRanges]
    document: dict[str, Any]

    def operator_has(self, operator: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        table = self.v4 if address.version == 4 else self.v6
        found = table.get(operator)
        return found is not None and int(address) in found


def networks(feed: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of one operator's list in the published shape `{"prefixes": [{"ipv4Prefix": …}, …]}`."""
    if not isinstance(feed, dict) or not isinstance(feed.get("prefixes"), list):
        raise RangesError('expected {"prefixes": [{"ipv4Prefix" | "ipv6Prefix": "…"}, …]}')
    found = []
    for entry in feed["prefixes"]:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise RangesError(f"not a prefix entry: {entry!r}"[:200])
        ((kind, text),) = entry.items()
        if kind not in ("ipv4Prefix", "ipv6Prefix") or not isinstance(text, str):
            raise RangesError(f"not a prefix entry: {entry!r}"[:200])
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise RangesError(f"not a network: {text!r}"[:200]) from None
        if (network.version == 4) != (kind == "ipv4Prefix"):
            raise RangesError(f"{text} is not an {kind}")
        if network.prefixlen < MIN_PREFIX[network.version]:
            raise RangesError(f"{text} is far too broad for a crawler")
        if not network.is_global:
            raise RangesError(f"{text} is not a public network")
        found.append(network)
    if not found:
        raise RangesError("no networks: refusing to empty the list")
    return found


def _intervals(nets: list) -> OperatorRanges:
    spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in nets)
    starts: list[int] = []
    ends: list[int] = []
    for start, end in spans:
        if ends and start <= ends[-1] + 1:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return OperatorRanges(tuple(starts), tuple(ends))


def build(document: dict[str, Any]) -> Ranges:
    operators = document.get("operators") if isinstance(document, dict) else None
    if not isinstance(operators, dict) or not operators:
        raise RangesError('expected {"operators": {NAME: {"prefixes": […]}, …}}')
    v4: dict[str, OperatorRanges] = {}
    v6: dict[str, OperatorRanges] = {}
    for name, feed in operators.items():
        nets = networks(feed)
        v4[name] = _intervals([n for n in nets if n.version == 4])
        v6[name] = _intervals([n for n in nets if n.version == 6])
    return Ranges(v4, v6, document)


def path() -> str:
    """CRAWLER_RANGES_FILE, else crawler_ranges.json in the state folder (STATE_DIR: /var/lib/meter as
    deployed, the one place the service may write), else in instance/ (development)."""
    configured = current_app.config.get("CRAWLER_RANGES_FILE")
    folder = current_app.config.get("STATE_DIR") or current_app.instance_path
    return configured or os.path.join(folder, "crawler_ranges.json")


_lock = threading.Lock()
_loaded: dict[str, tuple[float, float, Ranges]] = {}  # path → (mtime, checked at, ranges)


def current() -> Ranges:
    """The ranges in force: the updated file when there is one, else the shipped copy (loaded once)."""
    where = path()
    now = time.monotonic()
    hit = _loaded.get(where)
    if hit is not None and now - hit[1] < RECHECK:
        return hit[2]
    with _lock:
        try:
            mtime = os.stat(where).st_mtime
        except OSError:
            mtime = -1.0  # none written yet: the shipped copy
        hit = _loaded.get(where)
        if hit is not None and hit[0] == mtime:
            _loaded[where] = (mtime, now, hit[2])
            return hit[2]
        ranges = _read(where if mtime >= 0 else None)
        _loaded[where] = (mtime, now, ranges)
        return ranges


def _read(where: str | None) -> Ranges:
    if where is None:
        return build(json.loads(SHIPPED.read_text("utf-8")))
    with open(where, encoding="utf-8") as f:
        return build(json.load(f))


def forget() -> None:
    """Read the file again on the next lookup (after an update in this process)."""
    with _lock:
        _loaded.clear()


def dump(document: dict[str, Any]) -> str:
    """The document as JSON with one prefix a line: readable in a diff, half the size of indent=1."""
    out = ["{", f' "about": {json.dumps(document.get("about", ""))},', ' "operators": {']
    names = list(document["operators"])
    for i, name in enumerate(names):
        entry = document["operators"][name]
        out.append(f"  {json.dumps(name)}: {{")
        for key, value in entry.items():
            if key != "prefixes":
                out.append(f"   {json.dumps(key)}: {json.dumps(value)},")
        prefixes = ",\n".join(f"    {json.dumps(p)}" for p in entry["prefixes"])
        out.append(f'   "prefixes": [\n{prefixes}\n   ]')
        out.append("  }" + ("," if i < len(names) - 1 else ""))
    out += [" }", "}", ""]
    return "\n".join(out)


def update(feeds: dict[str, dict[str, Any]], copied_from: str) -> dict[str, int]:
    """Replace the lists of the operators in `feeds` ({name: published feed}) and write the file
    atomically; the other operators keep theirs. Every list is checked before anything is written.
    Returns how many networks each updated operator now has."""
    base = current().document
    document = json.loads(json.dumps(base))  # a copy
    today = datetime.now(UTC).date().isoformat()
    counts = {}
    for name, feed in feeds.items():
        nets = networks(feed)
        entry = document["operators"].setdefault(name, {"feed": None})
        entry.update(
            copied_from=copied_from,
            taken=today,
            creationTime=str(feed.get("creationTime") or ""),
            prefixes=[{"ipv6Prefix" if n.version == 6 else "ipv4Prefix": str(n)} for n in nets],
        )
        counts[name] = len(nets)
    build(document)  # the whole document must load
    where = path()
    os.makedirs(os.path.dirname(where) or ".", exist_ok=True)
    tmp = f"{where}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(dump(document))
    os.replace(tmp, where)
    forget()
    return counts
