"""The access check: may this reader read this article? One Redis call in steady state, no SQL."""

from __future__ import annotations

import time

from flask import g

from .. import metrics, ratelimit
from ..accounts.sessions import check_token
from ..metering import Decision, Subject, check
from ..validation import parse
from . import bp
from .schemas import AccessBody


@bp.post("/access")
@ratelimit.access_ip
def access():
    started = time.perf_counter()
    body = parse(AccessBody)
    site = g.site
    token = check_token(site, body.reader_token)
    anonymous = Subject.anonymous(body.anonymous_id) if body.anonymous_id else None
    token_status = token.status
    decision: Decision | None = None
    if token.status == "valid":
        decision = check(
            site, Subject.reader(token.reader_id, token.session_id), body.article.id, body.article.class_, body.record
        )
        if decision.revoked:
            token_status, decision = "revoked", None
    if decision is None:  # no usable reader token: judged as anonymous
        decision = check(site, anonymous, body.article.id, body.article.class_, body.record)
    metrics.observe_access(
        site.slug, decision.reason, decision.allowed, decision.degraded, time.perf_counter() - started
    )
    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "reader": {"state": decision.state, "token": token_status},
        "meter": decision.meter(),
        "degraded": decision.degraded,
    }
