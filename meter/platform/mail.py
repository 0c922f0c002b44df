"""Mail through a durable outbox.

A request renders its mail and writes it to the `outbox` table in the same transaction as the change
that caused it; `flask mail worker` delivers it. An SMTP outage therefore delays mail and loses none.
Each row is claimed with a lease before sending, so two workers never send the same row at once.
The site's sender and reply address come with the mail (this layer knows no sites) and are stored
on the row with its Message-ID; `mail_message.SiteMessage` builds what goes over the wire.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections.abc import Iterable
from datetime import timedelta
from email.utils import parseaddr

from flask import Flask, current_app, render_template
from flask_babel import force_locale
from flask_mail import Connection, Mail
from sqlalchemy import func, select, update

from meter.platform import leases, metrics, signals, template_helpers
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.platform.mail_message import SiteMessage, message_id
from meter.platform.models import OutboxMail
from meter.platform.settings import ConfigError

log = logging.getLogger(__name__)

LOCALES = ("id", "en")
LEASE = timedelta(minutes=5)


class TimedConnection(Connection):
    """Flask-Mail's connection, opened with MAIL_TIMEOUT: a hanging SMTP server must not stall the worker
    (Flask-Mail itself opens smtplib connections without a timeout)."""

    def __enter__(self) -> TimedConnection:
        m = self.mail
        timeout = current_app.config["MAIL_TIMEOUT"]
        smtp = smtplib.SMTP_SSL if m.use_ssl else smtplib.SMTP
        host = smtp(m.server, m.port, timeout=timeout)
        try:
            host.set_debuglevel(int(m.debug))
            if m.use_tls:
                host.starttls()
            if m.username and m.password:
                host.login(m.username, m.password)
        except BaseException:
            host.close()
            raise
        self.host, self.num_emails = host, 0
        return self


class Mailer(Mail):
    """Flask-Mail, connecting through `TimedConnection`."""

    def connect(self) -> TimedConnection:
        return TimedConnection(current_app.extensions["mail"])


mailer = Mailer()


def _clean_header(value: str) -> str:
    """No CR/LF (or other control characters) ever reaches a mail header."""
    return "".join(ch for ch in value if ch >= " " and ch != "\x7f")


def render(
    kind: str,
    to: str,
    locale: str,
    site_id: int | None,
    sender: str | None = None,
    reply_to: str | None = None,
    **context,
) -> OutboxMail:
    """Render `mail/<kind>.{subject.txt,txt,html}` in `locale` (Babel catalogs) into an outbox row not
    added anywhere, from `sender` (else MAIL_DEFAULT_SENDER), replies to `reply_to` (else the sender).
    The templates get `subject` and `reply_to` besides `context`.

    Also used alone for a mail that will not be sent, so that an unknown address costs the same work
    as a known one (no enumeration by timing).
    """
    if any(ch < " " or ch == "\x7f" for ch in to):
        raise ValueError("control characters in a recipient address")  # never mangle an address into another
    sender = _clean_header(sender or current_app.config["MAIL_DEFAULT_SENDER"])
    reply_to = _clean_header(reply_to) if reply_to else None
    locale = locale if locale in LOCALES else "id"
    with force_locale(locale):  # the reader's stored language, whatever this request speaks
        subject = _clean_header(render_template(f"mail/{kind}.subject.txt", lang=locale, **context).strip())
        context.update(lang=locale, subject=subject, reply_to=reply_to)
        body_text = render_template(f"mail/{kind}.txt", **context)
        body_html = render_template(f"mail/{kind}.html", **context)
    return OutboxMail(
        site_id=site_id,
        kind=kind,
        to_addr=to,
        subject=subject,
        body_text=body_text.replace("\x00", ""),
        body_html=body_html.replace("\x00", ""),
        sender=sender,
        reply_to=reply_to,
        message_id=message_id(sender),
    )


def queue(
    kind: str,
    to: str,
    locale: str,
    site_id: int | None,
    sender: str | None = None,
    reply_to: str | None = None,
    **context,
) -> OutboxMail:
    """Render the mail (see `render`) and add it to the outbox (the caller commits)."""
    row = render(kind, to, locale, site_id, sender, reply_to, **context)
    db.session.add(row)
    signals.mail_queued.send(current_app._get_current_object(), mail=row)
    return row


def _backoff(attempts: int) -> timedelta:
    c = current_app.config
    return timedelta(seconds=min(c["MAIL_RETRY_BASE"] * (2 ** max(attempts - 1, 0)), c["MAIL_RETRY_MAX"]))


def _claim(row_id: int) -> bool:
    return leases.claim(OutboxMail, row_id, OutboxMail.sent_at, LEASE)


def deliver_due(limit: int = 100) -> tuple[int, int]:
    """Send what is due, one SMTP connection per batch; returns (sent, failed)."""
    now = utcnow()
    ids = db.session.scalars(
        select(OutboxMail.id)
        .where(OutboxMail.sent_at.is_(None), OutboxMail.dead_at.is_(None), OutboxMail.next_attempt_at <= now)
        .order_by(OutboxMail.id)
        .limit(limit)
    ).all()
    sent = failed = 0
    connection = None
    try:
        for row_id in ids:
            if not _claim(row_id):
                continue
            row = db.session.get(OutboxMail, row_id)
            if connection is None:
                try:
                    connection = mailer.connect().__enter__()
                except Exception as exc:  # noqa: BLE001 - the server is down or hangs: one timeout per pass
                    failed += 1
                    _failed(row, exc)
                    break  # the rest stays due, untouched, for the next pass
            try:
                connection.send(_message(row))
            except Exception as exc:  # noqa: BLE001 - any failure of one mail is recorded; the worker goes on
                failed += 1
                connection = _close(connection)
                _failed(row, exc)
                continue
            row.sent_at = utcnow()
            row.attempts += 1
            row.locked_until = None
            db.session.commit()
            sent += 1
            metrics.mail_outcome("sent")
            log.info("mail %s sent (%s, attempt %s)", row.id, row.kind, row.attempts, extra={"outbox_id": row.id})
    finally:
        _close(connection)
    return sent, failed


def _message(row: OutboxMail) -> SiteMessage:
    return SiteMessage(
        subject=row.subject,
        recipients=[row.to_addr],
        body=row.body_text,
        html=row.body_html,
        sender=row.sender or current_app.config["MAIL_DEFAULT_SENDER"],
        reply_to=row.reply_to,
        msg_id=row.message_id,
    )


def _close(connection):
    if connection is not None:
        with contextlib.suppress(Exception):  # a broken connection is thrown away either way
            connection.__exit__(None, None, None)
    return None


def _failed(row: OutboxMail, exc: BaseException) -> None:
    row.attempts += 1
    row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    row.locked_until = None
    if row.attempts >= current_app.config["MAIL_MAX_ATTEMPTS"]:
        row.dead_at = utcnow()
        metrics.mail_outcome("dead")
        log.error(
            "mail %s is a dead letter after %s attempts: %s",
            row.id,
            row.attempts,
            row.last_error,
            extra={"outbox_id": row.id},
        )
    else:
        row.next_attempt_at = utcnow() + _backoff(row.attempts)
        metrics.mail_outcome("failed")
        log.warning(
            "mail %s failed (attempt %s), retry at %s: %s",
            row.id,
            row.attempts,
            row.next_attempt_at,
            row.last_error,
            extra={"outbox_id": row.id},
        )
    db.session.commit()


def outbox_counts(site_id: int | None = None) -> dict:
    """The outbox's mails (one site's, or all): queued (never tried), failing (tried, waiting for
    the next attempt), dead, sent, and the oldest waiting mail's age in seconds (None when none waits)."""
    waiting = OutboxMail.sent_at.is_(None) & OutboxMail.dead_at.is_(None)
    query = select(
        func.count().filter(waiting & (OutboxMail.attempts == 0)),
        func.count().filter(waiting & (OutboxMail.attempts > 0)),
        func.count().filter(OutboxMail.dead_at.is_not(None)),
        func.count().filter(OutboxMail.sent_at.is_not(None)),
        func.min(OutboxMail.created_at).filter(waiting),
    )
    if site_id is not None:
        query = query.where(OutboxMail.site_id == site_id)
    queued, failing, dead, sent, oldest = db.session.execute(query).one()
    return {
        "queued": queued,
        "failing": failing,
        "dead": dead,
        "sent": sent,
        "oldest_waiting_seconds": max((utcnow() - oldest).total_seconds(), 0.0) if oldest else None,
    }


