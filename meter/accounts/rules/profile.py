"""A signed-in reader changes their own account: the password, the address.

- Changing the password needs the current one. Every session ends, the one asking included (its
  token is `revoked`), and a new session is made for it: a thief holding any older token, on any
  device, is out. The reset links die with the old password (`auth_version`), the cached reader
  state goes, and a notice is mailed to the address.
- Changing the address needs the password too, and takes effect only when the link mailed to the
  new address is clicked: until then the old address stays, and logs in. The link's token (its own
  purpose and salt, a day) names the reader and both addresses by keyed fingerprint, so it dies
  when either changes (another request replaces the pending address). After the click the old
  address gets a notice. An address already taken on the site answers the same and costs the same:
  the new address gets the "already registered" mail instead of a link, and nothing changes.

Security notices (password changed, address changed) count against the address's mail budget but
are never held back by it: a budget spent by someone else must not hide a change from the owner.
Who may ask how often is bounded above (RATELIMIT_ACCOUNT_CHANGE, per account).
"""

from __future__ import annotations

import contextlib
import hmac

from flask import current_app
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from meter.access import metering
from meter.accounts.models import Reader
from meter.accounts.rules import emails, events, mail_budget, passwords
from meter.accounts.rules.lookup import find_reader, mail_context, page_url
from meter.accounts.rules.sessions import create_session, revoke_all
from meter.platform import mail, signals, tokens
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites import SiteInfo

OLD_PURPOSE = "email-change-old"
NEW_PURPOSE = "email-change-new"


class WrongPassword(Exception):
    """The current password given is not the account's."""


class NoPassword(Exception):
    """The account has no password (social sign-in only): a password reset mailed to it sets one."""


class ChangeError(ValueError):
    """A field the change cannot take; `field` names it, `message` says why (in English, for the API), and
    `same` is true when the new address is the account's own (the pages say that in the reader's words)."""

    def __init__(self, field: str, message: str, same: bool = False) -> None:
        super().__init__(message)
        self.field, self.message, self.same = field, message, same


def check_password(reader: Reader, password: str) -> None:
    """Raise NoPassword or WrongPassword; the Argon2 work is the same in every case."""
    has_one = passwords.usable(reader.password_hash)
    if not passwords.verify_password(reader.password_hash, password):
        raise WrongPassword() if has_one else NoPassword()


def check_new_password(password: str) -> None:
    if not passwords.MIN_LENGTH <= len(password) <= passwords.MAX_LENGTH:
        raise ChangeError("password", f"from {passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters")


def notify(site: SiteInfo, kind: str, to: str, email_key: str, locale: str, **context) -> None:
    """Queue a security notice (the caller commits): counted in the address's budget, never refused by it."""
    with contextlib.suppress(mail_budget.Spent):  # sent all the same: the owner must hear of the change
        mail_budget.spend(site.id, email_key)
    mail.queue(kind, to, locale, site.id, **mail_context(site, email=to, **context))


# --- the password -------------------------------------------------------------------------------------


def change_password(site: SiteInfo, reader: Reader, current: str, new: str, *, device: str | None = None) -> str:
    """Set a new password and return a new reader token; every other session ends.

    Raise ChangeError (the new password's length), NoPassword or WrongPassword. The UPDATE is
    conditional on the password version read, so of two changes at once exactly one wins (the
    other is answered as a wrong password: the password it proved is no longer the account's).
    """
    check_new_password(new)
    check_password(reader, current)
    version = reader.auth_version
    new_hash = passwords.hash_password(new)
    won = db.session.execute(
        update(Reader)
        .where(Reader.id == reader.id, Reader.auth_version == version)
        .values(password_hash=new_hash, pending_password_hash=None, auth_version=Reader.auth_version + 1)
    ).rowcount
    if won != 1:
        db.session.rollback()
        raise WrongPassword()
    db.session.refresh(reader)
    revoke_all(reader)
    notify(
        site,
        "password_changed",
        reader.email,
        reader.email_key,
        reader.locale,
        reset_url=page_url(site, "forgot-password", reader.locale),
    )
    db.session.commit()
    metering.forget_reader_state(site.id, reader.id)
    return create_session(reader, device=device)


