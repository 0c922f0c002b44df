"""Staff accounts: made on the command line, set up by the member from a one-time link, signed in to
with a password and an authenticator code.

`flask staff create` mails nothing: it prints the set-up link for the operator to hand over. The
link's token is 256 random bits; only its SHA-256 is stored, it works for STAFF_SETUP_MAX_AGE and
once (a completed set-up forgets it; a new link replaces the old). The authenticator's secret is
made with the link and shown on the set-up page as a QR code; it counts only once a code made from
it has been typed back there, together with the password.

Signing in costs the same whether or not the address is known (a dummy Argon2 hash), and answers the
same for a wrong address, password or code: nothing tells which was wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, update

from meter.accounts import emails, passwords
from meter.console.models import Staff
from meter.console.rules import audit, roles, totp
from meter.console.rules import staff_sessions as sessions
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites.models import Site
from meter.social import sealing


class StaffError(ValueError):
    """Something the operator must correct (the message says what)."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _key(email: str) -> tuple[str, str]:
    try:
        address = emails.normalise(email)
    except emails.BadEmail:
        raise StaffError(f"not an email address: {email!r}") from None
    return address, emails.lookup_key(address)


def find(email: str) -> Staff | None:
    try:
        _address, key = _key(email)
    except StaffError:
        return None
    return db.session.scalar(db.select(Staff).filter_by(email_key=key))


def setup_url(token: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/console/setup/{token}"


def _issue_setup(staff: Staff) -> str:
    """A fresh set-up: new link, new authenticator secret, no password, every session ended."""
    token = secrets.token_urlsafe(32)
    staff.setup_token_hash = _hash(token)
    staff.setup_expires_at = utcnow() + timedelta(seconds=current_app.config["STAFF_SETUP_MAX_AGE"])
    staff.totp_secret = sealing.seal(totp.new_secret())
    staff.totp_last_step = 0
    staff.password_hash = None
    staff.setup_at = None
    staff.disabled_at = None
    if staff.id is not None:
        sessions.end_all(staff)
    return token


@dataclass
class Created:
    staff: Staff
    link: str | None  # the set-up link, when the member has to (or may again) set up
    new: bool


def create(email: str, site: Site, role: str) -> Created:
    """Give `email` the role on the site, making the account when needed (committed, with its audit row).

    A new account, one never set up, or a disabled one gets a fresh set-up link (a disabled member
    comes back only through a new password and authenticator). An active member only gets the role.
    """
    if role not in roles.ROLES:
        raise StaffError(f"role must be one of {', '.join(roles.ROLES)}")
    address, key = _key(email)
    staff = db.session.scalar(db.select(Staff).filter_by(email_key=key))
    new = staff is None
    if staff is None:
        staff = Staff(email=address, email_key=key, totp_last_step=0)
        db.session.add(staff)
        db.session.flush()
    roles.grant(staff, site, role)
    link = None
    if new or staff.setup_at is None or staff.disabled_at is not None:
        link = setup_url(_issue_setup(staff))
    audit.record(
        "staff.create" if new else "staff.grant", site=site, detail={"email": address, "role": role}, commit=False
    )
    db.session.commit()
    return Created(staff, link, new)


def reset(staff: Staff) -> str:
    """A new set-up link for a member who lost their authenticator or password (committed); the link."""
    link = setup_url(_issue_setup(staff))
    audit.record("staff.reset", detail={"email": staff.email}, commit=False)
    db.session.commit()
    return link


def disable(staff: Staff) -> None:
    """The member can no longer sign in; every session ends now (committed, with its audit row)."""
    staff.disabled_at = utcnow()
    staff.setup_token_hash = None
    sessions.end_all(staff)
    audit.record("staff.disable", detail={"email": staff.email}, commit=False)
    db.session.commit()


def by_setup_token(token: str) -> Staff | None:
    """The member whose live set-up link this is, or None (unknown, used, replaced, expired, disabled)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 200:
        return None
    digest = _hash(token)
    staff = db.session.scalar(db.select(Staff).filter_by(setup_token_hash=digest))
    if staff is None or not hmac.compare_digest(staff.setup_token_hash or "", digest):
        return None
    if staff.disabled_at is not None or staff.setup_expires_at is None or staff.setup_expires_at < utcnow():
        return None
    return staff


def setup_secret(staff: Staff) -> str:
    return sealing.unseal(staff.totp_secret or "")


def complete_setup(staff: Staff, password: str, code: str) -> bool:
    """Set the password and enrol the authenticator when `code` comes from its secret; False otherwise.

    The link is spent: it cannot set up again. Committed, with its audit row."""
    step = totp.matching_step(setup_secret(staff), code, staff.totp_last_step or 0)
    if step is None or not _take_step(staff, step):
        db.session.rollback()
        return False
    staff.password_hash = passwords.hash_password(password)
    staff.setup_token_hash = None
    staff.setup_expires_at = None
    staff.setup_at = utcnow()
    audit.record("staff.setup", staff=staff, commit=False)
    db.session.commit()
    return True


def authenticate(email: str, password: str, code: str) -> Staff | None:
    """The member, when the address, password and code are all right and the account is set up and
    not disabled; else None. The password is checked whatever the address (the same work)."""
    staff = find(email)
    usable = staff is not None and staff.setup_at is not None and staff.disabled_at is None
    password_ok = passwords.verify_password(staff.password_hash if usable else None, password)
    if not usable or not password_ok:
        return None
    try:
        secret = setup_secret(staff)
    except sealing.SealError:
        return None  # SECRET_KEY changed without the old one kept: `flask staff reset` gives a new set-up
    step = totp.matching_step(secret, code, staff.totp_last_step or 0)
    if step is None or not _take_step(staff, step):
        db.session.rollback()
        return None
    db.session.commit()
    return staff


def _take_step(staff: Staff, step: int) -> bool:
    """Spend the code's time step, or False when it (or a later one) is spent already.

    A compare-and-set in SQL: the step read with the row may be stale by the time the code is checked
    (Argon2 takes a while), so of racing sign-ins with one code only the one whose UPDATE still finds
    an earlier step wins; the others find none and are refused. The caller commits."""
    taken = db.session.execute(
        update(Staff)
        .where(Staff.id == staff.id, or_(Staff.totp_last_step.is_(None), Staff.totp_last_step < step))
        .values(totp_last_step=step)
    )
    return taken.rowcount == 1


def listing() -> list[dict]:
    rows = db.session.scalars(db.select(Staff).order_by(Staff.email_key))
    return [
        {
            "email": staff.email,
            "state": "disabled" if staff.disabled_at else "active" if staff.setup_at else "set-up pending",
            "sites": {grant.site.slug: grant.role for grant in staff.grants},
            "created_at": staff.created_at.isoformat() + "Z",
        }
        for staff in rows
    ]


def reseal_all() -> int:
    """Seal every authenticator secret again with the current SECRET_KEY (before an old key leaves
    SECRET_KEY_FALLBACKS); the caller commits. Returns how many; raises SealError for one no key opens."""
    count = 0
    for staff in db.session.scalars(db.select(Staff).where(Staff.totp_secret.is_not(None))):
        staff.totp_secret = sealing.reseal(staff.totp_secret)
        count += 1
    return count
