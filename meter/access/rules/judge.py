"""Who is asking, and what does the meter say: one decision for the API, the embed and AMP.

The caller says what it knows of the reader: a reader token (the API's body, meter's login
cookie), an anonymous id (the publisher's, meter's own cookie, or an AMP reader id, which a login
may have linked to a reader), and the client's address and user agent. In this order:

1. A link-preview fetcher (meter.access.rules.crawlers) gets `free_content` for a free article and
   `preview` (refused) for the rest: no Redis call, nothing counted against anyone.
2. With the policy `crawlers: verified`, a crawler that proves who it is gets `crawler` (a free
   article: `free_content`): no meter read. One that cannot prove it goes on as anyone would.
3. A gift link for the article (meter.gifts.rules) gets `gift`, judged on the gift alone (one
   Redis call of its own script; the reader's meter is not read); a refused gift is ignored and
   its reason kept for the answer.
4. A live token is judged as its reader; then an AMP link; else the anonymous id. The reader's
   arrival (search, social, a campaign: meter.access.rules.arrival) picks the first of the meter's
   rules that matches (the cached policy, before the script call), and its extra reads raise the
   limit the script enforces for this check; the answer names the rule. Before the rule, while the
   meter runs an experiment (meter.sites.rules.experiments), the subject's variant sets the quotas;
   the answer names the experiment and the variant.

Answers given without the meter's script are counted in the figures through `stats.note`, as the
check counts its own. Every answer is counted in the metrics.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from flask import current_app

from meter import stats
from meter.access.rules import amp_readers
from meter.access.rules import crawlers as clients
from meter.access.rules.arrival import DIRECT, Arrival
from meter.access.rules.metering import Decision, Subject, check
from meter.access.rules.metering.check import current_period, period_end, wall_field
from meter.access.rules.metering.layout import anonymous_subject, reader_subject
from meter.accounts import TokenCheck, check_token
from meter.gifts import hot as gifts
from meter.platform import clock, metrics
from meter.sites import Meter, SiteInfo, experiments


class Judgement(NamedTuple):
    decision: Decision
    logged_in: bool  # judged as a reader (token or linked AMP id), not as anonymous
    token: str  # the reader token's status: valid, expired, invalid, revoked or none
    gift: str | None = None  # a gift link that was not used: expired, revoked, device_limit or invalid
    subject: str | None = None  # whom the answer is about (meter's subject: "r:<id>", "a:<id>"), for a grant's `sub`


def decide(
    site: SiteInfo,
    article_id: str,
    article_class: str,
    record: bool,
    reader_token: str | None = None,
    anonymous_id: str | None = None,
    amp_rid: bool = False,
    client_ip: str | None = None,
    user_agent: str | None = None,
    gift_token: str | None = None,
    section: str | None = None,
    arrival: Arrival = DIRECT,
) -> Judgement:
    """`amp_rid`: the anonymous id is an AMP reader id, which a login may have linked to a reader.
    `client_ip` and `user_agent` only recognise crawlers and link previews; they are kept nowhere.
    `section`, the article's, chooses the meter that counts (the policy's `sections`; else the default);
    `arrival` the meter's rule, whose extra reads the meter's script is given (nothing else reads it)."""
    started = time.perf_counter()
    meter = site.policy.meter_for(section)
    judgement = _by_client(site, meter, article_class, record, reader_token, client_ip, user_agent)
    if judgement is None:
        gift = None
        if gift_token is not None and article_class != "free":
            judgement, gift = _by_gift(
                site, meter, article_id, article_class, record, reader_token, anonymous_id, gift_token
            )
        if judgement is None:
            counter = _Counter(site, meter, arrival, article_id, article_class, record)
            judgement = _decide(counter, reader_token, anonymous_id, amp_rid)
            if gift is not None:
                judgement = judgement._replace(gift=gift)
    decision = judgement.decision
    metrics.observe_access(
        site.slug, decision.reason, decision.allowed, decision.degraded, time.perf_counter() - started
    )
    return judgement


class _Counter:
    """One check of the article's meter for whoever the subject turns out to be: the subject's variant of
    the meter's experiment (its quotas), then the first rule by arrival (its extra reads on top), both
    from the cached policy before the script call; the answer names them."""

    def __init__(
        self, site: SiteInfo, meter: Meter, arrival: Arrival, article_id: str, article_class: str, record: bool
    ) -> None:
        self.site, self.meter, self.arrival = site, meter, arrival
        self.article_id, self.article_class, self.record = article_id, article_class, record

    def __call__(self, subject: Subject | None, seed: str | None) -> Decision:
        counting, variant = self.meter, None
        experiment = self.meter.experiment
        if experiment is not None and seed is not None:
            key = experiments.hash_key(current_app.config["SECRET_KEY"], self.site.id, self.meter.name, experiment.name)
            counting, variant = self.meter.in_variant(key, seed, clock.now())
        counting, rule = counting.for_arrival(self.arrival.source, self.arrival.campaign)
        walls = ""
        if variant is not None and experiment is not None:
            walls = wall_field(experiment.figures_id(self.meter.name), variant.name)
        decision = check(self.site, subject, self.article_id, self.article_class, self.record, counting, walls)
        if rule is not None:
            decision.rule = rule.name
        if variant is not None and experiment is not None:
            decision.experiment, decision.variant = experiment.name, variant.name
        return decision


def _decide(counter: _Counter, reader_token: str | None, anonymous_id: str | None, amp_rid: bool) -> Judgement:
    """The seeds of the variants: a token's reader carries theirs in the token (the anonymous id's they
    registered with, else their own); an anonymous id its digest; a reader an AMP reader id is linked to
    keeps the AMP reader id's, so AMP needs no SQL for it either."""
    site = counter.site
    token = check_token(site, reader_token)
    status = token.status
    if status == "valid" and token.reader_id is not None:
        subject = Subject.reader(token.reader_id, token.session_id)
        decision = counter(subject, experiments.reader_seed(token.reader_id, token.variant_seed))
        if not decision.revoked:
            return Judgement(decision, True, status, subject=reader_subject(token.reader_id))
        status = "revoked"
    if not anonymous_id:
        return Judgement(counter(None, None), False, status)
    anonymous = anonymous_subject(anonymous_id)
    seed = experiments.anonymous_seed(anonymous_id)
    if not amp_rid:
        return Judgement(counter(Subject.anonymous(anonymous_id), seed), False, status, subject=anonymous)

    linked = amp_readers.seen(site.id, anonymous_id)
    if linked is None:  # the script reads the rid's link while judging the rid: one call either way
        subject = Subject.anonymous(anonymous_id, amp_link_key=amp_readers.key(site.id, anonymous_id))
        decision = counter(subject, seed)
        if not decision.linked_to:
            return Judgement(decision, False, status, subject=anonymous)
        linked = amp_readers.session_of(decision.linked_to)
        if linked is not None:
            amp_readers.remember(site.id, anonymous_id, *linked)
    if linked is not None:
        decision = counter(Subject.reader(*linked), seed)
        if not decision.revoked:
            return Judgement(decision, True, status, subject=reader_subject(linked[0]))
    amp_readers.forget(site.id, anonymous_id)
    decision = counter(Subject.anonymous(anonymous_id), seed)
    return Judgement(decision, False, status, subject=anonymous)


