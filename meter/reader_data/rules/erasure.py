"""Deleting a reader: the account and everything that names the person goes; the figures stay right.

What goes, in one transaction: the `readers` row, its identities, its sessions (every token of the
reader is then `revoked`: its session is gone), its unlocks in doubt, the outbox rows addressed to
it (any state: sent, waiting or dead), its past webhook deliveries, and the gifts it made with the devices that opened them (the
giver asked to be forgotten: their links die, for new devices and for those that opened them).
The reader's own openings of others' gifts stay as devices of those gifts, each under a random hash.
The unlock ledger's rows are kept but unlinked: each gets a subject of its own that names nobody
("x:" and random), so counts of unlocks per article and period stay right while no row leads back
to the person, nor to the reader's other rows. `daily_stats` and `activation_times` never named a
reader (meter.stats.rules) and are not touched, so `GET /v1/stats` is the same before and after.

In Redis: first the reader's unlocks still in the ledger journal are written into the ledger (and
unlinked with the rest); then the reader's cached state, the unlock fields of the reader's subject in every meter (this
period and the last, kept a grace week after it ends; a rolling window's key), and the AMP reader ids its
logins linked. These go before the transaction (Redis away: nothing is deleted, the caller says
"try again") and once more after it, in case an access check cached the reader again meanwhile.
The gifts' keys: before the transaction each is written revoked (a cold load racing with the
deletion, or a Redis that misses the delete after it, then refuses every device); after it they
are deleted. Should Redis come back with them anyway (restored from before), the first new device
meets SQL, which has no such gift, and the keys go then (meter.gifts.rules.hot).
Left to expire on their own, because they guard others: the mail budget of the address (a day at
most; deleting it would let anyone who can delete an account mail an address again at once) and
failed-login counters (minutes).

A reader without a password (social sign-in only) confirms by a link mailed to the address
(`request_deletion`, then `reader_for_deletion`): the mailbox is what proves the account there.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, timedelta

from sqlalchemy import delete, select, update

from meter.access import amp_readers, buckets, forget_reader_state, journal, place, reader_subject, unlock_place
from meter.access.models import Unlock, UnlockDoubt
from meter.accounts import events, mail_budget, mail_context, page_url
from meter.accounts.models import Reader, ReaderSession
from meter.gifts import store as gift_store
from meter.platform import clock, mail, redis_keys, tokens
from meter.platform.db import db
from meter.platform.models import OutboxMail
from meter.platform.redis_conn import RedisUnavailable, conn
from meter.reader_data.rules.export import addresses_of, mails_to
from meter.sites import SiteInfo
from meter.social.models import Identity
from meter.webhooks.models import WebhookDelivery

log = logging.getLogger(__name__)

UNLINKED_PREFIX = "x:"  # a ledger subject that names nobody (neither "r:" nor "a:")
EMAIL_PURPOSE = "deletion-email"


@dataclass(frozen=True)
class Erased:
    """What one deletion removed (counts), for the operator's command and the log."""

    identities: int
    sessions: int
    mails: int
    unlocks_unlinked: int
    doubts: int
    gifts: int
    amp_links: int
    webhooks: int = 0  # past webhook deliveries about the reader (delivered or dead) deleted


def erase(site: SiteInfo, reader: Reader, why: str) -> Erased:
    """Delete the reader as the module says; raise RedisUnavailable (nothing deleted) when Redis is away.

    `why` ("reader", "operator", "retention") goes to the log line.
    """
    reader_id = reader.id
    subject = reader_subject(reader_id)
    journal.drain_subject(site.id, subject)  # its journaled unlocks into the ledger, to be unlinked below
    amp_links = _forget_in_redis(site, reader_id)
    mail_ids = [row.id for row in mails_to(site.id, addresses_of(reader))]
    gift_store.end_links(site.id, gift_store.of_giver(reader_id))
    gift_store.unlink_openings(site.id, subject)
    nonces = gift_store.delete_of_giver(reader_id)
    identities = db.session.execute(delete(Identity).where(Identity.reader_id == reader_id)).rowcount
    sessions = db.session.execute(delete(ReaderSession).where(ReaderSession.reader_id == reader_id)).rowcount
    doubts = db.session.execute(
        delete(UnlockDoubt).where(UnlockDoubt.site_id == site.id, UnlockDoubt.subject == subject)
    ).rowcount
    mails = db.session.execute(delete(OutboxMail).where(OutboxMail.id.in_(mail_ids))).rowcount if mail_ids else 0
    unlinked = _unlink_ledger(site.id, subject)
    webhooks_gone = _forget_deliveries(reader_id)
    events.deleted(site.id, reader_id, reader.email, why)  # the receivers erase the person too
    db.session.execute(delete(Reader).where(Reader.id == reader_id))
    db.session.commit()
    db.session.expunge_all()  # the deleted reader must not linger in the identity map
    try:
        amp_links += _forget_in_redis(site, reader_id)
        gift_store.forget_links(site.id, nonces)
    except RedisUnavailable:
        log.warning("reader %s deleted; its Redis keys expire on their own (Redis went away)", reader_id)
    erased = Erased(identities, sessions, mails, unlinked, doubts, len(nonces), amp_links, webhooks_gone)
    log.info("reader %s of site %s deleted (%s): %s", reader_id, site.slug, why, erased)
    return erased