# --- the address --------------------------------------------------------------------------------------


def _change_token(reader: Reader, new_key: str) -> str:
    payload = {
        "r": reader.id,
        "s": reader.site_id,
        "o": tokens.fingerprint(OLD_PURPOSE, reader.email_key),
        "n": tokens.fingerprint(NEW_PURPOSE, new_key),
    }
    return tokens.make(tokens.EMAIL_CHANGE, payload)


def request_email_change(site: SiteInfo, reader: Reader, password: str, new_email: str) -> str:
    """Mail a confirmation link to `new_email` (or, when the site has an account there, the "already
    registered" mail); return the address as normalised. The address changes only when the link is clicked.

    Raise NoPassword, WrongPassword, ChangeError ("email": not an address, or the account's own),
    or mail_budget.Spent (the new address's budget, the one activation mail spends).
    """
    check_password(reader, password)
    try:
        address = emails.normalise(new_email)
    except emails.BadEmail as exc:
        raise ChangeError("email", str(exc)) from None
    key = emails.lookup_key(address)
    if hmac.compare_digest(key.encode(), reader.email_key.encode()):
        raise ChangeError("email", "this is the account's address already", same=True)
    mail_budget.spend(site.id, key)
    token = _change_token(reader, key)  # made either way: both answers cost the same
    holder = find_reader(site.id, address)
    # Pending either way, so that nothing the reader sees afterwards (page, export) tells the cases apart.
    reader.pending_email = address
    if holder is not None:
        mail.queue(
            "already_registered",
            holder.email,
            holder.locale,
            site.id,
            **mail_context(
                site,
                login_url=page_url(site, "login", holder.locale),
                reset_url=page_url(site, "forgot-password", holder.locale),
            ),
        )
    else:
        link = page_url(site, "account/email/" + token, reader.locale)
        mail.queue("email_change", address, reader.locale, site.id, **mail_context(site, link=link, email=address))
    db.session.commit()
    return address


def confirm_email_change(site: SiteInfo, token: str) -> Reader:
    """Move the account to the address the link was mailed to; the old address gets a notice.

    Raise tokens.TokenError ("expired" | "invalid"): an unknown reader, another site, an address that
    changed since (either one), a link already used, or a new address taken meanwhile.
    """
    payload = tokens.load(tokens.EMAIL_CHANGE, token).payload
    reader = db.session.get(Reader, payload["r"]) if isinstance(payload.get("r"), int) else None
    if reader is None or payload.get("s") != site.id or reader.site_id != site.id or not reader.pending_email:
        raise tokens.TokenError("invalid")
    new_address = reader.pending_email
    new_key = emails.lookup_key(new_address)
    if not (
        tokens.fingerprint_matches(OLD_PURPOSE, reader.email_key, payload.get("o"))
        & tokens.fingerprint_matches(NEW_PURPOSE, new_key, payload.get("n"))
    ):
        raise tokens.TokenError("invalid")
    holder = find_reader(site.id, new_address)
    if holder is not None:
        raise tokens.TokenError("invalid")  # the address was taken since (or the link led to a taken one)
    old_address, old_key, was_verified = reader.email, reader.email_key, reader.verified_at is not None
    try:
        won = db.session.execute(
            update(Reader)
            .where(Reader.id == reader.id, Reader.email_key == old_key, Reader.pending_email == new_address)
            .values(
                email=new_address,
                email_key=new_key,
                pending_email=None,
                pending_password_hash=None,  # a registration of the old address has nothing to claim here
                verified_at=reader.verified_at or utcnow(),  # the click proves the new address
            )
        ).rowcount
    except IntegrityError:
        db.session.rollback()
        raise tokens.TokenError("invalid") from None
    if won != 1:
        db.session.rollback()
        raise tokens.TokenError("invalid")
    notify(site, "email_changed", old_address, old_key, reader.locale, new_email=new_address)
    db.session.refresh(reader)
    events.email_changed(reader, old_address, new_address)
    if not was_verified:
        events.activated(reader)
    db.session.commit()
    db.session.refresh(reader)
    metering.forget_reader_state(site.id, reader.id)
    if not was_verified:
        signals.reader_activated.send(current_app._get_current_object(), reader=reader)
    return reader
