"""The access check: may this reader read this article now? Answered for the publisher's server
(`POST /v1/access`), for meter.js (`/embed/<site>/access`) and for AMP (`/amp/<site>/…`) by one
pipeline (`views.routes`, `views.exchange`; `views.hot` answers in front of Flask), one decision
(`rules.judge`) and one Redis call (`rules.metering.check` and its `check.lua`; the quota rule's
Python copy is `rules.quota`). Also: crawlers and link previews (`rules.crawlers`), signed article
descriptors (`rules.article_signing`), grants (`rules.grants`), AMP reader ids (`rules.amp_readers`,
`rules.amp_origins`), the ledger of unlocks in SQL (`rules.metering.ledger`, `models`), and the
embed's endpoint shell (`embed_shell`).

This module is the feature's public face: other features import from it only (import-linter keeps
the rest private); each name comes from its home on first use (`meter.platform.public`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meter.platform.public import exports

if TYPE_CHECKING:
    from meter.access.rules import amp_origins, amp_readers, article_signing, judge, metering, quota
    from meter.access.rules.metering import forget_reader_state, journal
    from meter.access.rules.metering.check import current_period
    from meter.access.rules.metering.layout import U32_MAX, buckets, hash64, place, reader_subject, unlock_place

_PUBLIC = {
    "U32_MAX": ("meter.access.rules.metering.layout", "U32_MAX"),
    "amp_origins": ("meter.access.rules.amp_origins", None),
    "amp_readers": ("meter.access.rules.amp_readers", None),
    "article_signing": ("meter.access.rules.article_signing", None),
    "buckets": ("meter.access.rules.metering.layout", "buckets"),
    "current_period": ("meter.access.rules.metering.check", "current_period"),
    "forget_reader_state": ("meter.access.rules.metering", "forget_reader_state"),
    "hash64": ("meter.access.rules.metering.layout", "hash64"),
    "journal": ("meter.access.rules.metering.journal", None),
    "judge": ("meter.access.rules.judge", None),
    "metering": ("meter.access.rules.metering", None),
    "place": ("meter.access.rules.metering.layout", "place"),
    "quota": ("meter.access.rules.quota", None),
    "reader_subject": ("meter.access.rules.metering.layout", "reader_subject"),
    "unlock_place": ("meter.access.rules.metering.layout", "unlock_place"),
}
__all__ = [
    "U32_MAX",
    "amp_origins",
    "amp_readers",
    "article_signing",
    "buckets",
    "current_period",
    "forget_reader_state",
    "hash64",
    "journal",
    "judge",
    "metering",
    "place",
    "quota",
    "reader_subject",
    "unlock_place",
]
__getattr__ = exports(__name__, _PUBLIC)
