"""The shapes of identifiers that come from outside: an anonymous visitor's id (the publisher's, meter's own
cookie, or AMP's READER_ID). Defined once; the request models, the cookies and AMP all use it.
"""

from __future__ import annotations

import re

ANONYMOUS_ID_PATTERN = r"^[A-Za-z0-9_-]{8,128}$"
_ANONYMOUS_ID = re.compile(ANONYMOUS_ID_PATTERN)


def is_anonymous_id(value: object) -> bool:
    return isinstance(value, str) and _ANONYMOUS_ID.match(value) is not None
