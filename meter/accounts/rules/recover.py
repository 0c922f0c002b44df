"""Password reset: a one-hour token bound to the password version and the address, redeemable once.

Redemption is a conditional UPDATE on `auth_version`, so of two simultaneous requests exactly one
wins, and a token dies as soon as the password changes by any route.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import update

from meter.access import metering
from meter.accounts.models import Reader
from meter.accounts.rules import events, passwords
from meter.accounts.rules.lookup import decoy_mail, find_reader, mail_context, page_url
from meter.accounts.rules.sessions import create_session, revoke_all
from meter.platform import mail, signals, tokens
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites import SiteInfo


def request_reset(site: SiteInfo, email: str) -> None:
    """Queue a reset mail for a known address; an unknown one costs the same work and sends nothing."""
    reader = find_reader(site.id, email)
    if reader is None:
        decoy_mail(site, "password_reset")
        return
    payload = {
        "r": reader.id,
        "s": site.id,
        "v": reader.auth_version,
        "e": tokens.fingerprint("reset-email", reader.email_key),
    }
    token = tokens.make(tokens.RESET, payload)
    link = page_url(site, "reset-password/" + token, reader.locale)
    mail.queue(
        "password_reset", reader.email, reader.locale, site.id, **mail_context(site, link=link, email=reader.email)
    )
    db.session.commit()


def confirm_reset(site: SiteInfo, token: str, new_password: str, *, device: str | None = None) -> str:
    """Set the new password and return a fresh reader token; raise tokens.TokenError otherwise."""
    payload = tokens.load(tokens.RESET, token).payload
    reader_id, version = payload.get("r"), payload.get("v")
    if payload.get("s") != site.id or not isinstance(reader_id, int) or not isinstance(version, int):
        raise tokens.TokenError("invalid")
    holder = db.session.get(Reader, reader_id)
    if holder is None or not tokens.fingerprint_matches("reset-email", holder.email_key, payload.get("e")):
        raise tokens.TokenError("invalid")  # the address changed since the mail was sent
    new_hash = passwords.hash_password(new_password)
    won = db.session.execute(
        update(Reader)
        .where(Reader.id == reader_id, Reader.site_id == site.id, Reader.auth_version == version)
        .values(password_hash=new_hash, pending_password_hash=None, auth_version=Reader.auth_version + 1)
    ).rowcount
    if won != 1:
        db.session.rollback()
        raise tokens.TokenError("invalid")  # used already, or the password changed since
    reader = db.session.get(Reader, reader_id)
    db.session.refresh(reader)
    if reader.verified_at is None:
        reader.verified_at = utcnow()  # the reset mail reached them: the address is theirs
        events.activated(reader)
    revoke_all(reader)
    db.session.commit()
    metering.forget_reader_state(site.id, reader.id)
    signals.password_reset.send(current_app._get_current_object(), reader=reader)
    return create_session(reader, device=device)
