"""Who is asking, and what does the meter say: one decision for the API, the embed and AMP.

The caller says what it knows of the reader: a reader token (the API's body, meter's login
cookie), an anonymous id (the publisher's, meter's own cookie, or an AMP reader id, which a login
may have linked to a reader). A live token is judged as its reader; then an AMP link; else the
anonymous id. Counted in the metrics.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from meter.domain import amp_readers
from meter.domain.accounts.sessions import check_token
from meter.domain.metering import Decision, Subject, check
from meter.domain.sites import SiteInfo
from meter.infra import metrics


class Judgement(NamedTuple):
    decision: Decision
    logged_in: bool  # judged as a reader (token or linked AMP id), not as anonymous
    token: str  # the reader token's status: valid, expired, invalid, revoked or none


def decide(
    site: SiteInfo,
    article_id: str,
    article_class: str,
    record: bool,
    reader_token: str | None = None,
    anonymous_id: str | None = None,
    amp_rid: bool = False,
) -> Judgement:
    """`amp_rid`: the anonymous id is an AMP reader id, which a login may have linked to a reader."""
    started = time.perf_counter()
    judgement = _decide(site, article_id, article_class, record, reader_token, anonymous_id, amp_rid)
    decision = judgement.decision
    metrics.observe_access(
        site.slug, decision.reason, decision.allowed, decision.degraded, time.perf_counter() - started
    )
    return judgement


def _decide(
    site: SiteInfo,
    article_id: str,
    article_class: str,
    record: bool,
    reader_token: str | None,
    anonymous_id: str | None,
    amp_rid: bool,
) -> Judgement:
    token = check_token(site, reader_token)
    status = token.status
    if status == "valid":
        decision = check(site, Subject.reader(token.reader_id, token.session_id), article_id, article_class, record)
        if not decision.revoked:
            return Judgement(decision, True, status)
        status = "revoked"
    if not anonymous_id:
        return Judgement(check(site, None, article_id, article_class, record), False, status)
    if not amp_rid:
        return Judgement(check(site, Subject.anonymous(anonymous_id), article_id, article_class, record), False, status)

    linked = amp_readers.seen(site.id, anonymous_id)
    if linked is None:  # the script reads the rid's link while judging the rid: one call either way
        subject = Subject.anonymous(anonymous_id, amp_link_key=amp_readers.key(site.id, anonymous_id))
        decision = check(site, subject, article_id, article_class, record)
        if not decision.linked_to:
            return Judgement(decision, False, status)
        linked = amp_readers.parse(decision.linked_to)
        if linked is not None:
            amp_readers.remember(site.id, anonymous_id, *linked)
    if linked is not None:
        decision = check(site, Subject.reader(*linked), article_id, article_class, record)
        if not decision.revoked:
            return Judgement(decision, True, status)
    amp_readers.forget(site.id, anonymous_id)
    return Judgement(check(site, Subject.anonymous(anonymous_id), article_id, article_class, record), False, status)
