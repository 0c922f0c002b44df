"""Webhooks: a site's other systems (its CRM, its mailing list, billing) hear what happens to its
readers: the endpoints and their secrets (`rules.endpoints`), the outbox written in the transaction
of the change (`rules.outbox`), the signed deliveries the worker sends (`rules.delivery`,
`rules.transport`), and `flask sites webhooks …` (`commands`).

This module is the feature's public face: other features import from it only (import-linter keeps
the rest private); each name comes from its home on first use (`meter.platform.public`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meter.platform.public import exports

if TYPE_CHECKING:
    from meter.webhooks.rules import endpoints, outbox
    from meter.webhooks.rules.outbox import EVENTS

_PUBLIC = {
    "EVENTS": ("meter.webhooks.rules.outbox", "EVENTS"),
    "endpoints": ("meter.webhooks.rules.endpoints", None),
    "outbox": ("meter.webhooks.rules.outbox", None),
}
__all__ = [
    "EVENTS",
    "endpoints",
    "outbox",
]
__getattr__ = exports(__name__, _PUBLIC)
