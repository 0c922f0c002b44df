"""AMP access: `GET /amp/<site>/authorization` and `POST /amp/<site>/pingback` (by default the pingback counts the view).

The reader is AMP's READER_ID (`rid`), an anonymous id unless a login through the reader pages with
`?rid=` linked it to a reader (`meter.access.rules.amp_readers`); meter's own login cookie counts too when
the browser sends it. Answers are small (no personal data), `Cache-Control: no-store`, and carry the
amp-subscriptions fields `granted`, `grantReason`, `data`.

CORS (with credentials) answers the site's own origins and the AMP caches' subdomains *of those
origins* only (`www.tempo.co` → `www-tempo-co.cdn.ampproject.org`), and a CORS request must carry
`__amp_source_origin`, one of the site's origins, as the AMP runtime always does: a page on another
publisher's cache subdomain cannot read or spend a reader's meter.

A gift link's token is read from the page's URL (`url`, AMP's SOURCE_URL, with `gift=`); crawlers
and link previews are recognised by the request's own address and User-Agent. The class comes from
the page, so with `signed_articles: required` it counts only when the publisher signed it
(`meter.access.rules.article_signing`). The arrival, for the policy's rules by arrival: `ref`, which the
page fills with AMP's DOCUMENT_REFERRER variable (in a viewer such as Google's, the viewer's own referrer,
usually the search page), and the campaign of `url` (SOURCE_URL's `utm_campaign`), or a signed
`campaign` with `signed_articles: required`. An AMP viewer that never sends the pingback is never counted; a
site that wants every authorized view counted sets `amp_counts_on: authorization`.
"""

from __future__ import annotations

from meter.access.rules import article_signing, judge
from meter.access.rules.amp_origins import cache_origins
from meter.access.rules.arrival import arrival
from meter.access.views.embed import site_or_problem
from meter.access.views.exchange import Answer, Incoming, json_answer
from meter.gifts import token_in_url
from meter.platform import cookies
from meter.platform import responses as out
from meter.platform.clock import now_epoch
from meter.platform.identifiers import is_anonymous_id
from meter.platform.openapi import Answer as OpenAnswer
from meter.platform.openapi import describe, query
from meter.platform.problems import Problem
from meter.platform.validation import query_article
from meter.sites import SiteInfo, normalise_origin

GRANT = {"subscriber": "SUBSCRIBER", "free_content": "FREE", "crawler": "FREE", "gift": "FREE"}
PREFLIGHT = ("Access-Control-Allow-Methods", "GET, POST")


ERRORS = {
    400: "Bad query (`rid` must be 8 to 128 of A-Za-z0-9_-).",
    403: "The Origin is not one of the site's origins or their AMP cache subdomains, or `__amp_source_origin` "
    "is missing on a CORS request or is not one of the site's origins.",
    404: "Unknown site.",
    422: "Bad article id or class (`validation-failed`).",
}
PARAMS = {
    "site_slug": {"description": "The site's slug (`{site}` in the contract)."},
    "rid": query("rid", "AMP reader id: anonymous unless linked to a reader by a login.", True),
    "url": query("url", "The source URL of the AMP page.", True),
    "article": query("article", "Article id (defaults to the URL)."),
    "class": query("class", "Article class (defaults to metered).", schema={"enum": ["free", "metered", "premium"]}),
    "__amp_source_origin": query("__amp_source_origin", "The AMP page's origin; required on CORS requests."),
    "expires": query("expires", "With sig: Unix time after which the signature is refused."),
    "sig": query(
        "sig", "The publisher's signature of article, class, expires and section (docs/api.md: signed articles)."
    ),
    "section": query("section", "The article's section: it chooses the meter that counts (the policy's `sections`)."),
    "ref": query(
        "ref",
        "AMP's DOCUMENT_REFERRER: the page that sent the reader (search, social: the policy's rules by arrival).",
    ),
    "campaign": query(
        "campaign", "The campaign, signed with the article when `sig` is given (else `url`'s utm_campaign counts)."
    ),
}


def _refused(detail: str) -> Problem:
    return Problem(403, "origin-refused", "Origin refused", detail)


