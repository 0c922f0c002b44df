"""Email confirmation: the activation mail, its resending, and the activation itself; and the mails
that prove an address for a sign-in with another account (`queue_provider_link`).

Whoever proves control of the address ends up the only one with access. Why: an unverified account
can log in, so an attacker could register someone's address first with a password of their own, and
the owner's later click verified the attacker's account (the owner's password refused, the
attacker's token now `verified`). So:

- a registration of an unverified address keeps the account's password and records its own as
  `pending_password_hash` (the mail says the address was registered again);
- the activation token names the address and the password it installs, both by keyed fingerprint:
  the latest registration's (the pending one, else the account's). A link of an earlier registration
  dies as soon as a later one is made;
- activating installs that password, verifies, and ends every other session of the account.

Activation is a conditional UPDATE, so of two clicks at once exactly one logs the reader in.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import update

from meter.access import metering
from meter.accounts.models import Reader
from meter.accounts.rules import emails, events, mail_budget
from meter.accounts.rules.lookup import decoy_mail, find_reader, mail_context, page_url, safe_next
from meter.accounts.rules.sessions import create_session, keep_variant_seed, revoke_all
from meter.platform import mail, signals, tokens
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites import SiteInfo

EMAIL_PURPOSE = "activation-email"
PASSWORD_PURPOSE = "activation-password"


def installs(reader: Reader) -> str:
    """The password hash this account's activation link installs: the latest registration's."""
    return reader.pending_password_hash or reader.password_hash


def activation_token(reader: Reader, next_url: str | None) -> str:
    payload = {
        "r": reader.id,
        "s": reader.site_id,
        "e": tokens.fingerprint(EMAIL_PURPOSE, reader.email_key),
        "p": tokens.fingerprint(PASSWORD_PURPOSE, installs(reader)),
    }
    if next_url:
        payload["n"] = next_url
    return tokens.make(tokens.ACTIVATION, payload)


def queue_activation(site: SiteInfo, reader: Reader, next_url: str | None = None, locale: str | None = None) -> None:
    """Queue the activation mail (the caller commits); in `locale`, else the reader's language.

    A mail for a later registration (a pending password) says that the address was registered
    again, and that the link sets the password chosen last.
    """
    locale = locale or reader.locale
    link = page_url(site, "activate/" + activation_token(reader, next_url), locale)
    again = reader.pending_password_hash is not None
    context = mail_context(site, link=link, email=reader.email, again=again)
    mail.queue("activation", reader.email, locale, site.id, **context)
    reader.last_activation_sent_at = utcnow()


def queue_provider_link(
    site: SiteInfo, address: str, locale: str, link: str, provider: str, who: str, existing: bool
) -> None:
    """Queue the mail whose link proves `address` for a sign-in with `provider` (the caller commits).

    Not the activation mail: its reader may not have asked for it (anyone can type an address after
    signing in at a provider). An address with an account (`existing`) gets "social_link", which asks
    to connect the identity `who` (the provider's display name and id) to that account and says that
    ignoring it changes nothing; an address without one, "social_signup", which says it finishes a
    sign-in with `provider`. Both cost the same work, so timing does not tell the two apart.
    """
    kind = "social_link" if existing else "social_signup"
    context = mail_context(site, link=link, email=address, provider=provider, who=who)
    mail.queue(kind, address, locale, site.id, **context)


def resend(site: SiteInfo, email: str, next_url: str | None = None) -> None:
    """Send the activation mail again to an unverified reader; silently nothing otherwise.

    The address's mail budget is spent first, whoever it belongs to (raise mail_budget.Spent when
    there is none left): an unknown address answers and costs the same as a known one. `next_url`
    (kept only when on one of the site's origins) is where the new link returns the reader, as the
    first mail's did: a resend must not lose the way back to the article.
    """
    try:
        key = emails.lookup_key(emails.normalise(email))
    except emails.BadEmail:
        key = None  # no mail can go to it; the decoy below costs the same
    if key is not None:
        mail_budget.spend(site.id, key)
    reader = find_reader(site.id, email)
    if reader is not None and reader.verified_at is None:
        queue_activation(site, reader, safe_next(site, next_url))
        db.session.commit()
    else:
        decoy_mail(site, "activation")  # the same work for an unknown or verified address


@dataclass
class Activation:
    reader: Reader
    reader_token: str | None  # only for the click that activated: the link is not a login link
    next_url: str | None


def activate(site: SiteInfo, token: str, anonymous_id: str | None = None, *, device: str | None = None) -> Activation:
    """Raise tokens.TokenError("expired" | "invalid") for a link that cannot activate."""
    payload = tokens.load(tokens.ACTIVATION, token).payload
    reader = db.session.get(Reader, payload.get("r")) if isinstance(payload.get("r"), int) else None
    if reader is None or payload.get("s") != site.id or reader.site_id != site.id:
        raise tokens.TokenError("invalid")
    if not tokens.fingerprint_matches(EMAIL_PURPOSE, reader.email_key, payload.get("e")):
        raise tokens.TokenError("invalid")  # the address changed since the mail was sent
    next_url = safe_next(site, payload.get("n"))
    if reader.verified_at is not None:
        return _clicked_again(reader, payload, next_url)
    password_hash = installs(reader)
    if not tokens.fingerprint_matches(PASSWORD_PURPOSE, password_hash, payload.get("p")):
        raise tokens.TokenError("invalid")  # mailed for an earlier registration, or of an older shape
    changed = password_hash != reader.password_hash
    pending = Reader.pending_password_hash
    won = db.session.execute(
        update(Reader)
        .where(
            Reader.id == reader.id,
            Reader.verified_at.is_(None),
            Reader.password_hash == reader.password_hash,
            pending.is_(None) if reader.pending_password_hash is None else pending == reader.pending_password_hash,
        )
        .values(
            verified_at=utcnow(),
            password_hash=password_hash,
            pending_password_hash=None,
            auth_version=Reader.auth_version + (1 if changed else 0),
        )
    ).rowcount
    if won != 1:  # another click, or another registration, came first
        db.session.rollback()
        db.session.refresh(reader)
        if reader.verified_at is None:
            raise tokens.TokenError("invalid")
        return _clicked_again(reader, payload, next_url)
    revoke_all(reader)  # whoever logged in before the address was proven is logged out
    db.session.refresh(reader)
    events.activated(reader)
    db.session.commit()
    db.session.refresh(reader)
    keep_variant_seed(reader, anonymous_id)
    reader_token = create_session(reader, device=device)
    if anonymous_id:
        metering.merge_anonymous(site, anonymous_id, reader.id)
    metering.forget_reader_state(site.id, reader.id)
    signals.reader_activated.send(current_app._get_current_object(), reader=reader)
    return Activation(reader, reader_token, next_url)


def _clicked_again(reader: Reader, payload: dict, next_url: str | None) -> Activation:
    """The link that activated this account, opened again: "already active", no login. Any other
    link (of an earlier registration, or from before a password reset) is invalid."""
    if not tokens.fingerprint_matches(PASSWORD_PURPOSE, reader.password_hash, payload.get("p")):
        raise tokens.TokenError("invalid")
    return Activation(reader, None, next_url)


__all__ = ["activate", "find_reader", "queue_activation", "queue_provider_link", "resend"]
