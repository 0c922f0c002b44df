"""A site's settings changed from the console: the policy (validated, its change shown before it is
saved), origins, API keys, grant keys, sign-in providers. Each change is committed with its audit row and drops the per-process
site cache here; other processes see it within SITE_CACHE_TTL, as after the commands.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from meter.console.models import Staff
from meter.console.rules import audit
from meter.platform.db import db
from meter.sites import grant_keys, merge, normalise, rules_text, sites
from meter.sites.models import ApiKey, GrantKey, Site
from meter.social import providers


def flat(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as `flask sites policy --set` names its keys: quota.verified, period,
    meters.koran.quota.verified, sections.laput, …; a meter's rules by arrival are one value (`rules`,
    `meters.koran.rules`), their lines joined: their order is part of them."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for sub, inner in value.items():
                walk(f"{prefix}.{sub}" if prefix else sub, inner)
        elif prefix == "rules" or prefix.endswith(".rules"):  # an ordered list: one value, as the form writes it
            out[prefix] = rules_text(value, "; ")
        else:
            out[prefix] = value

    walk("", normalise(policy))
    return out


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, before, after) of every key that differs (None: absent, as a removed meter's or section's);
    empty when nothing would change."""
    before, after = flat(old), flat(new)
    keys = [*after, *(key for key in before if key not in after)]
    return [(key, before.get(key), after.get(key)) for key in keys if before.get(key) != after.get(key)]


def meter_changes(policy: dict[str, Any], name: str, keys: dict[str, Any], sections: list[str] | None) -> dict:
    """The policy changes (dotted, for `merge`) a meter's form asks for: its keys as posted
    (`quota.verified`, `period`), and when its sections were posted, each section listed now that was
    not the meter's (it moves here) and each that was and is no longer listed (it goes: an article
    of it counts in the default meter)."""
    asked: dict[str, Any] = {f"meters.{name}.{key}": value for key, value in keys.items()}
    if sections is not None:
        had = {section for section, meter in normalise(policy).get("sections", {}).items() if meter == name}
        asked.update({f"sections.{section}": name for section in sections if section not in had})
        asked.update({f"sections.{section}": None for section in sorted(had - set(sections))})
    return asked


def removal(policy: dict[str, Any], name: str) -> dict:
    """The changes that remove a meter: it, and its sections (their articles count in the default meter)."""
    sections = normalise(policy).get("sections", {})
    return {f"meters.{name}": None, **{f"sections.{s}": None for s, meter in sections.items() if meter == name}}


def version(policy: dict[str, Any]) -> str:
    """A short digest of the policy a preview was made from: saving checks that nobody changed it meanwhile."""
    return hashlib.sha256(json.dumps(normalise(policy), sort_keys=True).encode()).hexdigest()[:16]


def save_policy(site: Site, asked: dict[str, Any], staff: Staff) -> list[tuple[str, Any, Any]]:
    """Store the keys `asked` names (dotted, as `flat`) over the site's current policy, validated
    (raise PolicyError); the changes made. The keys it does not name keep their values."""
    new = merge(site.policy, asked)
    made = changes(site.policy, new)
    if made:
        site.policy = new
        detail = {key: f"{before} -> {after}" for key, before, after in made}
        audit.record("policy.change", staff=staff, site=site, detail=detail, commit=False)
        db.session.commit()
        sites.forget_cached()
    return made


def add_origin(site: Site, url: str, staff: Staff) -> str:
    """Add an origin (sites.check_origin: scheme, host, port; raise ValueError for anything else)."""
    origin = sites.check_origin(url or "")
    if origin not in (site.origins or []):
        site.origins = [*(site.origins or []), origin]
        audit.record("origin.add", staff=staff, site=site, detail={"origin": origin}, commit=False)
        db.session.commit()
        sites.forget_cached()
    return origin


def remove_origin(site: Site, origin: str, staff: Staff) -> bool:
    if origin not in (site.origins or []):
        return False
    site.origins = [o for o in site.origins if o != origin]
    audit.record("origin.remove", staff=staff, site=site, detail={"origin": origin}, commit=False)
    db.session.commit()
    sites.forget_cached()
    return True


def keys(site: Site) -> list[ApiKey]:
    return list(db.session.scalars(db.select(ApiKey).filter_by(site_id=site.id).order_by(ApiKey.id.desc())))


def new_key(site: Site, staff: Staff) -> str:
    """A new API key, returned once: only its hash is stored. The old keys keep working until revoked."""
    key = sites.new_key(site)
    audit.record("api_key.create", staff=staff, site=site, detail={"prefix": key[: sites.KEY_PREFIX_LEN]}, commit=False)
    db.session.commit()
    return key


def revoke_key(site: Site, prefix: str, staff: Staff) -> bool:
    """Revoke the live key with this stored prefix (exactly; the console names keys by it)."""
    row = db.session.scalar(db.select(ApiKey).filter_by(site_id=site.id, prefix=prefix, revoked_at=None))
    if row is None:
        return False
    audit.record("api_key.revoke", staff=staff, site=site, detail={"prefix": prefix}, commit=False)
    if sites.revoke_key(site, prefix) == 1:  # commits the audit row with the revocation
        return True
    db.session.rollback()
    return False


def save_provider(site: Site, fields: dict[str, Any], staff: Staff) -> bool:
    """Add or replace a sign-in provider (raise ProviderError); True when it replaced one. The secret
    is sealed by `providers.add` and never written to the audit row."""
    _row, replaced = providers.add(
        site,
        fields["name"],
        fields["kind"],
        fields["client_id"],
        fields["secret"],
        issuer=fields.get("issuer") or None,
        label=fields.get("label") or None,
        team_id=fields.get("team_id") or None,
        key_id=fields.get("key_id") or None,
    )
    detail = {"name": fields["name"], "kind": fields["kind"], "client_id": fields["client_id"]}
    audit.record(
        "provider.replace" if replaced else "provider.add", staff=staff, site=site, detail=detail, commit=False
    )
    db.session.commit()
    sites.forget_cached()
    return replaced


def remove_provider(site: Site, name: str, staff: Staff) -> bool:
    if not providers.remove(site, name):
        return False
    audit.record("provider.remove", staff=staff, site=site, detail={"name": name}, commit=False)
    db.session.commit()
    sites.forget_cached()
    return True


def grant_key_rows(site: Site) -> list[tuple[GrantKey, str]]:
    """(key, state) of the site's grant keys, the newest first."""
    return [(key, grant_keys.state(key)) for key in sorted(site.grant_keys, key=lambda key: -key.id)]


def new_grant_key(site: Site, staff: Staff) -> GrantKey:
    """The site's first grant key, or a rotation: the new key signs two minutes later, the old one stays
    published until its grants have expired (meter.sites.rules.grant_keys)."""
    old = grant_keys.signing_key(site)
    key = grant_keys.rotate(site)[0] if old is not None else grant_keys.create(site)
    detail = {"kid": key.kid, "alg": key.alg, **({"replaces": old.kid} if old is not None else {})}
    audit.record("grant_key.rotate" if old else "grant_key.create", staff=staff, site=site, detail=detail, commit=False)
    db.session.commit()
    sites.forget_cached()
    return key


def retire_grant_key(site: Site, kid: str, staff: Staff) -> bool:
    """Out of signing and out of the JWK Set now: for a key that leaked."""
    if not grant_keys.retire(site, kid):
        db.session.rollback()
        return False
    audit.record("grant_key.retire", staff=staff, site=site, detail={"kid": kid}, commit=False)
    db.session.commit()
    sites.forget_cached()
    return True
