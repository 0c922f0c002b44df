"""What a sign-in with another account means for the site's readers (the contract's "Social login").

- A known identity (site, provider, subject) signs its reader in.
- A new identity whose provider says the address is verified is linked to the site's reader with that
  address, or makes a new reader; either way the reader is verified at once (no activation mail).
  If that reader was not verified yet, its password and sessions are dropped first: the owner of the
  address proved it, and whoever registered the address before keeps nothing (no pre-account take-over).
- A new identity without a verified address asks the reader for one (`request_link`). Whoever typed
  the address is not its owner yet, and may be an attacker typing a victim's: so the mail says
  exactly what its link does. An address with an account gets "connect this <Provider> account
  (its name and id) to your account?"; one without gets "finish signing in with <Provider>". The
  identity is linked only when the link's page is opened and its button pressed (`confirm_link`),
  by the same rules, since the press proves the address. The link names the account the address
  had when it was mailed, and dies when that changes (the account deleted or moved away). The page
  that answers the address form is the same either way: only the mail differs.
- A signed-in reader connects a provider from the account page (`connect`): the started sign-in
  carries the reader and the session, and links only while that session lives.
- Every identity added to an existing account is mailed to its address as a notice, with a link to
  the account page, where it is listed with a way to remove it: an owner who did not do it learns
  of it. A new reader made by the identity gets none (its first way in).

Signing in is `sessions.create_session`, exactly as a password login does; the web layer sets the
cookie and links an AMP reader id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from meter.access import metering
from meter.accounts import (
    confirm,
    create_session,
    emails,
    events,
    find_reader,
    keep_variant_seed,
    live_sessions,
    page_url,
    passwords,
    revoke_all,
    safe_next,
)
from meter.accounts import profile as account_profile
from meter.accounts.models import Reader
from meter.platform import signals, tokens
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites import SiteInfo
from meter.social.models import Identity

SUBJECT_MAX = 255
SHOWN_MAX = 64  # characters of a provider's display name or subject shown in a mail or on a page
HOLDER_PURPOSE = "social-link-holder"


def shown(value: object, limit: int = SHOWN_MAX) -> str | None:
    """A provider's text (a display name, a subject) as a mail or a page may show it: printable
    characters only (no line breaks, no bidi overrides that reorder what the owner reads), spaces
    collapsed, at most `limit` characters. The templates escape it; None when nothing is left."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"\s+", " ", "".join(ch if ch.isprintable() else " " for ch in value[: limit * 4])).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    return text or None


@dataclass(frozen=True)
class Profile:
    """Who the provider says signed in: its subject, the address it gave (verified or not), and the
    display name it gave (shown to the address's owner when the identity asks to join an account)."""

    subject: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None

    def who(self) -> str:
        """The identity as the owner reads it: "name (id)", or the id alone."""
        subject, name = shown(self.subject) or "", shown(self.name)
        return f"{name} ({subject})" if name else subject

    def verified_address(self) -> str | None:
        """The provider's address, normalised, when the provider says it is verified; else None."""
        if not self.email or not self.email_verified:
            return None
        try:
            return emails.normalise(self.email)
        except emails.BadEmail:
            return None


@dataclass(frozen=True)
class SignedIn:
    reader: Reader
    reader_token: str
    created: bool  # a new reader was made
    next_url: str | None = None


@dataclass(frozen=True)
class NeedsAddress:
    """The provider gave no verified address: ask the reader for one (`request_link`)."""

    profile: Profile


def valid_subject(subject: object) -> bool:
    return isinstance(subject, str) and 0 < len(subject) <= SUBJECT_MAX and subject.isprintable()


def logins(reader: Reader) -> list[str]:
    """How this reader can sign in: "password" (when it has one), then each linked provider's name."""
    names = db.session.scalars(
        db.select(Identity.provider).filter_by(reader_id=reader.id).distinct().order_by(Identity.provider)
    ).all()
    return (["password"] if passwords.usable(reader.password_hash) else []) + list(names)


class LastWayIn(Exception):
    """Removing this sign-in would leave the reader no way to sign in (no password, no other provider)."""


def remove_identities(reader: Reader, provider: str) -> int:
    """Unlink the reader's identities at `provider` (the account page); returns how many went.

    Allowed only while another way to sign in remains: a password, or an identity at another
    provider. The address alone does not count: it gets a reader in only through a password reset,
    and a reader who wants that can set a password first. Raise LastWayIn otherwise.
    """
    linked = db.session.scalars(db.select(Identity).filter_by(reader_id=reader.id)).all()
    leaving = [identity for identity in linked if identity.provider == provider]
    if not leaving:
        return 0
    if not passwords.usable(reader.password_hash) and len(leaving) == len(linked):
        raise LastWayIn()
    for identity in leaving:
        db.session.delete(identity)
    db.session.commit()
    return len(leaving)


