"""The access check: may this reader read this article? One Redis call in steady state, no SQL."""

from __future__ import annotations

from flask import g

from .. import ratelimit
from ..reader_access import decide
from ..validation import parse
from . import bp
from .schemas import AccessBody


@bp.post("/access")
@ratelimit.access_ip
def access():
    body = parse(AccessBody)
    decision, _logged_in, token_status = decide(
        g.site, body.article, body.record, reader_token=body.reader_token, anonymous_id=body.anonymous_id
    )
    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "reader": {"state": decision.state, "token": token_status},
        "meter": decision.meter(),
        "degraded": decision.degraded,
    }
