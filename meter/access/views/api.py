"""`POST /v1/access`: may this reader read this article? For the publisher's server (API key).

Steady state: one Redis call (the meter's script, or a gift's), no SQL; none for a link preview or a
crawler verified by its published ranges. `client` is the reader's as the publisher's server saw it (its
`referrer` and `campaign` choose the meter's rule by arrival: the publisher's server is trusted with them). Refusals are problem documents: a
missing or wrong key 401, a body too large 413, malformed 400, invalid 422, the per-address limit
(RATELIMIT_ACCESS_IP, off by default) 429.
"""

from __future__ import annotations

from meter.access.rules import judge
from meter.access.rules.arrival import DIRECT, arrival
from meter.access.rules.grants.issue import grant
from meter.access.views.exchange import TOO_LARGE, Answer, Incoming, json_answer
from meter.accounts import rate_limits as ratelimit
from meter.platform import responses as out
from meter.platform.openapi import Answer as OpenAnswer
from meter.platform.openapi import describe
from meter.platform.problems import Problem
from meter.platform.schemas import AccessBody
from meter.platform.validation import load_json, parse
from meter.sites import lookup as auth


@describe(
    "May this reader read this article? Always 200 when the question could be answered.",
    {200: OpenAnswer("The decision.", out.AccessAnswer)},
    body=AccessBody,
)
def access(incoming: Incoming) -> Answer:
    site = auth.site_or_401(incoming.headers.get("Authorization", ""))
    wait = ratelimit.access_ip_wait(incoming.remote_addr)
    if wait:
        raise Problem(
            429,
            "rate-limited",
            "Too many requests",
            "Too many requests; try again later.",
            headers={"Retry-After": str(wait)},
        )
    if incoming.body is None:
        raise TOO_LARGE
    body = parse(AccessBody, load_json(incoming.body))
    client = body.client
    judged = judge.decide(
        site,
        body.article.id,
        body.article.class_,
        body.record,
        reader_token=body.reader_token,
        anonymous_id=body.anonymous_id,
        client_ip=client.ip if client else None,
        user_agent=client.user_agent if client else None,
        gift_token=body.gift_token,
        section=body.article.section,
        arrival=arrival(client.referrer, client.campaign) if client else DIRECT,
    )
    decision = judged.decision
    payload = out.AccessAnswer(
        allowed=decision.allowed,
        reason=decision.reason,
        reader=out.AccessReader(state=decision.state, token=judged.token),
        meter=decision.meter(),
        degraded=decision.degraded,
    )
    if judged.gift is not None:
        payload["gift"] = judged.gift
    if site.grant_key is not None and (body.grant or site.grants_api):
        signed = grant(site, body.article.id, judged, body.record)
        if signed is not None:
            payload["grant"] = signed
    answer = json_answer(payload)
    answer.site_slug = site.slug
    return answer
