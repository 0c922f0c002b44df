"""Readers as support sees them: found by address, shown whole, helped by a few actions.

A reader's page gathers what support is asked about: the state, how the reader signs in, the
sessions (device, network, last use), this period's unlocks, and every mail sent to the address with its delivery status. Mail
rows name an address, not a reader: mails sent to an address the reader has since changed are not
shown. Every action writes its audit row; the resend spends the address's mail budget exactly as the
reader's own resend does (a spent budget is refused with the wait, `mail_budget.Spent`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func

from meter.access import metering
from meter.accounts import confirm, devices, emails, mail_budget, passwords, sessions, subscriptions
from meter.accounts.models import Reader, ReaderSession
from meter.console.models import Staff
from meter.console.rules import audit
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.sites import SiteInfo
from meter.social.models import Identity

SEARCH_LIMIT = 50


def search(site: SiteInfo, query: str, staff: Staff) -> list[Reader]:
    """Readers of this site whose address starts with `query` (case and compatibility forms folded);
    the exact address first. Nothing for a query under 2 characters.

    Each search is an audit row with the query and how many were found (committed): a member who
    gathers addresses by searching leaves a trail, as one who opens readers' pages does."""
    found = _matching(site, query)
    for reader in found:  # kept as read: the row's commit must not expire them (a reload each on the page)
        db.session.expunge(reader)
    audit.record("reader.search", staff=staff, site=site, detail={"query": query, "results": len(found)})
    return found


def _matching(site: SiteInfo, query: str) -> list[Reader]:
    text = emails.lookup_key((query or "").strip())[:320]
    if len(text) < 2:
        return []
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = db.session.scalars(
        db.select(Reader)
        .where(Reader.site_id == site.id, Reader.email_key.like(escaped + "%", escape="\\"))
        .order_by(func.length(Reader.email_key), Reader.email_key)
        .limit(SEARCH_LIMIT)
    )
    return list(rows)


def get(site: SiteInfo, reader_id: int) -> Reader | None:
    """The reader, only when it belongs to this site (another site's reader is not found)."""
    reader = db.session.get(Reader, reader_id)
    return reader if reader is not None and reader.site_id == site.id else None


@dataclass(frozen=True)
class SessionRow:
    """A session as support sees it: the device and the network it logged in from (what the session
    kept: `devices.split`), when it started, was last used and ended."""

    device: str | None
    network: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def session_row(row: ReaderSession) -> SessionRow:
    device, network = devices.split(row.device)
    return SessionRow(device, network, row.created_at, row.last_used_at, row.revoked_at)


@dataclass(frozen=True)
class MailRow:
    id: int
    kind: str
    subject: str
    created_at: datetime
    status: str  # sent | queued | retrying | dead
    attempts: int
    sent_at: datetime | None
    last_error: str | None


def mail_status(row: OutboxMail) -> str:
    if row.sent_at is not None:
        return "sent"
    if row.dead_at is not None:
        return "dead"
    return "retrying" if row.attempts else "queued"


def overview(site: SiteInfo, reader: Reader) -> dict:
    subject = metering.Subject.reader(reader.id).key
    logins = (["password"] if passwords.usable(reader.password_hash) else []) + [
        identity.provider
        for identity in db.session.scalars(db.select(Identity).filter_by(reader_id=reader.id).order_by(Identity.id))
    ]
    reader_sessions = list(
        db.session.scalars(
            db.select(ReaderSession).filter_by(reader_id=reader.id).order_by(ReaderSession.created_at.desc()).limit(50)
        )
    )
    mails = [
        MailRow(m.id, m.kind, m.subject, m.created_at, mail_status(m), m.attempts, m.sent_at, m.last_error)
        for m in db.session.scalars(
            db.select(OutboxMail)
            .filter_by(site_id=site.id, to_addr=reader.email)
            .order_by(OutboxMail.id.desc())
            .limit(100)
        )
    ]
    return {
        "logins": logins,
        "sessions": [session_row(s) for s in reader_sessions],
        "live_sessions": sum(1 for s in reader_sessions if s.revoked_at is None),
        "meter": metering.summary(site, subject, reader.state),
        "meters": metering.summaries(site, subject, reader.state),  # the default meter first
        "mails": mails,
        "mail_wait": mail_budget.wait(site.id, reader.email_key),
    }


def resend_activation(site: SiteInfo, reader: Reader, staff: Staff) -> bool:
    """Queue the activation mail again (spending the address's budget: raise mail_budget.Spent when it
    is spent); False for a reader already verified, who needs none."""
    if reader.verified_at is not None:
        return False
    mail_budget.spend(site.id, reader.email_key)
    confirm.queue_activation(site, reader)
    audit.record("reader.resend_activation", staff=staff, site=site, detail={"reader": reader.id}, commit=False)
    db.session.commit()
    return True


def end_sessions(site: SiteInfo, reader: Reader, staff: Staff) -> None:
    sessions.revoke_all(reader)
    audit.record("reader.end_sessions", staff=staff, site=site, detail={"reader": reader.id}, commit=False)
    db.session.commit()
    metering.forget_reader_state(site.id, reader.id)


def set_subscription(site: SiteInfo, reader: Reader, until: datetime, staff: Staff) -> None:
    """Subscribed until `until` (aware)."""
    audit.record(
        "reader.subscribe",
        staff=staff,
        site=site,
        detail={"reader": reader.id, "until": until.isoformat()},
        commit=False,
    )
    subscriptions.set_until(reader, until)  # commits the audit row with the change


def end_subscription(site: SiteInfo, reader: Reader, staff: Staff) -> bool:
    audit.record("reader.unsubscribe", staff=staff, site=site, detail={"reader": reader.id}, commit=False)
    return subscriptions.end(reader)


def reset_meter(site: SiteInfo, reader: Reader, staff: Staff) -> int:
    """Clear this period's unlocks (raise RedisUnavailable when Redis still holds them: try again)."""
    audit.record("reader.reset_meter", staff=staff, site=site, detail={"reader": reader.id}, commit=False)
    return metering.reset(site, metering.Subject.reader(reader.id).key)  # commits the audit row with the ledger
