"""Registration: never reveals whether an address is taken (same answer, same work, a mail either way)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.exc import IntegrityError

from meter.access import metering
from meter.accounts.models import Reader
from meter.accounts.rules import confirm, emails, events, mail_budget, passwords
from meter.accounts.rules.lookup import find_reader, mail_context, page_url, safe_next
from meter.platform import mail, signals
from meter.platform.db import db
from meter.sites import SiteInfo, experiments


class RegistrationError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def register(
    site: SiteInfo, email: str, password: str, locale: str | None, next_url: str | None, anonymous_id: str | None
) -> None:
    try:
        address = emails.normalise(email)
    except emails.BadEmail as exc:
        raise RegistrationError("email", str(exc)) from None
    if len(password) < passwords.MIN_LENGTH:
        raise RegistrationError("password", f"at least {passwords.MIN_LENGTH} characters")
    if len(password) > passwords.MAX_LENGTH:
        raise RegistrationError("password", f"at most {passwords.MAX_LENGTH} characters")
    locale = locale or site.locale
    next_url = safe_next(site, next_url)
    # Every registration mails the address (activation, or "already registered"): spend its budget
    # first, whether or not it has an account. Over budget, nothing changes (Spent: 429 above).
    mail_budget.spend(site.id, emails.lookup_key(address))
    password_hash = passwords.hash_password(password)  # always: the taken-address path costs the same

    existing = find_reader(site.id, address)
    if existing is not None:
        if existing.verified_at is None:
            # Not proven yet: this registration's password waits for its own link (confirm.py).
            existing.pending_password_hash = password_hash
            confirm.queue_activation(site, existing, next_url, locale if locale in ("id", "en") else site.locale)
        else:
            mail.queue(
                "already_registered",
                existing.email,
                existing.locale,
                site.id,
                **mail_context(
                    site,
                    login_url=page_url(site, "login", existing.locale),
                    reset_url=page_url(site, "forgot-password", existing.locale),
                ),
            )
        db.session.commit()
        return

    reader = Reader(
        site_id=site.id,
        email=address,
        email_key=emails.lookup_key(address),
        password_hash=password_hash,
        locale=locale if locale in ("id", "en") else site.locale,
        variant_seed=experiments.anonymous_seed(anonymous_id) if anonymous_id else None,
    )
    db.session.add(reader)
    db.session.flush()
    confirm.queue_activation(site, reader, next_url)
    events.registered(reader, "password")
    try:
        db.session.commit()
    except IntegrityError:
        # Two registrations of one address at once: the unique key lets one in; the other answers alike.
        db.session.rollback()
        return
    if anonymous_id:
        metering.merge_anonymous(site, anonymous_id, reader.id)
    signals.reader_registered.send(current_app._get_current_object(), reader=reader)
