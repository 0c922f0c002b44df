"""The access check for browsers (the embed) and AMP: the same rules as `POST /v1/access`, with the
reader found from meter's own cookies (or an AMP reader id linked by a login) instead of a JSON body.
"""

from __future__ import annotations

import time
from typing import NamedTuple

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
    linked: tuple[int, str] | None = None,
    anonymous_id: str | None = None,
) -> Judgement:
    """A live reader token first, then a linked reader, then the anonymous id; counted in the metrics."""
    started = time.perf_counter()
    judgement = _decide(site, article_id, article_class, record, reader_token, linked, anonymous_id)
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
    linked: tuple[int, str] | None,
    anonymous_id: str | None,
) -> Judgement:
    token = check_token(site, reader_token)
    status = token.status
    candidates: list[Subject] = []
    if status == "valid":
        candidates.append(Subject.reader(token.reader_id, token.session_id))
    if linked:
        candidates.append(Subject.reader(*linked))
    for subject in candidates:
        decision = check(site, subject, article_id, article_class, record)
        if not decision.revoked:
            return Judgement(decision, True, status)
        if subject.session_id == token.session_id and status == "valid":
            status = "revoked"
    anonymous = Subject.anonymous(anonymous_id) if anonymous_id else None
    return Judgement(check(site, anonymous, article_id, article_class, record), False, status)
