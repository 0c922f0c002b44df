"""A reader's data as a whole: the copy of it (`rules.export`), its erasure (`rules.erasure`), how
long meter keeps what it keeps (`rules.retention`, the worker's duty), and `flask readers export|delete`
(`commands`).

This module is the feature's public face: other features import from it only (import-linter keeps
the rest private); each name comes from its home on first use (`meter.platform.public`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meter.platform.public import exports

if TYPE_CHECKING:
    from meter.reader_data.rules import erasure, export
    from meter.reader_data.rules.export_answer import Export

_PUBLIC = {
    "Export": ("meter.reader_data.rules.export_answer", "Export"),
    "erasure": ("meter.reader_data.rules.erasure", None),
    "export": ("meter.reader_data.rules.export", None),
}
__all__ = [
    "Export",
    "erasure",
    "export",
]
__getattr__ = exports(__name__, _PUBLIC)
