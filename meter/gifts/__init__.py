"""Gift articles: a subscriber gives an article; whoever opens the link reads it without a wall, on
at most a few devices (`rules.store` in SQL, `rules.hot` and `gift.lua` on the access check's path,
`rules.links`); the publisher's API (`views.api`) and the embed's gift button (`views.embed`).

This module is the feature's public face: other features import from it only (import-linter keeps
the rest private); each name comes from its home on first use (`meter.platform.public`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meter.platform.public import exports

if TYPE_CHECKING:
    from meter.gifts.rules import hot, links, store
    from meter.gifts.rules.links import token_in_url

_PUBLIC = {
    "hot": ("meter.gifts.rules.hot", None),
    "links": ("meter.gifts.rules.links", None),
    "store": ("meter.gifts.rules.store", None),
    "token_in_url": ("meter.gifts.rules.links", "token_in_url"),
}
__all__ = [
    "hot",
    "links",
    "store",
    "token_in_url",
]
__getattr__ = exports(__name__, _PUBLIC)
