"""The suite's Jinja bytecode cache: each test builds its own app (its settings, its database), about
500 of them per run, and each would compile again every template it renders (about 4 ms each). One
cache in memory for the process, handed to every app as JINJA_BYTECODE_CACHE (create_app), keys the
code by each template's name and source checksum, as Jinja's own file cache does across processes.

Production makes one app per process and needs none.
"""

from __future__ import annotations

import jinja2


class MemoryBytecodeCache(jinja2.BytecodeCache):
    """Jinja's documented way to keep compiled templates: load_bytecode and dump_bytecode on buckets."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}
        self.loads = 0  # buckets filled from the cache (a test shows the cache is used)

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self.code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)
            self.loads += bucket.code is not None  # None: the source changed since (its checksum)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = MemoryBytecodeCache()
