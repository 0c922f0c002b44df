"""Signed article descriptors: the publisher vouches for an article's class, so a reader cannot choose it.

The embed and AMP learn an article's id and class from the page, which the reader controls: a
reader who edits `data-meter-class="free"` would read anything. A publisher's server (or template)
signs the descriptor with a per-site secret (`flask sites article-keys create`):

    sig = "v1." + kid + "." + base64url(HMAC-SHA256(secret, f"{id}\\n{class}\\n{expires}"))   (no padding)

and for an article with a section (which chooses the meter it counts in) the section is signed too,
`f"{id}\\n{class}\\n{expires}\\n{section}"`, so a reader can neither add, change nor remove it
(a descriptor signed without one gains none). A campaign the publisher vouches for (the page's
`utm_campaign`, which a rule by arrival may give extra reads to) is signed as a fifth line,
`f"{id}\\n{class}\\n{expires}\\n{section}\\n{campaign}"` (the section's line empty when there is none).
`expires` is a Unix time after which the signature is
refused (a page cached for a day can use a day or two). With the site setting `signed_articles: required`, a descriptor without a valid,
unexpired signature is judged as `premium`: subscribers only, nothing counted, whatever class it
claims. A signature that is given but wrong is judged so even when signing is optional. Any error
while checking a signature counts as a wrong signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from meter.access.rules import arrival
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites import SiteInfo
from meter.sites.models import ArticleKey, Site

VERSION = "v1"
MAX_SIG = 200


def message(
    article_id: str, article_class: str, expires: int, section: str | None = None, campaign: str | None = None
) -> bytes:
    """What is signed: id, class and expires, the section when there is one, then the campaign when
    there is one (descriptors signed before sections and campaigns existed have neither, and stay
    valid; a section cannot be empty, so an empty line says "no section")."""
    text = f"{article_id}\n{article_class}\n{expires}"
    if section is not None or campaign is not None:
        text += f"\n{section or ''}"
    if campaign is not None:
        text += f"\n{campaign}"
    return text.encode()


def sign(
    kid: str,
    secret: str,
    article_id: str,
    article_class: str,
    expires: int,
    section: str | None = None,
    campaign: str | None = None,
) -> str:
    """What a publisher's server computes (here for tests, the docs' examples and `flask sites article-keys sign`)."""
    signed = message(article_id, article_class, expires, section, campaign)
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{VERSION}.{kid}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


def valid(
    site: SiteInfo,
    article_id: str,
    article_class: str,
    expires: object,
    sig: object,
    now: int,
    section: str | None = None,
    campaign: str | None = None,
) -> bool:
    """Whether `sig` vouches for this id, class, section and campaign until `expires` with one of the
    site's live keys."""
    try:
        if not isinstance(sig, str) or len(sig) > MAX_SIG or not isinstance(expires, int) or isinstance(expires, bool):
            return False
        if expires < now:
            return False
        version, kid, _mac = sig.split(".")
        secret = dict(site.article_keys).get(kid)
        if version != VERSION or secret is None:
            return False
        return hmac.compare_digest(sign(kid, secret, article_id, article_class, expires, section, campaign), sig)
    except Exception:  # noqa: BLE001 - fail closed: any error is a wrong signature
        return False


def trusted_class(
    site: SiteInfo,
    article_id: str,
    claimed: str,
    expires: object,
    sig: object,
    now: int,
    section: str | None = None,
    campaign: str | None = None,
) -> str:
    """The class to judge: the claimed one when it is vouched for with the section and campaign given
    (or signing is optional and no signature was given), else `premium`."""
    if sig is None and not site.signed_articles:
        return claimed
    return claimed if valid(site, article_id, claimed, expires, sig, now, section, campaign) else "premium"


def trusted_campaign(
    site: SiteInfo,
    article_id: str,
    claimed: str,
    expires: object,
    sig: object,
    now: int,
    section: str | None,
    campaign: str | None,
    page_url: str | None,
) -> str | None:
    """The campaign a rule by arrival may give extra reads to. With `signed_articles: required`, only
    the one the publisher signed with the article (a reader who adds `?utm_campaign=` to the URL
    gains nothing); else the descriptor's, or the `utm_campaign` of the page's URL."""
    if site.signed_articles:
        valid_campaign = campaign is not None and valid(site, article_id, claimed, expires, sig, now, section, campaign)
        return campaign if valid_campaign else None
    return campaign if campaign is not None else arrival.campaign_in(page_url)


def new_key(site: Site) -> tuple[str, str]:
    """A new signing key of the site: (kid, secret); the caller commits. The secret is shown once."""
    kid = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    db.session.add(ArticleKey(site=site, kid=kid, secret=secret))
    return kid, secret


def revoke(site: Site, kid: str) -> bool:
    row = db.session.scalar(db.select(ArticleKey).filter_by(site_id=site.id, kid=kid, revoked_at=None))
    if row is None:
        return False
    row.revoked_at = utcnow()
    return True
