"""The background worker (`flask worker`, also `flask mail worker`): everything meter does outside requests.

One loop, one pass a second when idle: deliver the mail that is due (the outbox), settle the unlocks
left in doubt by a lost Redis reply, every few seconds write the unlocks journaled in Redis into the
ledger (`meter.access.rules.metering.journal`: those whose own write failed, the database away), work through the console's bulk resends, once a minute roll the
views counted in Redis up into the figures (`meter.stats.rules`), and once an hour apply retention
(`meter.reader_data.rules.retention`: accounts never activated, old sent mail), and deliver the
webhooks that are due (`meter.webhooks.rules.delivery`). Each duty is a function
of its own module; a duty that
fails is logged and tried again on the next pass, and never stops the others.

SIGTERM (`systemctl stop` or `restart meter-worker`) stops it between passes, never in the middle
of one: a mail handed to the SMTP server is also marked sent before the process leaves, so a
restart does not send it twice.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from flask import current_app

from meter.access.rules.metering import doubts, journal
from meter.console.rules import bulk
from meter.platform import mail
from meter.platform.db import db
from meter.reader_data.rules import retention
from meter.stats import rules as stats
from meter.webhooks.rules import delivery as webhooks

log = logging.getLogger(__name__)


def _deliver_mail() -> int:
    sent, _failed = mail.deliver_due()
    return sent


def _settle_doubts() -> int:
    kept, forgotten = doubts.settle()
    return kept + forgotten


def _every(setting: str, work: Callable[[], object]) -> Callable[[], int]:
    """A duty that does `work` on the first pass, then once every `setting` seconds (read each pass).

    It reports no work done: a periodic duty must not shorten the idle wait between passes.
    """
    last = float("-inf")

    def duty() -> int:
        nonlocal last
        if time.monotonic() - last >= current_app.config[setting]:
            last = time.monotonic()
            work()
        return 0

    return duty


# (name, duty): each returns how much it did; a pass that did nothing waits before the next.
DUTIES: list[tuple[str, Callable[[], int]]] = [
    ("mail", _deliver_mail),
    ("doubts", _settle_doubts),
    ("ledger journal", _every("LEDGER_JOURNAL_SECONDS", journal.drain)),
    ("stats", _every("STATS_ROLL_UP_SECONDS", stats.roll_up)),
    ("retention", _every("RETENTION_EVERY_SECONDS", retention.apply)),
    ("bulk resend", bulk.work),  # the console's bulk resends of activation mail, a batch a pass
    ("webhooks", webhooks.deliver_due),  # the webhook outbox: signed POSTs to the publisher's endpoints
    ("webhook pruning", _every("RETENTION_EVERY_SECONDS", webhooks.prune)),
]


def run_once() -> int:
    """One pass over every duty; returns how much was done in all."""
    done = 0
    for name, duty in DUTIES:
        try:
            done += duty()
        except Exception:
            db.session.rollback()
            log.exception("worker duty %s failed; the next pass tries again", name)
        finally:
            db.session.remove()
    return done


class _Stop(Exception):
    """Raised by the SIGTERM handler while the worker sleeps between passes."""


def run(poll_interval: float = 1.0, once: bool = False) -> None:
    config = current_app.config
    state = {"busy": False, "stop": False}

    def on_term(_signum, _frame) -> None:
        state["stop"] = True
        if not state["busy"]:
            raise _Stop  # asleep between passes: leave now

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main else None
    try:
        # Said once SIGTERM is handled: from this line on, a stop is the graceful one.
        log.info("worker started (SMTP %s:%s)", config["MAIL_SERVER"], config["MAIL_PORT"])
        while not state["stop"]:
            state["busy"] = True
            done = run_once()
            state["busy"] = False
            if once:
                return
            if not done and not state["stop"]:
                time.sleep(poll_interval)
    except _Stop:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    log.info("worker stopped (SIGTERM) between two passes")
