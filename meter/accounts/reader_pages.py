"""What every reader page of a site shares, whichever feature serves it (the account pages here, the
sign-in pages of other accounts in `meter.social`): the site from the path (an unknown slug is the 404
page), the page shell (`meter.platform.page_shell`), the site in every URL built, the safe `next`, and
the page a reader meets after too many attempts or a spent mail budget.
"""

from __future__ import annotations

import math

from flask import Blueprint, g, render_template, request, url_for

from meter.accounts import rate_limits as ratelimit
from meter.accounts.rules import mail_budget
from meter.accounts.rules.lookup import safe_next
from meter.platform import page_shell, problems
from meter.platform.i18n import choose_language
from meter.sites import lookup


def load_site(_endpoint, values) -> None:
    g.site = lookup.site_page_or_404(values.pop("site_slug"))
    g.lang = choose_language()


def add_site(_endpoint, values) -> None:
    if "site_slug" not in values and "site" in g:
        values["site_slug"] = g.site.slug


def next_url() -> str | None:
    """The safe `next` of this request (form first, then query), else None: a URL on one of the site's
    origins, or the path of this site's account page (where a login asked for by that page returns)."""
    raw = request.form.get("next") or request.args.get("next")
    return safe_next(g.site, raw) or (raw if raw == url_for("pages.account") else None)


def wait_minutes(retry_after: int) -> int:
    """The wait a reader is told, in whole minutes rounded up."""
    return max(1, math.ceil(retry_after / 60))


def too_many_attempts(exc: ratelimit.RateLimited | mail_budget.Spent):
    """A breached limit or a spent mail budget on a form: a page in the reader's language, not the
    API's problem+json (which a client that asks for JSON still gets). The response goes through
    the page shell's headers."""
    retry = exc.retry_after
    if problems.wants_problem():
        return ratelimit.too_many_problem(retry)
    page = render_template(
        "pages/message.html",
        kind="rate_limited",
        next_url=None,
        minutes=wait_minutes(retry),
        resend=request.endpoint == "pages.resend_activation",
        back=next_url(),
    )
    return page, 429, {"Retry-After": str(retry)}


def install(bp: Blueprint) -> None:
    """A blueprint of reader pages under `/<site_slug>`: the site, the shell, the 429 page."""
    bp.url_value_preprocessor(load_site)
    page_shell.install(bp)
    bp.url_defaults(add_site)
    bp.register_error_handler(ratelimit.RateLimited, too_many_attempts)
    bp.register_error_handler(mail_budget.Spent, too_many_attempts)
