"""Reader pages (HTML): register, log in, forgot and reset a password, activation sent, activate.

A GET never changes anything: the activation page submits a POST by itself, so a mail scanner that
follows links activates nothing. Every form carries a CSRF token (Flask-WTF). The rules live in
`meter.accounts`; these views only ask them and render. A page returns the reader to `next` only
when it is on one of the site's origins (`safe_next`).
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    abort,
    g,
    has_request_context,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from meter.access import amp_origins, amp_readers
from meter.accounts import rate_limits as ratelimit
from meter.accounts import reader_pages
from meter.accounts.client import this_device
from meter.accounts.forms import ConfirmForm, EmailForm, LoginForm, LogoutForm, RegisterForm, ResendForm, ResetForm
from meter.accounts.rules import confirm, emails, mail_budget, recover, register, sessions
from meter.accounts.rules.lookup import safe_next
from meter.platform import cookies, tokens
from meter.platform.identifiers import is_anonymous_id
from meter.platform.redis_conn import RedisUnavailable
from meter.sites import lookup

bp = Blueprint("pages", __name__, url_prefix="/<site_slug>")


reader_pages.install(bp)
_next = reader_pages.next_url
wait_minutes = reader_pages.wait_minutes


@bp.app_context_processor
def inject_nonce() -> dict:
    return {
        "csp_nonce": g.get("csp_nonce", ""),
        "lang_url": _lang_url,
        "signed_in": signed_in,
        "back_to_site": back_to_site,
    }


def signed_out_here() -> None:
    """This response ends the browser's login (logout, deletion): the page it renders must not offer
    "Akun Saya" for the cookie the request still carried."""
    g.signed_out = True


def back_to_site() -> str | None:
    """Where "Kembali ke <site>" leads: `next`, the article the reader came from, when it is on one of
    the site's origins; else the site's own front page (its first origin); None without either."""
    site = g.get("site")
    if site is None or not has_request_context():
        return None
    return safe_next(site, request.args.get("next")) or (f"{site.origins[0]}/" if site.origins else None)


def signed_in() -> bool:
    """Whether this browser carries a login of the site (the header then links "Akun Saya"). The token's
    signature and age only: a session ended elsewhere still shows the link, and the account page then
    asks for a login."""
    site = g.get("site")
    if site is None or not has_request_context() or g.get("signed_out"):
        return False
    return sessions.check_token(site, cookies.reader_token(site)).status == "valid"


def _lang_url(code: str) -> str:
    """This page again in another language (a GET; the choice then sticks in a cookie). A POST-only
    form (resend-activation, whose "expired" or "too many attempts" answer has no GET) links to the
    login page instead of a 405; an error page outside any site, to its own path."""
    if g.get("site") is None:
        return f"{request.path}?{urlencode({'lang': code})}"
    if request.url_rule is None or "GET" not in (request.url_rule.methods or ()):
        return url_for("pages.login", next=_next(), lang=code)
    return url_for(request.endpoint, **{**(request.view_args or {}), **request.args.to_dict(), "lang": code})


def _carry(form) -> None:
    if request.method == "GET":
        form.next.data = _next() or ""
        form.rid.data = request.args.get("rid", "") if is_anonymous_id(request.args.get("rid")) else ""
        form.amp_return.data = _amp_return() or ""


def _amp_return() -> str | None:
    """AMP's `return` when AMP's login flow opened this page (form first, then query), else None: the
    only login that links an AMP reader id, and the only page that returns there (`#success=true`)."""
    return amp_origins.login_return(g.site, request.form.get("amp_return") or request.args.get("return"))


def _result(kind: str, status: int = 200, next_url: str | None = None, **extra):
    return render_template("pages/message.html", kind=kind, next_url=next_url, **extra), status


def _onward(kind: str):
    """Back to AMP (`#success=true` tells its login flow to authorize again) when AMP opened the page,
    else to `next` (one of the site's origins) when there is one, else the result page `kind`."""
    back_to_amp = _amp_return()
    if back_to_amp:
        return redirect(back_to_amp + "#success=true", 303)
    target = _next()
    return redirect(target, 303) if target else make_response(*_result(kind))


# --- register and activation ------------------------------------------------------------------


@bp.route("/register", methods=["GET", "POST"])
@ratelimit.pages.register_ip
def register_page():
    form = RegisterForm()
    _carry(form)
    if form.validate_on_submit():
        if form.website.data:  # the honeypot was filled: answer as if all went well, do nothing
            session["pending"] = {"email": form.email.data, "site": g.site.id}
            return redirect(url_for("pages.activation_sent", next=_next()), 303)
        try:
            register.register(g.site, form.email.data, form.password.data, g.lang, _next(), cookies.anonymous_id())
        except register.RegistrationError as exc:
            field = form.email if exc.field == "email" else form.password
            field.errors = [*field.errors, _("Enter a valid email address.") if exc.field == "email" else exc.message]
        else:
            session["pending"] = {"email": emails.normalise(form.email.data), "site": g.site.id}
            return redirect(url_for("pages.activation_sent", next=_next()), 303)
    status = 422 if form.errors else 200
    return render_template("pages/register.html", form=form), status


def _pending() -> dict | None:
    pending = session.get("pending")
    if not isinstance(pending, dict) or pending.get("site") != g.site.id or not isinstance(pending.get("email"), str):
        return None
    return pending


def _budget_wait(address: str) -> int:
    """Seconds until this address may be mailed again (the mail budget, the same for any address)."""
    try:
        return mail_budget.wait(g.site.id, emails.lookup_key(emails.normalise(address)))
    except emails.BadEmail:
        return 0


@bp.route("/activation-sent", methods=["GET", "POST"])
@ratelimit.resend_ip
def activation_sent():
    pending = _pending()
    if pending is None:
        return redirect(url_for("pages.register_page", next=_next()), 303)
    form = ResendForm()
    status, resent, wait = 200, False, 0
    if form.validate_on_submit():
        try:
            confirm.resend(g.site, pending["email"], _next())
            resent = True
        except mail_budget.Spent as exc:
            status, wait = 429, exc.retry_after
    elif request.method == "POST":
        status = 400
    wait = wait or _budget_wait(pending["email"])
    form.next.data = _next() or ""
    page = render_template("pages/activation_sent.html", form=form, email=pending["email"], wait=wait, resent=resent)
    headers = {"Retry-After": str(wait)} if status == 429 else {}
    return page, status, headers


@bp.post("/resend-activation")
@ratelimit.resend_ip
def resend_activation():
    """From the "link expired" page: a new link to an address typed in (same answer whether it exists;
    over the address's mail budget, the "too many attempts" page)."""
    form = EmailForm()
    if not form.validate_on_submit():
        return _result("expired", 422, form=form)
    try:
        address = emails.normalise(form.email.data)
    except emails.BadEmail:
        form.email.errors = [_("Enter a valid email address.")]
        return _result("expired", 422, form=form)
    confirm.resend(g.site, address, _next())
    session["pending"] = {"email": address, "site": g.site.id}
    return redirect(url_for("pages.activation_sent", next=_next()), 303)


@bp.route("/activate/<token>", methods=["GET", "POST"])
def activate(token: str):
    form = ConfirmForm()
    if request.method == "GET":
        return render_template("pages/activate_confirm.html", token=token, form=form)
    if not form.validate_on_submit():
        abort(400)
    try:
        result = confirm.activate(g.site, token, cookies.anonymous_id(), device=this_device())
    except tokens.TokenError as exc:
        if exc.kind == "expired":
            return _result("expired", 400, form=EmailForm(formdata=None))
        return _result("invalid", 400)
    if not result.reader_token:
        return _result("already", next_url=result.next_url)
    session.pop("pending", None)
    page, status = _result("done", next_url=result.next_url)
    response = make_response(page, status)
    cookies.set_reader_token(response, g.site, result.reader_token)
    return response


# --- log in and out, passwords ----------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@ratelimit.pages.login_fail_ip
@ratelimit.pages.login_fail_account
def login():
    form = LoginForm()
    _carry(form)
    if form.validate_on_submit():
        result = sessions.login(
            g.site, form.email.data, form.password.data, cookies.anonymous_id(), device=this_device()
        )
        if result is None:
            g.login_failed = True  # counted by the failed-login limits
            form.password.errors = [_("The email or password is not correct.")]
        else:
            token, reader = result
            if is_anonymous_id(form.rid.data) and _amp_return():
                amp_readers.link(g.site, form.rid.data, reader, device=this_device())
            response = _onward("logged_in")
            cookies.set_reader_token(response, g.site, token)
            return response
    status = 422 if form.errors else 200
    return render_template("pages/login.html", form=form), status


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    form = LogoutForm()
    _carry(form)
    if request.method == "GET":  # a link may not log anyone out: the page asks, its form POSTs
        return render_template("pages/logout.html", form=form)
    if not form.validate_on_submit():
        abort(400)
    token = cookies.reader_token(g.site)
    if token:
        _end_amp_session(form.rid.data, token)
        sessions.logout(g.site, token)
    signed_out_here()
    response = _onward("logged_out")
    cookies.clear_reader_token(response, g.site)
    return response


def _end_amp_session(rid: str | None, token: str) -> None:
    """AMP's sign-out (the logout page with its `rid`): that rid's AMP session ends too, when it is the
    signed-in reader's."""
    check = sessions.check_token(g.site, token)
    if is_anonymous_id(rid) and check.reader_id is not None:
        with contextlib.suppress(RedisUnavailable):  # (the link is then ended from the account page)
            amp_readers.unlink(g.site, rid, check.reader_id)


@bp.route("/forgot-password", methods=["GET", "POST"])
@ratelimit.pages.reset_ip
@ratelimit.pages.reset_email
def forgot_password():
    form = EmailForm()
    _carry(form)
    if form.validate_on_submit():
        recover.request_reset(g.site, form.email.data)  # the same answer whether the address is known
        return _result("reset_sent", next_url=_next())
    status = 422 if form.errors else 200
    return render_template("pages/forgot_password.html", form=form), status


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    form = ResetForm()
    if form.validate_on_submit():
        try:
            reader_token = recover.confirm_reset(g.site, token, form.password.data, device=this_device())
        except tokens.TokenError as exc:
            return _result("expired_reset" if exc.kind == "expired" else "invalid", 400)
        response = make_response(*_result("reset_done"))
        cookies.set_reader_token(response, g.site, reader_token)
        return response
    status = 422 if form.errors else 200
    return render_template("pages/reset_password.html", token=token, form=form), status


def init_app(app: Flask) -> None:
    from meter.platform import error_pages as errors

    app.register_blueprint(bp)
    errors.init_app(app, lookup.site_by_slug)
