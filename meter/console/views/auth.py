"""Who is asking, and may they: the set-up page, sign-in and sign-out, and `view`, which declares
every other console route with the least role it needs.

The session is a random token in the `meter_console` cookie (HttpOnly, SameSite=Strict, path
/console/, Secure outside development), checked in SQL on every request (meter.console.rules.staff_sessions):
12 hours idle, a sign-out or a disable ends it everywhere. Sign-in asks for the address, the password
and a code from the authenticator together, and answers the same whichever was wrong; failures are
limited per client address, and per staff address from each client address under a higher ceiling
per staff address (meter's own limiter, the readers' rule: `ratelimit.failed_sign_in_limits`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import abort, current_app, g, has_request_context, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from meter.accounts import Limit, emails, failed_sign_in_limits, guard
from meter.console.forms import ActionForm, SetupForm, SigninForm
from meter.console.models import Staff
from meter.console.rules import audit, roles, totp
from meter.console.rules import staff_accounts as accounts
from meter.console.rules import staff_sessions as sessions
from meter.console.views import bp
from meter.sites import sites
from meter.social import sealing

COOKIE = "meter_console"
MAX_ID = 2**63 - 1
# Every console route's least role: filled by `view` (and "member" for routes any signed-in member may
# open, "public" for set-up and sign-in). The table-driven test of every route and role reads it.
ROLES: dict[str, str] = {}


def _failed(_response) -> bool:
    return bool(g.get("signin_failed"))


def _staff_address() -> str:
    """Key of the per-address limit: the typed address's lookup key ("" for none: not limited by it)."""
    raw = request.form.get("email", "")
    try:
        return "staff:" + emails.lookup_key(emails.normalise(raw))
    except emails.BadEmail:
        return ""


SIGNIN_IP = Limit("RATELIMIT_CONSOLE_SIGNIN_IP", "console-signin-ip", counts=_failed)
# A staff address's failures per client address, and from all addresses together (the readers' rule).
SIGNIN_ACCOUNT, SIGNIN_CEILING = failed_sign_in_limits(
    "RATELIMIT_CONSOLE_SIGNIN_ACCOUNT",
    "RATELIMIT_CONSOLE_SIGNIN_ACCOUNT_CEILING",
    "console-signin-account",
    _staff_address,
    _failed,
)


def _cookie_attrs() -> dict:
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    return {"httponly": True, "secure": secure, "samesite": "Strict", "path": "/console/"}


def current() -> Staff | None:
    """The signed-in member of this request (checked once per request), or None."""
    if "staff" not in g:
        found = sessions.current(request.cookies.get(COOKIE))
        g.staff = found[0] if found else None
    return g.staff


def _safe_next(value: str | None) -> str | None:
    """Only a console path of ours (no scheme, no host, no backslash): never an open redirect."""
    if not value or len(value) > 2048 or not value.startswith("/console/") or any(c in value for c in "\\\r\n"):
        return None
    return value if not value.startswith("//") else None


def _to_signin():
    return redirect(url_for("console.signin", next=request.full_path.rstrip("?")), 303)


def view(rule: str, role: str, methods: tuple[str, ...] = ("GET",)) -> Callable:
    """Declare a route under /console/<site_slug> that needs at least `role` on that site.

    Not signed in: to the sign-in page and back. A site the member has no grant on: 404 (its readers,
    figures and very existence stay hidden). A role too low: 403. Otherwise the view runs with
    g.staff, g.role, g.site (SiteInfo, for the domain) and g.site_row (the row, for changes)."""
    if role not in roles.ROLES:
        raise ValueError(role)

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def inner(site_slug: str, **kwargs):
            staff = current()
            if staff is None:
                return _to_signin()
            row = sites.by_slug(site_slug)
            granted = roles.role_on(staff, row.id) if row is not None else None
            if granted is None:
                abort(404)
            g.role, g.site_row, g.site = granted, row, sites.info(row)
            if not roles.allows(granted, role):
                abort(403)
            if any(isinstance(v, int) and not 0 < v < MAX_ID for v in kwargs.values()):
                abort(404)  # no row has such an id (and the database would refuse the number)
            return func(**kwargs)

        endpoint = func.__name__
        ROLES[f"console.{endpoint}"] = role
        bp.add_url_rule(f"/<site_slug>{rule}", endpoint, inner, methods=list(methods))
        return inner

    return decorate


