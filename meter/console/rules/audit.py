"""The audit log: one row for everything done through the console or the staff commands.

Who (the staff member, or "command line"), when, what (an action name such as `reader.resend` and
its detail) and on which site (a sign-in: a row on each site the member can see). Written in the same transaction as the change where there is one, so
a change is never without its row; shown in the console (owners) and by `flask audit show`. A
detail never holds a secret: a key's prefix, never the key; a provider's name, never its secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from meter.console.models import AuditEntry, Staff
from meter.console.rules import roles
from meter.platform.db import db
from meter.sites.models import Site

COMMAND_LINE = "command line"
RECORDED = "meter.audit_recorded"  # set in the session's info by every row added (meter.sites.operator.audited)


def record(
    action: str,
    *,
    staff: Staff | None = None,
    site: Site | Any | None = None,
    detail: dict[str, Any] | None = None,
    commit: bool = True,
) -> AuditEntry:
    """Add the row (and commit, unless the caller commits it with its change). `site` is a row or a SiteInfo."""
    entry = AuditEntry(
        staff_id=staff.id if staff is not None else None,
        actor=staff.email if staff is not None else COMMAND_LINE,
        site_id=getattr(site, "id", None),
        site_slug=getattr(site, "slug", None),
        action=action,
        detail=detail or {},
    )
    db.session.add(entry)
    db.session.info[RECORDED] = True
    if commit:
        db.session.commit()
    return entry


def record_on_sites(action: str, staff: Staff, detail: dict[str, Any] | None = None) -> None:
    """A row for each site the member can see (committed): what a member does to the console as a
    whole, such as signing in, is in the log of every site it opens, so each site's owner sees it.
    One row without a site for a member with none."""
    mine = [site for site, _role in roles.sites_of(staff)] or [None]
    for site in mine:
        record(action, staff=staff, site=site, detail=detail, commit=False)
    db.session.commit()


def entries(site_id: int | None = None, since: datetime | None = None, limit: int = 500) -> list[AuditEntry]:
    """Newest first; of one site when `site_id` is given; from `since` (naive UTC) when given."""
    query = db.select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    if site_id is not None:
        query = query.where(AuditEntry.site_id == site_id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    return list(db.session.scalars(query))


def describe(detail: dict[str, Any]) -> str:
    """The detail on one line: `key=value`, sorted."""
    return " ".join(f"{key}={value}" for key, value in sorted((detail or {}).items()))
