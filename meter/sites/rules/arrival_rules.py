"""Rules by arrival: extra reads per period for readers who come from search, from social, or by a
named campaign.

A rule belongs to a meter (the top-level `rules` to the default meter, `meters.koran.rules` to the
koran's). A meter's rules are an ordered list and the first that matches the reader's arrival decides:

    "rules": [
      {"name": "ramadan", "arrival": "campaign", "campaign": "ramadan", "extra": 3},
      {"name": "search", "arrival": "search", "extra": 1},
      {"name": "social", "arrival": "social", "extra": 1}
    ]

`extra` is added to each reader state's quota of the meter for the check the reader arrived with (a
subscriber reads without one anyway): the reads are counted in the meter as any other, so a reader
who used the quota and comes back from a search gets that many more in the period, and the article
they opened stays theirs. The arrival (meter.access.rules.arrival) is the client's word, like the
anonymous id: a rule is a marketing offer, not a lock. The answers name the rule that applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ARRIVALS = ("search", "social", "campaign")
RULE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
CAMPAIGN_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,63}$")  # as the arrival compares it: lower case, ≤ 64
MAX_RULES = 10
MAX_EXTRA = 1000
RULE_KEYS = ("arrival", "campaign", "extra")
_TAKES = "a rule takes arrival (search, social or campaign), campaign (with arrival campaign) and extra"


class RuleError(ValueError):
    """A rule that cannot be; `key` names it (rules.search.extra, meters.koran.rules)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Rule:
    name: str
    arrival: str  # search | social | campaign
    extra: int
    campaign: str | None = None  # with arrival "campaign": the utm_campaign (lower case) it gives to

    def matches(self, source: str, campaign: str | None) -> bool:
        if self.arrival == "campaign":
            return campaign is not None and campaign == self.campaign
        return source == self.arrival

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        return cls(data["name"], data["arrival"], data["extra"], data.get("campaign"))


def first_match(rules: tuple[Rule, ...], source: str, campaign: str | None) -> Rule | None:
    """The rule that decides: the first of the meter's rules that matches, in their order."""
    for rule in rules:
        if rule.matches(source, campaign):
            return rule
    return None


def validate(given: Any, where: str) -> list[dict[str, Any]]:
    """A meter's rules, validated, in their order; `where` is the key they are under (rules,
    meters.koran.rules), which every error names."""
    if not isinstance(given, list):
        raise RuleError(f"{where} must be a list of rules, the first that matches decides", where)
    if len(given) > MAX_RULES:
        raise RuleError(f"{where}: at most {MAX_RULES} rules", where)
    out: list[dict[str, Any]] = []
    for index, rule in enumerate(given):
        name = rule.get("name") if isinstance(rule, dict) else None
        if not isinstance(name, str) or not RULE_NAME.match(name):
            raise RuleError(
                f"{where}[{index}]: a rule's name is 1 to 32 of a-z, 0-9, _ and -, starting with a letter", where
            )
        at = f"{where}.{name}"
        if any(seen["name"] == name for seen in out):
            raise RuleError(f"{at}: two rules of this name", at)
        if set(rule) - {"name", *RULE_KEYS}:
            raise RuleError(f"{at}: {_TAKES}", at)
        out.append(_rule(rule, at))
    return out


def _rule(rule: dict[str, Any], at: str) -> dict[str, Any]:
    arrival, extra, campaign = rule.get("arrival"), rule.get("extra", 1), rule.get("campaign")
    if isinstance(extra, bool) or not isinstance(extra, int) or not 0 <= extra <= MAX_EXTRA:
        raise RuleError(f"{at}.extra must be a whole number from 0 to {MAX_EXTRA}", f"{at}.extra")
    if arrival not in ARRIVALS:
        raise RuleError(f"{at}.arrival must be {', '.join(ARRIVALS[:-1])} or {ARRIVALS[-1]}", f"{at}.arrival")
    out: dict[str, Any] = {"name": rule["name"], "arrival": arrival, "extra": extra}
    if arrival == "campaign":
        campaign = campaign.strip().lower() if isinstance(campaign, str) else campaign  # compared in lower case
        if not isinstance(campaign, str) or not CAMPAIGN_NAME.match(campaign):
            raise RuleError(
                f"{at}.campaign: the utm_campaign this rule gives to, 1 to 64 of a-z, 0-9, _ . + and - "
                "(stored and compared in lower case)",
                f"{at}.campaign",
            )
        out["campaign"] = campaign
    elif campaign is not None:
        raise RuleError(f"{at}.campaign: only a rule of arrival campaign names one", f"{at}.campaign")
    return out


def change(rules: list[dict[str, Any]], name: str, key: str | None, value: Any) -> list[dict[str, Any]]:
    """`rules` with one change of `flask sites policy --set` or a form: `rules.NAME.KEY=VALUE` sets one
    key of a rule (a rule not there yet is added last); `rules.NAME` with None removes it. The result is
    validated by the caller."""
    out = [dict(rule) for rule in rules]
    found = next((rule for rule in out if rule.get("name") == name), None)
    if key is None:
        if value is not None:
            raise RuleError(f"rules.{name}: name one of its keys ({', '.join(RULE_KEYS)}), or remove it", name)
        return [rule for rule in out if rule.get("name") != name]
    if key not in RULE_KEYS:
        raise RuleError(f"unknown rule key: {key} ({_TAKES})", key)
    if found is None:
        found = {"name": name}
        out.append(found)
    if value is None:
        found.pop(key, None)
    else:
        found[key] = value
    if key == "arrival" and value != "campaign":
        found.pop("campaign", None)
    return out


def rule_line(rule: dict[str, Any]) -> str:
    """One rule as the console's form writes it: `search: search +1`, `ramadan: campaign ramadan +3`."""
    arrival = f"campaign {rule['campaign']}" if rule["arrival"] == "campaign" else rule["arrival"]
    return f"{rule['name']}: {arrival} +{rule['extra']}"


def rules_text(rules: list[dict[str, Any]], between: str = "\n") -> str:
    """A meter's rules, one `rule_line` each, in their order."""
    return between.join(rule_line(rule) for rule in rules)


_LINE = re.compile(r"^\s*([^:\s]+)\s*:\s*(\S+)(?:\s+(\S+))?\s+\+?(\d{1,6})\s*$")


def parse_lines(text: str) -> list[dict[str, Any]]:
    """The rules a form wrote, one `rule_line` a line, in their order (blank lines skipped); not yet
    validated (`validate` does that, and names the rule). RuleError naming the line it cannot read."""
    rules: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        found = _LINE.match(line)
        if found is None:
            raise RuleError(f"line {number}: write NAME: ARRIVAL +EXTRA (ARRIVAL: search, social or campaign NAME)", "")
        name, arrival, campaign, extra = found.groups()
        rule: dict[str, Any] = {"name": name, "arrival": arrival, "extra": int(extra)}
        if campaign is not None:
            rule["campaign"] = campaign
        rules.append(rule)
    return rules
