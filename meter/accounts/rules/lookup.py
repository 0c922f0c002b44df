"""What the account flows share: finding readers and the links mail carries."""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app
from sqlalchemy import update

from meter.accounts.models import Reader
from meter.accounts.rules import emails
from meter.platform import mail, tokens
from meter.platform.db import db
from meter.sites import SiteInfo, mail_sender, normalise_origin
from meter.sites.models import Site


def find_reader(site_id: int, email: str) -> Reader | None:
    """None for an unknown or malformed address; callers answer the same either way."""
    try:
        key = emails.lookup_key(emails.normalise(email))
    except emails.BadEmail:
        return None
    return db.session.scalar(db.select(Reader).filter_by(site_id=site_id, email_key=key))


def page_url(site: SiteInfo, path: str, locale: str | None = None) -> str:
    """An absolute link for mail, carrying the mail's language (Indonesian too): the page it opens
    speaks the language the mail spoke, whatever the browser that opens it prefers."""
    url = f"{current_app.config['PUBLIC_BASE_URL']}/{site.slug}/{path}"
    return f"{url}?lang={locale}" if locale else url


def safe_next(site: SiteInfo, url: str | None) -> str | None:
    """`url` when it is an absolute http(s) URL on one of the site's origins, else None (no open redirects)."""
    if not url or not isinstance(url, str) or len(url) > 2048 or any(ch in url for ch in "\r\n\\"):
        return None
    origin = normalise_origin(url)
    if origin is None or origin not in site.origins:
        return None
    return url


def mail_context(site: SiteInfo, **extra) -> dict:
    """What every mail of the site is given: the site (name, colour, premium section, support link), its
    quota, and its headers, `sender` and `reply_to`, which `mail.queue` takes as arguments of its own."""
    return {
        "site": site,
        "quota": site.policy.quota_verified,
        "quote": quote,
        "sender": mail_sender(site),
        "reply_to": site.reply_to,
        **extra,
    }


def decoy_mail(site: SiteInfo, kind: str) -> None:
    """Do a mail's work (token, rendering, a write transaction) and send nothing.

    Resend and reset answer the same for an unknown address; this makes them also take the same
    time, so that timing does not tell which addresses have accounts. The write is an UPDATE that
    changes nothing, so it leaves no trace.
    """
    token = tokens.make(tokens.RESET, {"r": 0, "s": site.id, "v": 0})
    link = page_url(site, "decoy/" + token)
    mail.render(kind, "decoy@invalid", site.locale, site.id, **mail_context(site, link=link, email="decoy@invalid"))
    db.session.execute(update(Site).where(Site.id == site.id).values(id=Site.id))
    db.session.commit()
