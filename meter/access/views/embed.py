"""`POST /embed/<site>/access`: the access check for the reader of this browser, asked by meter.js.

The reader is found by meter's own cookies (the login cookie of the reader pages, or an anonymous
id cookie set here on the first visit); no API key is in the page. CORS answers only the site's own
origins, with credentials; any other origin (or none) is refused before anything is read or
counted, and every refusal after the origin was accepted carries the CORS headers, so the script
can read it. The answer carries the wall to show, already in the reader's language, so the script
holds no strings. meter.js asks with `record: false` while the page is prerendered, and sends the
page URL's `gift` parameter as `gift_token`, and `document.referrer` as `referrer` (the arrival, for the
policy's rules by arrival, with the campaign of the page's URL or the signed descriptor). Crawlers and link previews are recognised by this
request's own address (behind TRUSTED_PROXIES) and User-Agent; a preview gets the wall, never the body.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from urllib.parse import urlencode

from babel.dates import format_date
from flask import current_app

from meter.access.embed_shell import (  # noqa: F401  (the access check's refusals, described with it)
    CORS_DESCRIPTION,
    ERRORS,
    NO_SITE,
    ORIGIN_REFUSED,
    PARAMS,
    allowed_origin,
    cors_headers,
    describe_preflight,
    site_or_problem,
)
from meter.access.rules import article_signing, judge
from meter.access.rules.arrival import arrival
from meter.access.rules.grants.issue import grant
from meter.access.rules.metering import Decision
from meter.access.rules.metering.check import refusal_reason
from meter.access.views.exchange import TOO_LARGE, Answer, Incoming, json_answer, problem_answer
from meter.accounts import safe_next
from meter.platform import cookies
from meter.platform import responses as out
from meter.platform.clock import now_epoch
from meter.platform.i18n import LANG_COOKIE, Texts, language_of, texts
from meter.platform.openapi import Answer as OpenAnswer
from meter.platform.openapi import describe
from meter.platform.problems import Problem
from meter.platform.schemas import EmbedAccessBody
from meter.platform.template_helpers import free_articles
from meter.platform.validation import load_json, parse
from meter.sites import SiteInfo


def language(site: SiteInfo, incoming: Incoming) -> str:
    return language_of(
        incoming.query.get("lang"),
        incoming.cookies.get(LANG_COOKIE),
        incoming.headers.get("Accept-Language"),
        site.locale,
    )


@describe(
    "The access check for the reader of this browser (cookies, CORS; no API key). "
    "Counts unless `record` is false; sets the `meter_anon` cookie on the first visit.",
    {200: OpenAnswer("The decision, the banner and the wall, with the CORS headers.", out.EmbedAccess)},
    method="post",
    body=EmbedAccessBody,
    body_media=("text/plain", "application/json"),
    errors=ERRORS,
    secured=False,
    params=PARAMS,
    description=CORS_DESCRIPTION + " The body is JSON, sent as text/plain (a CORS simple request).",
)
@describe_preflight("the access check")
def access(incoming: Incoming, site_slug: str) -> Answer:
    site = site_or_problem(site_slug)
    origin = allowed_origin(site, incoming.headers)
    if origin is None:
        raise ORIGIN_REFUSED
    cors = cors_headers(origin)
    if incoming.method == "OPTIONS":
        return Answer(204, headers=cors, site_slug=site.slug)
    try:
        answer = _answer(site, incoming, cors)
    except Problem as problem:
        answer = problem_answer(problem, cors)
    answer.site_slug = site.slug
    return answer


def _answer(site: SiteInfo, incoming: Incoming, cors: list[tuple[str, str]]) -> Answer:
    if incoming.body is None:
        raise TOO_LARGE
    body = parse(EmbedAccessBody, load_json(incoming.body))
    anonymous_id = cookies.anonymous_id_in(incoming.cookies)
    new_anonymous = anonymous_id is None
    if new_anonymous:
        anonymous_id = cookies.new_anonymous_id()
    item = body.article
    now = now_epoch()
    article_class = article_signing.trusted_class(
        site, item.id, item.class_, item.expires, item.sig, now, item.section, item.campaign
    )
    campaign = article_signing.trusted_campaign(
        site, item.id, item.class_, item.expires, item.sig, now, item.section, item.campaign, body.url
    )
    judged = judge.decide(
        site,
        item.id,
        article_class,
        body.record,
        reader_token=cookies.reader_token_in(incoming.cookies, site),
        anonymous_id=anonymous_id,
        client_ip=incoming.remote_addr,
        user_agent=incoming.headers.get("User-Agent"),
        gift_token=body.gift_token,
        section=item.section,
        arrival=arrival(body.referrer, campaign),
    )
    decision, logged_in = judged.decision, judged.logged_in
    meter = decision.meter()
    lang = language(site, incoming)
    banner = wall = None
    shows_banner = decision.reason in ("unlocked_now", "already_unlocked", "would_unlock") and meter["limit"]
    if decision.allowed and shows_banner:
        left = meter["remaining"]
        banner = texts(lang).ngettext("%(num)d free article left", "%(num)d free articles left", left)
    elif decision.reason == "gift":  # the reader should know whom to thank, and that it is not their quota
        banner = texts(lang).gettext("This article is a gift from a %(site)s subscriber", site=site.name)
    elif not decision.allowed:
        page = safe_next(site, body.url)
        subscribe = safe_next(site, body.subscribe_url) or site.subscribe_url
        # A link preview sees what an anonymous visitor over the quota would: the wall, without the body.
        meter_policy = site.policy.meter_named(decision.meter_name)
        reason = refusal_reason(meter_policy, "anonymous", article_class) if decision.reason == "preview" else None
        wall = _wall(site, texts(lang), decision, page, subscribe, reason, logged_in)
    payload = out.EmbedAccess(
        allowed=decision.allowed,
        reason=decision.reason,
        state=decision.state,
        logged_in=logged_in,
        meter=meter,
        banner=banner,
        wall=wall,
        colour=site.colour,
        degraded=decision.degraded,
        # the account page leads back to this article ("Kembali ke Tempo")
        account={
            "label": texts(lang).gettext("My account"),
            "url": page_url(site, "account", lang, safe_next(site, body.url)),
        }
        if logged_in
        else None,
        can_give=decision.state == "subscriber" and site.policy.gifts_per_period > 0,
    )
    if judged.gift is not None:
        payload["gift"] = judged.gift
    if site.content_protection:
        signed = grant(site, item.id, judged, body.record)
        if signed is not None:
            payload["grant"] = signed
    headers = [*cors, cookies.anonymous_id_header(anonymous_id)] if new_anonymous else cors
    return json_answer(payload, headers=headers)


def _unbroken(text: str) -> str:
    """A date as no-break spaces join it: "1 Desember 2026" never splits across lines on a phone (the
    wall is text that meter.js sets, so no markup can keep it together)."""
    return text.replace(" ", "\u00a0")


def page_url(site: SiteInfo, page: str, lang: str, next_url: str | None) -> str:
    """A reader page of meter, absolute, in this language, returning to `next_url`."""
    return _page_url(current_app.config["PUBLIC_BASE_URL"], site.slug, page, lang, next_url)


@lru_cache(maxsize=4096)  # the walls of a site's articles repeat: encoding their links is most of a wall's cost
def _page_url(base: str, slug: str, page: str, lang: str, next_url: str | None) -> str:
    query = {"next": next_url, "lang": lang} if next_url else {"lang": lang}
    return f"{base}/{slug}/{page}?{urlencode(query)}"


@lru_cache(maxsize=256)  # a period's end, in a handful of languages: Babel's formatting once each
def _long_date(day: datetime, locale: str) -> str:
    return _unbroken(format_date(day, "long", locale=locale))


def _free_in_meter(site: SiteInfo, meter_name: str, words: Texts) -> str:
    """ "2 free articles a month": the quota of verified readers in the meter that refused, in its period."""
    meter = site.policy.meter_named(meter_name)
    return free_articles(meter.quota_verified, meter.period, site.premium_name, words)


def provider_actions(site: SiteInfo, words: Texts, page: str | None, signing_up: bool) -> list[dict]:
    """One action per sign-in provider of the site: "Daftar melalui X" on the register wall, else "Masuk melalui X"."""
    _ = words.gettext
    return [
        {
            "kind": "provider",
            "provider": name,
            "label": _("Sign up with %(provider)s", provider=label)
            if signing_up
            else _("Sign in with %(provider)s", provider=label),
            "url": page_url(site, f"login/{name}", words.lang, page),
        }
        for name, _kind, label in site.login_providers
    ]


def _wall(
    site: SiteInfo,
    words: Texts,
    decision: Decision,
    page: str | None,
    subscribe: str | None,
    reason: str | None = None,
    logged_in: bool = False,
) -> dict:
    """The wall to show; a reader who is signed in is never offered "Masuk" (nor a provider's)."""
    _, lang = words.gettext, words.lang
    reason = reason or decision.reason
    login = {"label": _("Log in"), "url": page_url(site, "login", lang, page), "kind": "login"}
    if reason == "registration_required":
        return {
            "kind": "register",
            "title": _("Register to keep reading"),
            "body": _(
                "Register and confirm your email to read %(free)s.",
                free=_free_in_meter(site, decision.meter_name, words),
            ),
            "actions": [
                {"label": _("Register here"), "url": page_url(site, "register", lang, page), "kind": "register"},
                login,
                *provider_actions(site, words, page, signing_up=True),
            ],
        }
    if reason == "verification_required":
        return {
            "kind": "verify",
            "title": _("Confirm your email to keep reading"),
            "body": _("We sent an activation link to your email. Click it to read more articles."),
            "actions": [
                {
                    "label": _("Resend now"),
                    "url": None,
                    "kind": "resend",
                    "lead": _("If you did not receive the email,"),
                }
            ],
        }
    subscribe_action = {"label": _("Subscribe"), "url": subscribe or "#", "kind": "subscribe"}
    if reason == "subscription_required":
        body = (
            _("Subscribe to read %(section)s and every article.", section=site.premium_name)
            if site.premium_name
            else _("Subscribe to read every article.")
        )
        return {
            "kind": "subscribe",
            "title": _("This article is for subscribers"),
            "body": body,
            "actions": [subscribe_action]
            if logged_in
            else [subscribe_action, login, *provider_actions(site, words, page, signing_up=False)],
        }
    return {
        "kind": "quota",
        "title": _("You have read all your free articles"),
        "body": _(
            "Subscribe to keep reading. Your free articles come back on %(date)s.",
            date=_long_date(decision.period_end, words.locale),
        ),
        "actions": [subscribe_action],
    }