def sign_in(
    site: SiteInfo,
    provider: str,
    profile: Profile,
    locale: str,
    anonymous_id: str | None = None,
    *,
    device: str | None = None,
) -> SignedIn | NeedsAddress:
    """Sign the identity's reader in, linking or making one by the rules above."""
    if not valid_subject(profile.subject):
        raise ValueError("the provider gave no usable subject")
    for attempt in range(2):  # a second sign-in of the same new identity at the same moment: the loser retries
        identity = _identity(site.id, provider, profile.subject)
        if identity is not None:
            reader = db.session.get(Reader, identity.reader_id)
            identity.last_used_at = utcnow()
            if profile.email:
                identity.email, identity.email_verified = profile.email[:320], profile.email_verified
            db.session.commit()
            return _signed_in(site, provider, reader, anonymous_id, created=False, device=device)
        address = profile.verified_address()
        if address is None:
            return NeedsAddress(profile)
        try:
            reader, created = _link(site, provider, profile, address, locale, anonymous_id)
        except IntegrityError:
            db.session.rollback()
            if attempt:
                raise
            continue
        return _signed_in(site, provider, reader, anonymous_id, created=created, device=device)
    raise AssertionError("unreachable")


def request_link(
    site: SiteInfo, provider: str, profile: Profile, address: str, locale: str, next_url: str | None
) -> None:
    """Mail `address` a link that links this identity once its page's button is pressed (the caller
    checked the address's syntax and its mail budget; this commits). An address with an account gets
    the mail that asks to connect the identity to it; one without, the mail that finishes signing in."""
    address = emails.normalise(address)
    holder = find_reader(site.id, address)
    payload = {
        "s": site.id,
        "p": provider,
        "u": profile.subject,
        "a": address,
        "e": profile.email[:320] if profile.email else None,
        "l": locale,
        "h": tokens.fingerprint(HOLDER_PURPOSE, _holder_of(holder)),
    }
    name = shown(profile.name)
    if name:
        payload["m"] = name
    next_url = safe_next(site, next_url)
    if next_url:
        payload["n"] = next_url
    token = tokens.make(tokens.SOCIAL_LINK, payload)
    link = page_url(site, f"login/{provider}/link/{token}", locale)
    confirm.queue_provider_link(site, address, locale, link, label(site, provider), profile.who(), holder is not None)
    db.session.commit()


@dataclass(frozen=True)
class MailedLink:
    """What a mailed link asks, for its page: which identity, to which address, joining an account or not."""

    address: str
    who: str
    existing: bool


def read_link(site: SiteInfo, provider: str, token: str) -> MailedLink:
    """The link of `request_link`, read for its page (nothing changes); raise tokens.TokenError
    ("expired" | "invalid") for one that cannot link."""
    payload = _link_payload(site, provider, token)
    profile = Profile(payload["u"], None, False, payload.get("m") if isinstance(payload.get("m"), str) else None)
    return MailedLink(payload["a"], profile.who(), find_reader(site.id, payload["a"]) is not None)


def confirm_link(
    site: SiteInfo, provider: str, token: str, anonymous_id: str | None = None, *, device: str | None = None
) -> SignedIn:
    """The button of `request_link`'s page was pressed: link and sign in; raise tokens.TokenError
    ("expired" | "invalid") for a link that cannot, or was used already (the identity is linked)."""
    payload = _link_payload(site, provider, token)
    subject, address, locale = payload["u"], payload["a"], payload["l"]
    given = payload.get("e") if isinstance(payload.get("e"), str) else None
    name = payload.get("m") if isinstance(payload.get("m"), str) else None
    verified = given is not None and emails.lookup_key(given) == emails.lookup_key(address)
    profile = Profile(subject, given, verified, name)
    try:
        reader, created = _link(site, provider, profile, address, locale, anonymous_id)
    except IntegrityError:
        db.session.rollback()
        raise tokens.TokenError("invalid") from None  # two clicks at once: the other one signed in
    signed = _signed_in(site, provider, reader, anonymous_id, created=created, device=device)
    return SignedIn(signed.reader, signed.reader_token, signed.created, safe_next(site, payload.get("n")))


def _link_payload(site: SiteInfo, provider: str, token: str) -> dict:
    payload = tokens.load(tokens.SOCIAL_LINK, token).payload
    if payload.get("s") != site.id or payload.get("p") != provider or not valid_subject(payload.get("u")):
        raise tokens.TokenError("invalid")
    address = payload.get("a")
    if not isinstance(address, str) or payload.get("l") not in ("id", "en"):
        raise tokens.TokenError("invalid")
    if not tokens.fingerprint_matches(HOLDER_PURPOSE, _holder(site, address), payload.get("h")):
        raise tokens.TokenError("invalid")  # the address's account went (deleted, moved) or came since the mail
    if _identity(site.id, provider, payload["u"]) is not None:
        raise tokens.TokenError("invalid")  # the link was used: it is not a login link
    return payload