def cors_headers(site: SiteInfo, incoming: Incoming) -> list[tuple[str, str]]:
    """The CORS headers for this request; a Problem (403, no CORS headers) for a refused origin."""
    headers = [("Vary", "Origin"), ("Cache-Control", "no-store")]
    origin = incoming.headers.get("Origin")
    source = incoming.query.get("__amp_source_origin")
    if source is not None and (normalise_origin(source) != source or source not in site.origins):
        raise _refused("__amp_source_origin is not an origin of this site.")
    if origin:
        if normalise_origin(origin) != origin or not (origin in site.origins or origin in cache_origins(site)):
            raise _refused("This origin may not ask about this site.")
        if source is None:
            raise _refused("A CORS request must carry __amp_source_origin, as the AMP runtime sends it.")
        headers += [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true")]
    if source is not None:
        headers += [
            ("AMP-Access-Control-Allow-Source-Origin", source),
            ("Access-Control-Expose-Headers", "AMP-Access-Control-Allow-Source-Origin"),
        ]
    return headers


def _judge(site: SiteInfo, incoming: Incoming, record: bool) -> judge.Judgement:
    rid = incoming.query.get("rid", "")
    if not is_anonymous_id(rid):
        raise Problem(400, "bad-request", "Bad request", "rid must be 8 to 128 of A-Za-z0-9_-.")
    q = incoming.query
    item = query_article(
        q.get("article") or q.get("url") or None,
        q.get("class"),
        q.get("expires"),
        q.get("sig"),
        q.get("section"),
        q.get("campaign"),
    )
    now = now_epoch()
    article_class = article_signing.trusted_class(
        site, item.id, item.class_, item.expires, item.sig, now, item.section, item.campaign
    )
    campaign = article_signing.trusted_campaign(
        site, item.id, item.class_, item.expires, item.sig, now, item.section, item.campaign, q.get("url")
    )
    return judge.decide(
        site,
        item.id,
        article_class,
        record,
        reader_token=cookies.reader_token_in(incoming.cookies, site),
        anonymous_id=rid,
        amp_rid=True,
        client_ip=incoming.remote_addr,
        user_agent=incoming.headers.get("User-Agent"),
        gift_token=token_in_url(q.get("url")),
        section=item.section,
        arrival=arrival(q.get("ref"), campaign),
    )


@describe(
    "AMP authorization (amp-access / amp-subscriptions): counts only with the site setting "
    "`amp_counts_on: authorization`; no personal data.",
    {200: OpenAnswer("The grant; Cache-Control: no-store.", out.AmpAuthorization)},
    errors=ERRORS,
    secured=False,
    params=PARAMS,
)
def authorization(incoming: Incoming, site_slug: str) -> Answer:
    site = site_or_problem(site_slug)
    headers = cors_headers(site, incoming)
    if incoming.method == "OPTIONS":
        return Answer(204, headers=[*headers, PREFLIGHT], site_slug=site.slug)
    judged = _judge(site, incoming, record=site.amp_counts_on == "authorization")
    decision, logged_in = judged.decision, judged.logged_in
    granted = decision.allowed
    meter = decision.meter()
    answer = json_answer(
        out.AmpAuthorization(
            granted=granted,
            grantReason=(GRANT.get(decision.reason, "METERING") if granted else None),
            data=out.AmpData(
                articlesRead=meter["used"],
                articlesLeft=meter["remaining"],
                articleLimit=meter["limit"],
                isLoggedIn=logged_in,
            ),
            access=granted,
            reason=decision.reason,
            subscriber=decision.reason == "subscriber",
            meter=decision.meter_name,
            rule=decision.rule,
            variant=decision.variant,
        ),
        headers=headers,
    )
    answer.site_slug = site.slug
    return answer


@describe(
    "AMP pingback: counts the view (unless the site counts on authorization).",
    {204: OpenAnswer("Counted.")},
    errors=ERRORS,
    secured=False,
    params=PARAMS,
)
def pingback(incoming: Incoming, site_slug: str) -> Answer:
    site = site_or_problem(site_slug)
    headers = cors_headers(site, incoming)
    if incoming.method == "OPTIONS":
        return Answer(204, headers=[*headers, PREFLIGHT], site_slug=site.slug)
    if site.amp_counts_on == "pingback":  # (else the authorization counted the view already)
        _judge(site, incoming, record=True)
    return Answer(204, headers=headers, site_slug=site.slug)
