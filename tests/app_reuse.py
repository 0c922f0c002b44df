"""The cost of an app per test: each test builds its own app (its settings, its database), about 500
of them per run. Two parts of that are the same work every time, so the suite does them once per
process (imported by conftest.py):

- werkzeug compiles a URL builder function per rule from its parts (~15 ms an app); the function
  takes the rule as its first argument and depends on nothing else, so one per distinct rule serves;
- Jinja compiles every template each new app renders: a bytecode cache (as Jinja's own file cache
  does across processes, keyed by each template's source checksum) skips it.

Production makes one app per process and needs neither.
"""

from __future__ import annotations

import jinja2
import jinja2.bccache
from flask import Flask
from werkzeug.routing import Rule


class _MemoryBytecodeCache(jinja2.BytecodeCache):
    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": _MemoryBytecodeCache()}
_compile_builder = Rule._compile_builder
_builders: dict[tuple, object] = {}


def _reused_builder(self: Rule, append_unknown: bool = True):
    key = (self.rule, tuple(self._trace), repr(sorted((self.defaults or {}).items())), append_unknown)
    if key not in _builders:
        _builders[key] = _compile_builder(self, append_unknown)
    return _builders[key]


Rule._compile_builder = _reused_builder  # type: ignore[method-assign]
