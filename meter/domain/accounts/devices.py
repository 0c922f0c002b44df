"""A session's device, as the account page shows it: "Chrome · Android", from the User-Agent at login.

Why a label and not the User-Agent: the reader needs to tell "my phone" from "the office computer"
when ending sessions, and nothing more. A full User-Agent (versions, build numbers, device models)
helps fingerprint a person; the browser family and the system do not, so only those are kept.
"""

from __future__ import annotations

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
