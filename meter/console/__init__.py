"""The publisher console (`/console/`, HTML): staff accounts with an authenticator code, roles per
site and the audit log (`rules.staff_accounts`, `rules.totp`, `rules.roles`, `rules.audit`), the
dashboard's figures, support's view of a reader, the site's policy and keys (`rules`, `views`),
and `flask staff …`, `flask audit show` (`commands`).

This module is the feature's public face: other features import from it only (import-linter keeps
the rest private); each name comes from its home on first use (`meter.platform.public`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meter.platform.public import exports

if TYPE_CHECKING:
    from meter.console.rules import audit

_PUBLIC = {
    "audit": ("meter.console.rules.audit", None),
}
__all__ = [
    "audit",
]
__getattr__ = exports(__name__, _PUBLIC)
