"""Everything meter holds about one reader, as JSON: the reader's copy of their data (UU PDP, GDPR).

What a reader is, in meter's stores (docs/security.md lists them with how long each is kept):
the `readers` row, their sign-in identities, their sessions, the unlock ledger's rows of their
subject (and unlocks in doubt), the gifts they made (with how many devices opened each), the mails
in the outbox addressed to them, and in Redis the AMP reader ids their logins linked.

Mail bodies are exported with their links masked: a link in a mail may still work (a password
reset for an hour), and a copy of one in an export would turn a stolen session into a stolen
account. What the mail said, to whom and when, is all there. A gift is exported with its article's
URL, the link's secret (`gift=`) taken out, for the same reason.

The mails "addressed to them" are found by address (the outbox has no reader column): the current
address and a pending new one, compared by lookup key (`emails.lookup_key`), so `Pembaca@` and
`pembaca@` are the same mailbox, as they are for login.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from sqlalchemy import select

from meter.access import amp_readers, reader_subject
from meter.access.models import Unlock, UnlockDoubt
from meter.accounts import devices as session_devices
from meter.accounts import emails, passwords
from meter.accounts.models import Reader, ReaderSession
from meter.gifts import links as gift_links
from meter.gifts import store as gift_store
from meter.platform import clock
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.platform.redis_conn import RedisUnavailable
from meter.sites import SiteInfo
from meter.social.models import Identity

log = logging.getLogger(__name__)

FORMAT = "meter.export.v1"
LINK_RE = re.compile(r"https?://\S+")
MASKED_LINK = "[link]"


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO-8601 in UTC, or None."""
    return value.replace(tzinfo=UTC).isoformat() if value is not None else None


def addresses_of(reader: Reader) -> list[str]:
    """The addresses mail to this reader went to: the account's, and the one it is moving to."""
    return [address for address in (reader.email, reader.pending_email) if address]


def mails_to(site_id: int, addresses: list[str]) -> list[OutboxMail]:
    """The outbox rows of the site addressed to any of `addresses` (same mailbox by lookup key).

    The local part of a stored address is ASCII (SMTPUTF8 is refused), so a case-insensitive match
    on it finds every candidate in SQL; the domain (which may be internationalised) is compared here.
    """
    keys = {emails.lookup_key(address) for address in addresses}
    found: dict[int, OutboxMail] = {}
    for address in addresses:
        local = address.rsplit("@", 1)[0]
        pattern = local.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "@%"
        query = select(OutboxMail).where(OutboxMail.site_id == site_id, OutboxMail.to_addr.ilike(pattern, escape="\\"))
        for row in db.session.scalars(query):
            if emails.lookup_key(row.to_addr) in keys:
                found[row.id] = row
    return [found[key] for key in sorted(found)]


def masked(text: str) -> str:
    return LINK_RE.sub(MASKED_LINK, text)


def export(site: SiteInfo, reader: Reader) -> dict:
    """The reader's data, complete (tests/functional/test_erasure.py compares it with the database row by row)."""
    subject = reader_subject(reader.id)
    identities = db.session.scalars(select(Identity).filter_by(reader_id=reader.id).order_by(Identity.id))
    sessions = db.session.scalars(
        select(ReaderSession).filter_by(reader_id=reader.id).order_by(ReaderSession.created_at, ReaderSession.id)
    )
    unlocks = db.session.scalars(
        select(Unlock).filter_by(site_id=site.id, subject=subject).order_by(Unlock.unlocked_at, Unlock.id)
    )
    doubts = db.session.scalars(
        select(UnlockDoubt).filter_by(site_id=site.id, subject=subject).order_by(UnlockDoubt.id)
    )
    gifts = gift_store.of_giver(reader.id)
    devices = gift_store.devices_of([gift.id for gift in gifts])
    try:
        amp_links = [{"rid": rid, "session_id": sid} for rid, sid in amp_readers.links_of(site.id, reader.id)]
    except RedisUnavailable:
        log.warning("export of reader %s without its AMP links: Redis unreachable", reader.id)
        amp_links = None
    return {
        "format": FORMAT,
        "exported_at": clock.now().astimezone(UTC).isoformat(),
        "site": {"slug": site.slug, "name": site.name},
        "account": {
            "reader_id": reader.id,
            "email": reader.email,
            "pending_email": reader.pending_email,
            "state": reader.state,
            "locale": reader.locale,
            "has_password": passwords.usable(reader.password_hash),
            "created_at": iso(reader.created_at),
            "verified_at": iso(reader.verified_at),
            "last_activation_sent_at": iso(reader.last_activation_sent_at),
            "variant_seed": reader.variant_seed,
        },
        "subscription": {"until": iso(reader.subscription_until), "active": reader.is_subscriber()},
        "identities": [
            {
                "provider": row.provider,
                "subject": row.subject,
                "email": row.email,
                "email_verified": row.email_verified,
                "created_at": iso(row.created_at),
                "last_used_at": iso(row.last_used_at),
            }
            for row in identities
        ],
        "sessions": [
            {
                "id": row.id,
                "device": session_devices.split(row.device)[0],
                "network": session_devices.split(row.device)[1],
                "created_at": iso(row.created_at),
                "last_used_at": iso(row.last_used_at),
                "revoked_at": iso(row.revoked_at),
            }
            for row in sessions
        ],
        "unlocks": [
            {
                "meter": row.meter,
                "period": row.period,
                "article_id": row.article_id,
                "unlocked_at": iso(row.unlocked_at),
            }
            for row in unlocks
        ],
        "unlocks_in_doubt": [
            {"meter": row.meter, "article_id": row.article_id, "checked_at": iso(row.checked_at)} for row in doubts
        ],
        "amp_links": amp_links,
        "gifts": [
            {
                "article_id": gift.article_id,
                "article_class": gift.article_class,
                "url": gift_links.without_gift(gift.url),
                "created_at": iso(gift.created_at),
                "expires_at": iso(gift.expires_at),
                "revoked_at": iso(gift.revoked_at),
                "device_limit": gift.devices,
                "devices": devices.get(gift.id, 0),
            }
            for gift in gifts
        ],
        "mails": [
            {
                "id": row.id,
                "kind": row.kind,
                "to": row.to_addr,
                "subject": row.subject,
                "body_text": masked(row.body_text),
                "created_at": iso(row.created_at),
                "sent_at": iso(row.sent_at),
                "attempts": row.attempts,
                "dead_at": iso(row.dead_at),
                "last_error": row.last_error,
            }
            for row in mails_to(site.id, addresses_of(reader))
        ],
    }
