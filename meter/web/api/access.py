"""The access check: may this reader read this article? One Redis call in steady state, no SQL.

Well-formed, authenticated checks are answered by `meter.api.fastpath` without Flask's request
machinery; this view answers the rest (and all of them when METER_FAST_ACCESS is off). Both go
through `answer`, so they cannot differ.
"""

from __future__ import annotations

from flask import g

from meter.domain.judge import decide
from meter.domain.sites import SiteInfo
from meter.web import ratelimit
from meter.web.api import bp
from meter.web.schemas import AccessBody
from meter.web.validation import parse


def answer(site: SiteInfo, body: AccessBody) -> dict:
    decision, _logged_in, token_status = decide(
        site,
        body.article.id,
        body.article.class_,
        body.record,
        reader_token=body.reader_token,
        anonymous_id=body.anonymous_id,
    )
    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "reader": {"state": decision.state, "token": token_status},
        "meter": decision.meter(),
        "degraded": decision.degraded,
    }


@bp.post("/access")
@ratelimit.access_ip
def access():
    return answer(g.site, parse(AccessBody))
