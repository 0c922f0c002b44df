"""A feature's public module, made lazily: `meter.accounts` names what other features may use of accounts
(`from meter.accounts import find_reader`), and each name is imported from its home on first use.

Why lazily: the features use one another both ways (accounts counts in the meter; the meter asks
accounts who holds a token), so a public module that imported every home at once would make a
cycle at import time out of what is, at run time, a plain call. Each name resolves to exactly the
object its home defines, imported when first asked for, as a direct import of the home would be.
The feature's `__init__` lists the same imports under `TYPE_CHECKING`, so that type checkers and
import-linter see every edge (`make lint` keeps the features' insides private: pyproject.toml).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, names: Mapping[str, tuple[str, str | None]]) -> Callable[[str], Any]:
    """The `__getattr__` of a public module: name -> (home module, attribute; None for the module itself)."""

    def __getattr__(name: str) -> Any:
        try:
            home, attribute = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = importlib.import_module(home)
        if attribute is not None:
            value = getattr(value, attribute)
        setattr(importlib.import_module(package), name, value)  # the next use is a plain attribute
        return value

    return __getattr__