class ConnectRefused(Exception):
    """`connect` cannot link: kind "signed_out" (the session that asked has ended) or "elsewhere" (the
    identity signs in to another account already; it is not moved)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def connect(site: SiteInfo, provider: str, profile: Profile, reader_id: object, session_id: object) -> bool:
    """The signed-in reader asked, on the account page, to connect `provider`, and came back with this
    identity: link it to them (commits; the notice goes to their address). False when it was theirs
    already; raise ConnectRefused otherwise. The session that asked must still live: a sign-in started
    before a "log out" or "sign out everywhere" links nothing."""
    if not valid_subject(profile.subject):
        raise ValueError("the provider gave no usable subject")
    reader = db.session.get(Reader, reader_id) if isinstance(reader_id, int) else None
    if reader is None or reader.site_id != site.id or not any(s.id == session_id for s in live_sessions(reader)):
        raise ConnectRefused("signed_out")
    identity = _identity(site.id, provider, profile.subject)
    if identity is not None:
        if identity.reader_id != reader.id:
            raise ConnectRefused("elsewhere")
        return False
    db.session.add(_new_identity(site, provider, profile, reader))
    _notify_added(site, provider, profile, reader)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ConnectRefused("elsewhere") from None  # linked elsewhere at the same moment
    metering.forget_reader_state(site.id, reader.id)
    return True


def label(site: SiteInfo, provider: str) -> str:
    """The provider's name as readers read it ("Google"), for mails."""
    return next((text for name, _kind, text in site.login_providers if name == provider), provider)


# --- the rules -------------------------------------------------------------------------------------


def _holder(site: SiteInfo, address: str) -> str:
    """Which account an address names now ("none", or the reader's id and when it was made), so that a
    link mailed while one account held the address dies with it: a reader who deleted their account
    does not get it back, linked to the provider, from a mail they were sent before."""
    return _holder_of(find_reader(site.id, address))


def _holder_of(reader: Reader | None) -> str:
    return "none" if reader is None else f"{reader.id}:{reader.created_at.isoformat()}"


def _identity(site_id: int, provider: str, subject: str) -> Identity | None:
    return db.session.scalar(db.select(Identity).filter_by(site_id=site_id, provider=provider, subject=subject))


def _link(
    site: SiteInfo, provider: str, profile: Profile, address: str, locale: str, anonymous_id: str | None
) -> tuple[Reader, bool]:
    """Link the identity to the site's reader with `address` (proven to be the reader's), or a new one
    (in the experiments' variant of the anonymous id that signed up)."""
    reader = find_reader(site.id, address)
    created = reader is None
    if reader is None:
        reader = Reader(
            site_id=site.id,
            email=address,
            email_key=emails.lookup_key(address),
            password_hash=passwords.UNUSABLE,
            locale=locale if locale in ("id", "en") else site.locale,
            verified_at=utcnow(),
        )
        keep_variant_seed(reader, anonymous_id)
        db.session.add(reader)
        db.session.flush()
        events.registered(reader, provider)
        events.activated(reader)
    elif reader.verified_at is None:
        _claim(reader)
        events.activated(reader)
    db.session.add(_new_identity(site, provider, profile, reader))
    if not created:
        _notify_added(site, provider, profile, reader)
    db.session.commit()
    metering.forget_reader_state(site.id, reader.id)
    if created:
        signals.reader_registered.send(current_app._get_current_object(), reader=reader)
    return reader, created


def _new_identity(site: SiteInfo, provider: str, profile: Profile, reader: Reader) -> Identity:
    return Identity(
        site_id=site.id,
        reader_id=reader.id,
        provider=provider,
        subject=profile.subject,
        email=profile.email[:320] if profile.email else None,
        email_verified=profile.email_verified,
    )


def _notify_added(site: SiteInfo, provider: str, profile: Profile, reader: Reader) -> None:
    """The notice that `provider` now signs in to this account, to its address (the caller commits)."""
    account_url = page_url(site, "account", reader.locale)
    context = {"provider": label(site, provider), "who": profile.who(), "account_url": account_url}
    account_profile.notify(site, "sign_in_added", reader.email, reader.email_key, reader.locale, **context)


def _claim(reader: Reader) -> None:
    """An unverified account whose address the signing-in reader proved: drop its password and
    sessions (and with them reset links: auth_version), then it is verified."""
    db.session.execute(
        update(Reader)
        .where(Reader.id == reader.id)
        .values(
            password_hash=passwords.UNUSABLE,
            auth_version=Reader.auth_version + 1,
            verified_at=utcnow(),
        )
    )
    revoke_all(reader)
    db.session.flush()
    db.session.refresh(reader)


def _signed_in(
    site: SiteInfo, provider: str, reader: Reader, anonymous_id: str | None, created: bool, device: str | None
) -> SignedIn:
    keep_variant_seed(reader, anonymous_id)
    token = create_session(reader, device=device)
    if anonymous_id:
        metering.merge_anonymous(site, anonymous_id, reader.id)
    signals.reader_signed_in.send(current_app._get_current_object(), reader=reader, method=provider, created=created)
    return SignedIn(reader, token, created)
