"""Every kind of mail meter sends, rendered as its flow renders it: `mail.render` with the site's
`mail_context` and the links the flow puts in (the same paths, a token of a realistic length).

The kinds are read from meter/templates/mail/ (each `<kind>.subject.txt`), and `test_every_kind_is_here`
holds that this table names each of them and each `mail.queue("kind", …)` of meter/: a new mail
cannot skip the tests that render every kind (layout, html-validate, lifetimes, SpamAssassin).
"""

from __future__ import annotations

import re

from meter.accounts.rules.lookup import mail_context, page_url
from meter.platform import mail
from meter.platform.mail_message import SiteMessage
from meter.platform.models import OutboxMail
from meter.sites.rules import sites
from tests.paths import ROOT_DIR

ROOT = ROOT_DIR
TEMPLATES = ROOT / "meter" / "templates" / "mail"
TOKEN = "eyJyIjoxMiwicyI6MSwiZSI6IjNmOWEifQ." + "Ab3dE9fGh1" * 20  # as long as a real one (≈ 237 chars)
READER = "pembaca@example.com"
PROVIDER, WHO = "Google", "Pembaca Setia (pembaca.setia@gmail.com)"


def template_kinds() -> set[str]:
    return {p.name.removesuffix(".subject.txt") for p in TEMPLATES.glob("*.subject.txt")}


def queued_kinds() -> set[str]:
    """The kinds named as string literals where meter queues or notifies (`mail.queue("x"`, `notify(site, "x"`,
    `kind = "x" if … else "y"`)."""
    found = set()
    for path in (ROOT / "meter").rglob("*.py"):
        text = path.read_text()
        found |= set(re.findall(r'mail\.queue\(\s*"([a-z_]+)"', text))
        found |= set(re.findall(r'notify\(\s*\w+,\s*"([a-z_]+)"', text))
        for pair in re.findall(r'kind = "([a-z_]+)" if \w+ else "([a-z_]+)"', text):
            found |= set(pair)
    return found


def _samples(site: sites.SiteInfo, locale: str) -> dict[str, tuple[str, dict]]:
    """name → (kind, the context its flow gives beside `mail_context`)."""

    def url(path: str) -> str:
        return page_url(site, path, locale)

    social = {"provider": PROVIDER, "who": WHO}
    return {
        "activation": ("activation", {"link": url("activate/" + TOKEN), "email": READER, "again": False}),
        "activation_again": ("activation", {"link": url("activate/" + TOKEN), "email": READER, "again": True}),
        "already_registered": (
            "already_registered",
            {"login_url": url("login"), "reset_url": url("forgot-password")},
        ),
        "password_reset": ("password_reset", {"link": url("reset-password/" + TOKEN), "email": READER}),
        "password_changed": ("password_changed", {"email": READER, "reset_url": url("forgot-password")}),
        "email_change": ("email_change", {"link": url("account/email/" + TOKEN), "email": "baru@example.com"}),
        "email_changed": ("email_changed", {"email": READER, "new_email": "baru@example.com"}),
        "account_deletion": ("account_deletion", {"link": url("account/delete/" + TOKEN), "email": READER}),
        "social_link": ("social_link", {"link": url(f"login/google/link/{TOKEN}"), "email": READER, **social}),
        "social_signup": ("social_signup", {"link": url(f"login/google/link/{TOKEN}"), "email": READER, **social}),
        "sign_in_added": ("sign_in_added", {"email": READER, "account_url": url("account"), **social}),
        "webhook_disabled": (
            "webhook_disabled",
            {
                "host": "crm.tempo.co",
                "reason": "gone",
                "days": 3,
                "link": f"http://meter.test/console/{site.slug}/webhooks",
            },
        ),
    }


def render_all(app, slug: str, locale: str) -> dict[str, OutboxMail]:
    """Each sample rendered for site `slug` in `locale` (inside an app context of `app`)."""
    with app.test_request_context():
        site = sites.info_by_slug(slug)
        rows = {}
        for name, (kind, extra) in _samples(site, locale).items():
            context = mail_context(site, **extra)
            sender, reply_to = context.pop("sender"), context.pop("reply_to")
            rows[name] = mail.render(kind, READER, locale, site.id, sender, reply_to, **context)
        return rows


def as_sent(row: OutboxMail) -> bytes:
    """The bytes the worker hands to the SMTP server (`mail._message`)."""
    return SiteMessage(
        subject=row.subject,
        recipients=[row.to_addr],
        body=row.body_text,
        html=row.body_html,
        sender=row.sender,
        reply_to=row.reply_to,
        msg_id=row.message_id,
    ).as_bytes()