@bp.app_context_processor
def _console_context() -> dict:
    # (On the path, not a blueprint hook: an error met before the blueprint's hooks is a console page too.)
    if not has_request_context() or not request.path.startswith("/console"):
        return {}
    return {"me": g.get("staff"), "allows": lambda needed: roles.allows(g.get("role"), needed), "lang_link": _lang_link}


def _lang_link(code: str) -> str:
    """This page in another language (a GET; the choice then sticks); the console's start after a POST."""
    if request.url_rule is None:
        return f"{request.path}?lang={code}"
    if request.method != "GET":
        return url_for("console.home", lang=code)
    return url_for(request.endpoint, **{**(request.view_args or {}), **request.args.to_dict(), "lang": code})


# --- set-up, sign-in, sign-out -------------------------------------------------------------------


@bp.route("/setup/<token>", methods=["GET", "POST"])
@guard(Limit("RATELIMIT_CONSOLE_SIGNIN_IP", "console-setup-ip", counts=_failed), methods=("POST",))
def setup(token: str):
    """Choose a password and enrol the authenticator (the QR code, or its secret typed in), proven by
    one code from it. The link works once."""
    staff = accounts.by_setup_token(token)
    if staff is None:
        return render_template("console/message.html", kind="setup_invalid"), 404
    try:
        secret = accounts.setup_secret(staff)
    except sealing.SealError:
        return render_template("console/message.html", kind="setup_invalid"), 404
    form = SetupForm()
    if form.validate_on_submit():
        if accounts.complete_setup(staff, form.password.data, form.code.data):
            return render_template("console/message.html", kind="setup_done", email=staff.email)
        g.signin_failed = True
        form.code.errors = [*form.code.errors, _("This code is not right: use the one your app shows now.")]
    names = ", ".join(grant.site.name for grant in staff.grants)
    qr = Markup(totp.qr_svg(totp.uri(secret, staff.email, names)))  # noqa: S704 - segno's own SVG, no input in markup
    page = render_template(
        "console/setup.html", form=form, email=staff.email, qr=qr, secret=totp.display(secret), raw_secret=secret
    )
    return page, 422 if form.errors else 200


@bp.route("/signin", methods=["GET", "POST"])
@guard(SIGNIN_IP, SIGNIN_ACCOUNT, SIGNIN_CEILING, methods=("POST",))
def signin():
    form = SigninForm()
    if request.method == "GET":
        form.next.data = _safe_next(request.args.get("next")) or ""
    if form.validate_on_submit():
        staff = accounts.authenticate(form.email.data, form.password.data, form.code.data)
        if staff is None:
            g.signin_failed = True
            form.code.errors = [_("The email, password or code is not correct.")]
        else:
            token = sessions.start(staff)
            audit.record_on_sites("console.signin", staff)
            response = redirect(_safe_next(form.next.data) or url_for("console.home"), 303)
            response.set_cookie(COOKIE, token, **_cookie_attrs())
            return response
    return render_template("console/signin.html", form=form), 422 if form.errors else 200


@bp.post("/signout")
def signout():
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    staff = current()
    if staff is not None:
        audit.record_on_sites("console.signout", staff)
    sessions.end(request.cookies.get(COOKIE))
    response = redirect(url_for("console.signin"), 303)
    response.delete_cookie(COOKIE, **_cookie_attrs())
    return response


@bp.get("/")
def home():
    """The member's sites: straight to the only one, else a list."""
    staff = current()
    if staff is None:
        return _to_signin()
    mine = roles.sites_of(staff)
    if len(mine) == 1:
        return redirect(landing(mine[0][0].slug, mine[0][1]), 303)
    return render_template("console/home.html", sites=mine, landing=landing)


def landing(slug: str, role: str) -> str:
    """Where a member starts on a site: the figures for editors and owners, the readers for support."""
    if roles.allows(role, "editor"):
        return url_for("console.dashboard", site_slug=slug)
    return url_for("console.readers", site_slug=slug)


ROLES.update(
    {"console.setup": "public", "console.signin": "public", "console.signout": "public", "console.home": "member"}
)
