"""Logins: a reader token names a session row; logout and password changes revoke sessions.

Checking a token's signature needs no I/O; whether its session is still alive is answered by the
cached reader state in Redis on the access check, and by SQL elsewhere. A session keeps a short
device label (`devices`) and when it was last used where SQL sees it (`live_reader`, at most once
every TOUCH_EVERY): the access check, which answers from Redis, writes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import update

from meter.access import metering
from meter.accounts.models import Reader, ReaderSession
from meter.accounts.rules import passwords
from meter.accounts.rules.lookup import find_reader
from meter.platform import signals, tokens
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites import SiteInfo, experiments


@dataclass(frozen=True)
class TokenCheck:
    status: str  # "valid" | "expired" | "invalid" | "none" (revocation is found later)
    reader_id: int | None = None
    session_id: str = ""
    variant_seed: str | None = None  # the reader's seed of the experiments' variants, from the token


TOUCH_EVERY = timedelta(minutes=5)  # a session's last use is written at most this often


def create_session(reader: Reader, *, device: str | None) -> str:
    """A new session of the reader's, its token; `device` is the label and network the session shows
    (`devices.stored`, made by the web layer from the request that logs in; None where there is none)."""
    sid = secrets.token_hex(16)
    open_session(reader.id, sid, device=device)
    payload = {"r": reader.id, "s": reader.site_id, "sid": sid}
    if reader.variant_seed:
        payload["v"] = reader.variant_seed  # read by the access check, which reads no SQL
    return tokens.make(tokens.READER, payload)


def keep_variant_seed(reader: Reader, anonymous_id: str | None) -> None:
    """The reader keeps the variant their anonymous id had, from the first registration, activation or
    sign-in that names one (meter.sites.rules.experiments); set before the session's token is made."""
    if anonymous_id and not reader.variant_seed:
        reader.variant_seed = experiments.anonymous_seed(anonymous_id)


def open_session(reader_id: int, sid: str, *, device: str | None) -> None:
    """The session's row, with its device; a token names it, or an AMP reader id's link does."""
    now = utcnow()
    db.session.add(ReaderSession(id=sid, reader_id=reader_id, device=device, created_at=now, last_used_at=now))
    db.session.commit()


def check_token(site: SiteInfo, token: str | None) -> TokenCheck:
    if token is None:
        return TokenCheck("none")
    try:
        payload = tokens.load(tokens.READER, token).payload
    except tokens.TokenError as exc:
        return TokenCheck(exc.kind)
    reader_id, sid = payload.get("r"), payload.get("sid")
    if payload.get("s") != site.id or not isinstance(reader_id, int) or not isinstance(sid, str):
        return TokenCheck("invalid")  # signed by us, but for another site or of another shape
    seed = payload.get("v")
    return TokenCheck("valid", reader_id, sid, seed if isinstance(seed, str) else None)


def live_reader(site: SiteInfo, token: str | None) -> tuple[str, Reader | None]:
    """(status, reader) with revocation checked in SQL; status adds "revoked"."""
    check = check_token(site, token)
    if check.status != "valid":
        return check.status, None
    session = db.session.get(ReaderSession, check.session_id)
    reader = db.session.get(Reader, check.reader_id)
    if session is None or session.revoked_at is not None or session.reader_id != check.reader_id or reader is None:
        return "revoked", None
    _touch(session)
    return "valid", reader


def _touch(session: ReaderSession) -> None:
    now = utcnow()
    if session.last_used_at is None or now - session.last_used_at > TOUCH_EVERY:
        session.last_used_at = now
        db.session.commit()


def live_sessions(reader: Reader) -> list[ReaderSession]:
    """The sessions whose tokens still work (not revoked, not older than a token lives), last used first."""
    since = utcnow() - timedelta(seconds=current_app.config["READER_TOKEN_MAX_AGE"])
    query = (
        db.select(ReaderSession)
        .where(
            ReaderSession.reader_id == reader.id,
            ReaderSession.revoked_at.is_(None),
            ReaderSession.created_at > since,
        )
        .order_by(ReaderSession.last_used_at.desc().nulls_last(), ReaderSession.created_at.desc())
    )
    return list(db.session.scalars(query))


def end_other_sessions(reader: Reader, keep: str) -> int:
    """Revoke every session of the reader but `keep` (the caller's own); returns how many ended."""
    ended = db.session.execute(
        update(ReaderSession)
        .where(ReaderSession.reader_id == reader.id, ReaderSession.id != keep, ReaderSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
    db.session.commit()
    metering.forget_reader_state(reader.site_id, reader.id)
    return ended


def end_sessions(site_id: int, reader_id: int, sids: list[str]) -> int:
    """Revoke these sessions of the reader (one ended from the account page, AMP links over the cap or
    replaced); returns how many ended. A session of another reader is left alone."""
    if not sids:
        return 0
    ended = db.session.execute(
        update(ReaderSession)
        .where(ReaderSession.reader_id == reader_id, ReaderSession.id.in_(sids), ReaderSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
    db.session.commit()
    if ended:
        metering.forget_reader_state(site_id, reader_id)
    return ended


def login(
    site: SiteInfo, email: str, password: str, anonymous_id: str | None = None, *, device: str | None = None
) -> tuple[str, Reader] | None:
    reader = find_reader(site.id, email)
    if not passwords.verify_password(reader.password_hash if reader else None, password) or reader is None:
        return None
    keep_variant_seed(reader, anonymous_id)
    token = create_session(reader, device=device)
    if anonymous_id:
        metering.merge_anonymous(site, anonymous_id, reader.id)
    signals.reader_signed_in.send(current_app._get_current_object(), reader=reader, method="password", created=False)
    return token, reader


def logout(site: SiteInfo, token: str) -> bool:
    """Revoke the token's session; False when the token is not one of ours (expired ones still log out)."""
    try:
        payload = tokens.load(tokens.READER, token, max_age=10 * 365 * 86400).payload
    except tokens.TokenError:
        return False
    if payload.get("s") != site.id or not isinstance(payload.get("sid"), str):
        return False
    db.session.execute(
        update(ReaderSession)
        .where(ReaderSession.id == payload["sid"], ReaderSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    db.session.commit()
    if isinstance(payload.get("r"), int):
        metering.forget_reader_state(site.id, payload["r"])
    return True


def revoke_all(reader: Reader) -> None:
    db.session.execute(
        update(ReaderSession)
        .where(ReaderSession.reader_id == reader.id, ReaderSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
