"""A session's device, as the account page shows it: "Chrome · Android", from the User-Agent at login,
and the network it logged in from ("203.0.113.0/24"), from the client address.

Why a label and not the User-Agent: the reader needs to tell "my phone" from "the office computer"
when ending sessions, and nothing more. A full User-Agent (versions, build numbers, device models)
helps fingerprint a person; the browser family and the system do not, so only those are kept.
"""

from __future__ import annotations

import ipaddress
import re

MAX_LENGTH = 80
_MAX_INPUT = 512  # a longer header is someone else's problem: look at its start only

# First match wins: browsers that carry "Chrome/" or "Safari/" in their own strings come before those.
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("Edge", r"\bEdg(?:e|A|iOS)?/"),
        ("Opera", r"\bOPR/|\bOpera\b"),
        ("Samsung Internet", r"\bSamsungBrowser/"),
        ("Firefox", r"\bFirefox/|\bFxiOS/"),
        ("Chrome", r"\b(?:Headless)?Chrome/|\bCriOS/"),
        ("Safari", r"\bVersion/[\d.]+.*\bSafari/"),
    )
)
_SYSTEMS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("iPhone", r"\biPhone\b"),
        ("iPad", r"\biPad\b"),
        ("Android", r"\bAndroid\b"),
        ("Windows", r"\bWindows\b"),
        ("ChromeOS", r"\bCrOS\b"),
        ("macOS", r"\bMacintosh\b|\bMac OS X\b"),
        ("Linux", r"\bLinux\b"),
    )
)


def label(user_agent: str | None) -> str | None:
    """ "Browser · System" (either alone when the other is unknown), or None when neither is known."""
    if not isinstance(user_agent, str) or not user_agent:
        return None
    text = user_agent[:_MAX_INPUT]
    browser = next((name for name, pattern in _BROWSERS if pattern.search(text)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(text)), None)
    found = " · ".join(part for part in (browser, system) if part)
    return found[:MAX_LENGTH] or None


# The network of the address a session logged in from, kept with its device label (after NETWORK_MARK)
# so that two "Chrome · Linux" sessions can be told apart: the address cut to its network (IPv4 /24,
# IPv6 /48), which names a place (a home, an office, a provider's area) without naming the machine.
# No external service and no shipped table: the account page says "This network" when it is the one
# the reader reads from now, else the network itself.
NETWORK_MARK = " @ "
_PREFIX = {4: 24, 6: 48}


def network(address: str | None) -> str | None:
    """The address's network as text ("203.0.113.0/24", "2001:db8:1::/48"), or None when unreadable."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/{_PREFIX[ip.version]}", strict=False))


def stored(user_agent: str | None, address: str | None) -> str | None:
    """What a session keeps: its device label and, after NETWORK_MARK, its network."""
    device, net = label(user_agent), network(address)
    if net is None:
        return device
    return f"{device or ''}{NETWORK_MARK}{net}"


def split(kept: str | None) -> tuple[str | None, str | None]:
    """(device label, network) of what a session keeps; a label kept before networks were has none."""
    if not kept or NETWORK_MARK not in kept:
        return kept or None, None
    device, net = kept.rsplit(NETWORK_MARK, 1)
    return device or None, net or None