def _forget_deliveries(reader_id: int) -> int:
    """Delete the webhook deliveries about the reader already delivered or given up on (they hold its
    address); those still waiting go out, followed by reader.deleted, so the receiver ends up erasing."""
    done = WebhookDelivery.delivered_at.is_not(None) | WebhookDelivery.dead_at.is_not(None)
    return db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.reader_id == reader_id, done)).rowcount


def _unlink_ledger(site_id: int, subject: str) -> int:
    """Give each of the subject's ledger rows a random subject of its own; returns how many."""
    ids = db.session.scalars(select(Unlock.id).where(Unlock.site_id == site_id, Unlock.subject == subject)).all()
    for row_id in ids:
        db.session.execute(
            update(Unlock).where(Unlock.id == row_id).values(subject=UNLINKED_PREFIX + secrets.token_hex(16))
        )
    return len(ids)


def _forget_in_redis(site: SiteInfo, reader_id: int) -> int:
    """Drop the reader's keys and fields (module docstring); returns how many AMP links went."""
    subject = reader_subject(reader_id)
    now = clock.now()
    redis = conn()
    count = buckets()
    bucket, _ = place(subject, count)
    for meter in site.policy.all_meters:
        current = meter.period_at(now)
        for period in (current, meter.period_at(current.start - timedelta(seconds=1))):
            key, field = unlock_place(site.id, subject, period, meter.name)
            if period.rolling_seconds:
                redis.call(redis.client.delete, key)
            else:
                redis.call(redis.client.hdel, key, field)
        # a former policy's rolling window
        redis.call(redis.client.delete, redis_keys.rolling_unlocks(site.id, bucket, count, subject, meter.name))
    forget_reader_state(site.id, reader_id)
    return amp_readers.unlink_reader(site.id, reader_id)


# --- confirming by mail (readers without a password) --------------------------------------------------


def _created(reader: Reader) -> int:
    return int(reader.created_at.replace(tzinfo=UTC).timestamp())


def request_deletion(site: SiteInfo, reader: Reader) -> None:
    """Mail the link that confirms this reader's deletion; raise mail_budget.Spent past the address's budget.

    The link names the reader, its address (keyed fingerprint), its password version and when it was
    made, so it dies when any of them changes, and never fits another reader given the same id.
    """
    mail_budget.spend(site.id, reader.email_key)
    payload = {
        "r": reader.id,
        "s": site.id,
        "e": tokens.fingerprint(EMAIL_PURPOSE, reader.email_key),
        "v": reader.auth_version,
        "c": _created(reader),
    }
    link = page_url(site, "account/delete/" + tokens.make(tokens.ACCOUNT_DELETION, payload), reader.locale)
    context = mail_context(site, link=link, email=reader.email)
    mail.queue("account_deletion", reader.email, reader.locale, site.id, **context)
    db.session.commit()


def reader_for_deletion(site: SiteInfo, token: str) -> Reader:
    """The reader a deletion link names; raise tokens.TokenError ("expired" | "invalid")."""
    payload = tokens.load(tokens.ACCOUNT_DELETION, token).payload
    reader = db.session.get(Reader, payload["r"]) if isinstance(payload.get("r"), int) else None
    if reader is None or payload.get("s") != site.id or reader.site_id != site.id:
        raise tokens.TokenError("invalid")
    same = tokens.fingerprint_matches(EMAIL_PURPOSE, reader.email_key, payload.get("e"))
    if not same or payload.get("v") != reader.auth_version or payload.get("c") != _created(reader):
        raise tokens.TokenError("invalid")
    return reader