def _unread(
    site: SiteInfo, meter: Meter, allowed: bool, reason: str, record: bool, state: str = "anonymous"
) -> Decision:
    """An answer given without reading any meter: nothing used, the anonymous quota of the article's
    meter; counted in the figures."""
    now = clock.now()
    if record:
        stats.note(site.id, stats.day_of(site.policy, now), reason)
    end = period_end(current_period(meter, now), 0, now)
    return Decision(allowed, reason, state, 0, meter.quota_anonymous, end, meter_name=meter.name)


def _by_client(
    site: SiteInfo,
    meter: Meter,
    article_class: str,
    record: bool,
    reader_token: str | None,
    ip: str | None,
    user_agent: str | None,
) -> Judgement | None:
    """A link preview or a verified crawler, answered without the meter; None for everyone else."""
    claim = clients.claim_of(user_agent)
    if claim is None:
        return None
    if claim.kind == "crawler" and (site.policy.crawlers != "verified" or not clients.verified_crawler(claim, ip)):
        return None
    token = check_token(site, reader_token).status
    if article_class == "free":
        return Judgement(_unread(site, meter, True, "free_content", record), False, token)
    if claim.kind == "preview":
        return Judgement(_unread(site, meter, False, "preview", record), False, token)
    return Judgement(_unread(site, meter, True, "crawler", record), False, token)


def _by_gift(
    site: SiteInfo,
    meter: Meter,
    article_id: str,
    article_class: str,
    record: bool,
    reader_token: str | None,
    anonymous_id: str | None,
    gift_token: str,
) -> tuple[Judgement | None, str | None]:
    """(the gifted answer, None) when the gift lets this device in; (None, why not) when it does not;
    (None, None) when Redis could not say. The device is the token's reader, else the anonymous id."""
    token: TokenCheck = check_token(site, reader_token)
    if token.status == "valid" and token.reader_id is not None:
        device: str | None = reader_subject(token.reader_id)
    else:
        device = anonymous_subject(anonymous_id) if anonymous_id else None
    outcome = gifts.read(site.id, site.slug, gift_token, article_id, device, record)
    if outcome != "gift":
        return None, outcome
    decision = _unread(site, meter, True, "gift", record)
    decision.article_class = article_class
    return Judgement(decision, token.status == "valid", token.status, subject=device), None
