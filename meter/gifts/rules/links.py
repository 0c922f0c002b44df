"""A gift's link: its token and the article URL that carries it.

A token is 16 random characters (the nonce, which names the gift's Redis keys) and 16 characters of
an HMAC of the site and the nonce under SECRET_KEY (any key in rotation verifies). Why signed: a
made-up or mistyped token is refused by arithmetic alone, so guessing costs meter no Redis call and
no SQL, and a token of one site is worthless on another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
PARAM = "gift"


def _mac(key: str | bytes, site_id: int, nonce: str) -> str:
    raw = key.encode("utf-8") if isinstance(key, str) else key
    digest = hmac.new(raw, f"meter.gift\x00{site_id}\x00{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode("ascii")


def new_token(site_id: int) -> str:
    nonce = secrets.token_urlsafe(12)  # 16 characters of A-Za-z0-9_-
    return nonce + _mac(current_app.config["SECRET_KEY"], site_id, nonce)


def nonce_of(site_id: int, token: object) -> str | None:
    """The token's nonce when the token is one of this site's (any key in rotation), else None."""
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        return None
    nonce, mac = token[:16], token[16:]
    config = current_app.config
    good = False
    for key in (*config.get("SECRET_KEY_FALLBACKS", []), config["SECRET_KEY"]):
        good |= hmac.compare_digest(_mac(key, site_id, nonce), mac)
    return nonce if good else None


def with_gift(url: str, token: str) -> str:
    """The article's URL with `gift=<token>` (any gift it carried replaced), fragment kept."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != PARAM]
    query.append((PARAM, token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def without_gift(url: str) -> str:
    """The article's URL of a gift link: its `gift` parameter taken out (for a reader's export)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != PARAM]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def token_in_url(url: str | None) -> str | None:
    """The `gift` parameter of a page URL (AMP's SOURCE_URL), if any."""
    if not url or "gift=" not in url:
        return None
    try:
        for key, value in parse_qsl(urlsplit(url).query):
            if key == PARAM:
                return value
    except ValueError:
        return None
    return None
