"""The shell of every HTML page meter serves, written once: the reader pages, the sign-in pages of other
accounts and the publisher console all install it on their blueprints.

A page gets a fresh CSP nonce and its language before anything else runs (so even a refusal renders
in the reader's language), a form field with a NUL byte is refused before a view reads it, and every
answer carries the page headers (`meter.platform.http.page_headers`: the CSP with that nonce, no
framing, no caching of what is personal) and remembers a language chosen by `?lang=`. The error
pages (`meter.platform.error_pages`) are the same shell's, registered once for the whole app.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, g

from meter.platform import http, validation
from meter.platform.i18n import choose_language, remember_language


def begin() -> None:
    """The page's nonce, and its language unless the blueprint chose it already (with the site)."""
    g.csp_nonce = secrets.token_urlsafe(16)
    if not g.get("lang"):
        g.lang = choose_language()


def finish(response: Response) -> Response:
    response.headers.update(http.page_headers(g.get("csp_nonce", "")))
    return remember_language(response)


def install(bp: Blueprint) -> None:
    """The shell on a blueprint of pages; hooks the blueprint registers before this one run first."""
    bp.before_request(begin)
    bp.before_request(validation.no_nul_in_fields)  # after begin: the error page has its language
    bp.after_request(finish)
