"""Publisher sites: their settings, origins and metering policy (`rules.sites`, `rules.policy`), their
API keys, article keys and grant keys (`models`, `rules.grant_keys`), the public keys of their
grants (`views.jwks`), how a request names its site (`lookup`: by API key, which every JSON API
blueprint checks, or by the slug in its path), and `flask sites …` (`commands`).

This module is the feature's public face: other features import from it only (import-linter keeps
the rest private); each name comes from its home on first use (`meter.platform.public`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meter.platform.public import exports

if TYPE_CHECKING:
    from meter.sites.lookup import api_blueprint
    from meter.sites.operator import audited, parse_since, progress, reader_of, site_of, utc_text
    from meter.sites.rules import experiments, grant_keys, sites
    from meter.sites.rules.arrival_rules import RuleError, parse_lines, rules_text
    from meter.sites.rules.periods import Period
    from meter.sites.rules.policy import (
        DEFAULT_POLICY,
        KEYS,
        MAX_METERS,
        MAX_TIMEZONE,
        METER_KEYS,
        METER_NAME,
        SCHEMA,
        SECTION_NAME,
        Meter,
        Policy,
        PolicyError,
        merge,
        normalise,
    )
    from meter.sites.rules.sites import SiteInfo, info, info_by_slug, mail_sender, normalise_origin

_PUBLIC = {
    "DEFAULT_POLICY": ("meter.sites.rules.policy", "DEFAULT_POLICY"),
    "KEYS": ("meter.sites.rules.policy", "KEYS"),
    "MAX_METERS": ("meter.sites.rules.policy", "MAX_METERS"),
    "METER_KEYS": ("meter.sites.rules.policy", "METER_KEYS"),
    "METER_NAME": ("meter.sites.rules.policy", "METER_NAME"),
    "SECTION_NAME": ("meter.sites.rules.policy", "SECTION_NAME"),
    "MAX_TIMEZONE": ("meter.sites.rules.policy", "MAX_TIMEZONE"),
    "Period": ("meter.sites.rules.periods", "Period"),
    "Meter": ("meter.sites.rules.policy", "Meter"),
    "Policy": ("meter.sites.rules.policy", "Policy"),
    "PolicyError": ("meter.sites.rules.policy", "PolicyError"),
    "RuleError": ("meter.sites.rules.arrival_rules", "RuleError"),
    "parse_lines": ("meter.sites.rules.arrival_rules", "parse_lines"),
    "rules_text": ("meter.sites.rules.arrival_rules", "rules_text"),
    "SCHEMA": ("meter.sites.rules.policy", "SCHEMA"),
    "SiteInfo": ("meter.sites.rules.sites", "SiteInfo"),
    "api_blueprint": ("meter.sites.lookup", "api_blueprint"),
    "audited": ("meter.sites.operator", "audited"),
    "experiments": ("meter.sites.rules.experiments", None),
    "grant_keys": ("meter.sites.rules.grant_keys", None),
    "info": ("meter.sites.rules.sites", "info"),
    "info_by_slug": ("meter.sites.rules.sites", "info_by_slug"),
    "mail_sender": ("meter.sites.rules.sites", "mail_sender"),
    "merge": ("meter.sites.rules.policy", "merge"),
    "normalise": ("meter.sites.rules.policy", "normalise"),
    "normalise_origin": ("meter.sites.rules.sites", "normalise_origin"),
    "parse_since": ("meter.sites.operator", "parse_since"),
    "progress": ("meter.sites.operator", "progress"),
    "reader_of": ("meter.sites.operator", "reader_of"),
    "site_of": ("meter.sites.operator", "site_of"),
    "sites": ("meter.sites.rules.sites", None),
    "utc_text": ("meter.sites.operator", "utc_text"),
}
__all__ = [
    "DEFAULT_POLICY",
    "KEYS",
    "MAX_METERS",
    "MAX_TIMEZONE",
    "METER_KEYS",
    "METER_NAME",
    "SCHEMA",
    "SECTION_NAME",
    "Meter",
    "Period",
    "Policy",
    "PolicyError",
    "RuleError",
    "SiteInfo",
    "api_blueprint",
    "audited",
    "experiments",
    "grant_keys",
    "info",
    "info_by_slug",
    "mail_sender",
    "merge",
    "normalise",
    "normalise_origin",
    "parse_lines",
    "parse_since",
    "progress",
    "reader_of",
    "rules_text",
    "site_of",
    "sites",
    "utc_text",
]
__getattr__ = exports(__name__, _PUBLIC)