def outbox_status() -> dict:
    """The whole outbox's counts for operators, and the last error of a mail still waiting or dead."""
    waiting = OutboxMail.sent_at.is_(None) & OutboxMail.dead_at.is_(None)
    last_error = db.session.scalar(
        select(OutboxMail.last_error)
        .where(waiting | OutboxMail.dead_at.is_not(None), OutboxMail.last_error.is_not(None))
        .order_by(OutboxMail.id.desc())
        .limit(1)
    )
    return {**outbox_counts(), "last_error": last_error}


def dead_letters(limit: int) -> list[OutboxMail]:
    query = select(OutboxMail).where(OutboxMail.dead_at.is_not(None)).order_by(OutboxMail.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def dead_ids(ids: Iterable[int]) -> list[int]:
    query = select(OutboxMail.id).where(OutboxMail.id.in_(list(ids)), OutboxMail.dead_at.is_not(None))
    return list(db.session.scalars(query))


def requeue_dead(ids: list[int] | None) -> int:
    """Dead letters back to the queue (all of them when ids is None), due now, with attempts reset."""
    query = update(OutboxMail).where(OutboxMail.dead_at.is_not(None), OutboxMail.sent_at.is_(None))
    if ids is not None:
        query = query.where(OutboxMail.id.in_(ids))
    count = db.session.execute(
        query.values(dead_at=None, attempts=0, next_attempt_at=utcnow(), locked_until=None)
    ).rowcount
    db.session.commit()
    log.info("requeued %s dead letters", count)
    return count


def init_app(app: Flask) -> None:
    """Refuses to start without an address in MAIL_DEFAULT_SENDER: every site's default sender and
    Message-ID domain come from it, and a request must not be the first to find out."""
    sender = app.config.get("MAIL_DEFAULT_SENDER")
    if not isinstance(sender, str) or "@" not in parseaddr(sender)[1]:
        raise ConfigError(f'MAIL_DEFAULT_SENDER must be "Name <address>" or an address, not {sender!r}')
    mailer.init_app(app)
    template_helpers.init_app(app)
