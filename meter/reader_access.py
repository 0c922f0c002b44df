"""The access check for browsers (the embed) and AMP: the same rules as `POST /v1/access`, with the
reader found from meter's own cookies (or an AMP reader id linked by a login) instead of a JSON body.
"""

from __future__ import annotations

import time
from typing import Any

from . import metrics
from .accounts.sessions import check_token
from .api.schemas import Article
from .metering import Decision, Subject, check
from .sites import SiteInfo
from .validation import parse


def article(article_id: Any, article_class: Any) -> Article:
    """Validate an article id and class as the API does (422 problem on bad input)."""
    return parse(Article, {"id": article_id, "class": article_class if article_class is not None else "metered"})


def decide(
    site: SiteInfo,
    item: Article,
    record: bool,
    reader_token: str | None = None,
    linked: tuple[int, str] | None = None,
    anonymous_id: str | None = None,
) -> tuple[Decision, bool]:
    """(decision, logged_in): a live reader token first, then a linked reader, then the anonymous id."""
    started = time.perf_counter()
    decision, logged_in = _decide(site, item, record, reader_token, linked, anonymous_id)
    metrics.observe_access(
        site.slug, decision.reason, decision.allowed, decision.degraded, time.perf_counter() - started
    )
    return decision, logged_in


def _decide(
    site: SiteInfo,
    item: Article,
    record: bool,
    reader_token: str | None,
    linked: tuple[int, str] | None,
    anonymous_id: str | None,
) -> tuple[Decision, bool]:
    candidates: list[Subject] = []
    token = check_token(site, reader_token)
    if token.status == "valid":
        candidates.append(Subject.reader(token.reader_id, token.session_id))
    if linked:
        candidates.append(Subject.reader(*linked))
    for subject in candidates:
        decision = check(site, subject, item.id, item.class_, record)
        if not decision.revoked:
            return decision, True
    anonymous = Subject.anonymous(anonymous_id) if anonymous_id else None
    return check(site, anonymous, item.id, item.class_, record), False
