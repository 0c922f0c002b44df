"""Roles, per site: `support` (readers and their mail) < `editor` (also the figures and the policy) <
`owner` (also API keys, origins, login providers, staff and the audit log).

A staff member may hold a different role on each of several sites, and sees only those sites. The
console asks `role_on` for every view and action; nothing is decided by what a page shows.
"""

from __future__ import annotations

from meter.console.models import Staff, StaffGrant
from meter.platform.db import db
from meter.sites.models import Site

ROLES = ("support", "editor", "owner")


def rank(role: str | None) -> int:
    """0 for no role; then 1, 2, 3 in the order of ROLES."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def allows(role: str | None, needed: str) -> bool:
    return rank(role) >= rank(needed) > 0


def role_on(staff: Staff, site_id: int) -> str | None:
    grant = db.session.get(StaffGrant, (staff.id, site_id))
    return grant.role if grant is not None else None


def sites_of(staff: Staff) -> list[tuple[Site, str]]:
    """The sites this member may see, by slug, with the role on each."""
    rows = db.session.execute(
        db.select(Site, StaffGrant.role)
        .join(StaffGrant, StaffGrant.site_id == Site.id)
        .where(StaffGrant.staff_id == staff.id)
    ).all()
    return sorted(((site, role) for site, role in rows), key=lambda pair: pair[0].slug)


def grant(staff: Staff, site: Site, role: str) -> None:
    """Give (or change) the member's role on the site; the caller commits."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    row = db.session.get(StaffGrant, (staff.id, site.id)) if staff.id is not None else None
    if row is None:
        staff.grants.append(StaffGrant(site_id=site.id, role=role))
    else:
        row.role = role
