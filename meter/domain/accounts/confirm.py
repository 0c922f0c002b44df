"""Email confirmation: the activation mail, its resending, and the activation itself.

The token names the reader and a fingerprint of the address, so a link dies if the email changes;
activation is a conditional UPDATE, so of two clicks at once exactly one logs the reader in.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import update

from meter.domain import metering, tokens
from meter.domain.accounts import emails, mail_budget
from meter.domain.accounts.common import decoy_mail, find_reader, mail_context, page_url, safe_next
from meter.domain.accounts.sessions import create_session
from meter.domain.sites import SiteInfo
from meter.infra import mail, signals
from meter.infra.db import db
from meter.infra.models import Reader, utcnow


def activation_token(reader: Reader, next_url: str | None) -> str:
    payload = {"r": reader.id, "s": reader.site_id, "e": tokens.fingerprint("activation-email", reader.email_key)}
    if next_url:
        payload["n"] = next_url
    return tokens.make(tokens.ACTIVATION, payload)


def queue_activation(site: SiteInfo, reader: Reader, next_url: str | None = None) -> None:
    """Queue the activation mail (the caller commits)."""
    link = page_url(site, "activate/" + activation_token(reader, next_url), reader.locale)
    mail.queue("activation", reader.email, reader.locale, site.id, **mail_context(site, link=link, email=reader.email))
    reader.last_activation_sent_at = utcnow()
    signals.activation_sent.send(current_app._get_current_object(), reader=reader, link=link)


def resend(site: SiteInfo, email: str) -> None:
    """Send the activation mail again to an unverified reader; silently nothing otherwise.

    The address's mail budget is spent first, whoever it belongs to (raise mail_budget.Spent when
    there is none left): an unknown address answers and costs the same as a known one.
    """
    try:
        key = emails.lookup_key(emails.normalise(email))
    except emails.BadEmail:
        key = None  # no mail can go to it; the decoy below costs the same
    if key is not None:
        mail_budget.spend(site.id, key)
    reader = find_reader(site.id, email)
    if reader is not None and reader.verified_at is None:
        queue_activation(site, reader)
        db.session.commit()
    else:
        decoy_mail(site, "activation")  # the same work for an unknown or verified address


@dataclass
class Activation:
    reader: Reader
    reader_token: str | None  # only for the click that activated: the link is not a login link
    next_url: str | None


def activate(site: SiteInfo, token: str, anonymous_id: str | None = None) -> Activation:
    """Raise tokens.TokenError("expired" | "invalid") for a link that cannot activate."""
    payload = tokens.load(tokens.ACTIVATION, token).payload
    reader = db.session.get(Reader, payload.get("r")) if isinstance(payload.get("r"), int) else None
    if reader is None or payload.get("s") != site.id or reader.site_id != site.id:
        raise tokens.TokenError("invalid")
    if not tokens.fingerprint_matches("activation-email", reader.email_key, payload.get("e")):
        raise tokens.TokenError("invalid")  # the address changed since the mail was sent
    next_url = safe_next(site, payload.get("n"))
    won = db.session.execute(
        update(Reader).where(Reader.id == reader.id, Reader.verified_at.is_(None)).values(verified_at=utcnow())
    ).rowcount
    db.session.commit()
    if won != 1:
        return Activation(reader, None, next_url)
    db.session.refresh(reader)
    reader_token = create_session(reader)
    if anonymous_id:
        metering.merge_anonymous(site, anonymous_id, reader.id)
    metering.forget_reader_state(site.id, reader.id)
    signals.reader_activated.send(current_app._get_current_object(), reader=reader)
    return Activation(reader, reader_token, next_url)


__all__ = ["activate", "find_reader", "queue_activation", "resend"]
