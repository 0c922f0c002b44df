"""The reader's own account page, "Akun Saya": `/{site}/account` and the forms it posts to.

What the API's X-Reader-Token rows do (`meter.accounts.views.api_me`), for a reader signed in with meter's
cookie: the address and its state, the ways to sign in (a provider can be removed while another
way remains), the password, the address, the sessions (AMP reader ids linked by AMP's login among
them) each with "end" and all with "end all other sessions", a copy of the data, and deleting the
account. A provider the reader has not connected has a "connect" button (`meter.social.views.pages`), the
one way a signed-in owner adds one. Not signed in (or a session ended elsewhere): to the login page,
which returns here. Every change is a POST with the form's CSRF token; a change that proves the
password counts against RATELIMIT_ACCOUNT_CHANGE. Links mailed by these forms (the new address's
confirmation, the deletion of an account without a password) open a page that POSTs, as the
activation link does: a mail scanner that follows links changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Response, abort, flash, g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_date, format_time
from flask_babel import gettext as _

from meter.access import amp_readers
from meter.accounts import rate_limits as ratelimit
from meter.accounts.client import this_device
from meter.accounts.forms import ActionForm, DeletionForm, EmailChangeForm, EndSessionForm, PasswordChangeForm
from meter.accounts.models import Reader
from meter.accounts.rules import devices, passwords, profile, sessions
from meter.accounts.views.pages import _result, bp, signed_out_here
from meter.platform import cookies, tokens
from meter.platform.redis_conn import RedisUnavailable
from meter.reader_data import erasure, export
from meter.social import accounts as social_accounts


class NotSignedIn(Exception):
    """No live session in this browser: the view answers with the login page's address."""


def _signed_in() -> tuple[Reader, str]:
    """The reader of meter's cookie, its session alive, and the session's id; raise NotSignedIn."""
    token = cookies.reader_token(g.site)
    _status, reader = sessions.live_reader(g.site, token)
    if reader is None:
        raise NotSignedIn()
    return reader, sessions.check_token(g.site, token).session_id


@bp.errorhandler(NotSignedIn)
def _to_login(_exc: NotSignedIn):
    """To the login page, which returns here; a login cookie whose session has ended is dropped on the way
    (the header would still offer "Akun Saya" for it)."""
    response = redirect(url_for("pages.login", next=url_for("pages.account")), 303)
    if cookies.reader_token(g.site):
        cookies.clear_reader_token(response, g.site)
    return response


def _when(moment) -> str:
    """A stored time as the reader reads it: date and hour in the site's time zone, in their language."""
    return f"{format_date(moment, 'medium')} {format_time(moment, 'short')}"


def _place(network: str | None, here: str | None) -> str | None:
    """Where a session logged in from, as far as its network tells: this one, or which."""
    if network is None:
        return None
    return _("This network") if network == here else _("Network %(network)s", network=network)


def _provider_labels() -> dict[str, str]:
    return {name: label for name, _kind, label in g.site.login_providers}


def _page(reader: Reader, sid: str, status: int = 200, **forms):
    """The account page, with `forms` (a form that failed, with its errors) in place of fresh ones."""
    logins = social_accounts.logins(reader)
    has_password = passwords.usable(reader.password_hash)
    labels = _provider_labels()
    methods = [
        {"name": name, "label": labels.get(name, name), "removable": has_password or len(logins) > 1}
        for name in logins
        if name != "password"
    ]
    connectable = [{"name": name, "label": label} for name, label in labels.items() if name not in logins]
    here = devices.network(request.remote_addr)
    rows = [
        {
            "id": row.id,
            "device": devices.split(row.device)[0],
            "place": _place(devices.split(row.device)[1], here),
            "last_used": _when(row.last_used_at or row.created_at),
            "current": row.id == sid,
            "amp": amp_readers.is_amp_session(row.id),  # "AMP · when linked · browser"
            "linked": _when(row.created_at),
        }
        for row in sessions.live_sessions(reader)
    ]
    rows.sort(key=lambda row: not row["current"])  # this device first, then the others, last used first
    until = reader.subscription_until if reader.is_subscriber() else None
    context = {
        "reader": reader,
        "has_password": has_password,
        "methods": methods,
        "connectable": connectable,
        "sessions": rows,
        "subscriber_until": format_date(until, "long") if until else None,
        "password_form": forms.get("password_form") or PasswordChangeForm(formdata=None),
        "email_form": forms.get("email_form") or EmailChangeForm(formdata=None),
        "delete_form": forms.get("delete_form") or DeletionForm(formdata=None),
        "action_form": ActionForm(formdata=None),
    }
    return render_template("pages/account.html", **context), status


@bp.get("/account")
def account():
    reader, sid = _signed_in()
    return _page(reader, sid)


def _back(message: str):
    flash(message)
    return redirect(url_for("pages.account"), 303)


@bp.post("/account/password")
@ratelimit.account_change
def account_password():
    reader, sid = _signed_in()
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            token = profile.change_password(
                g.site, reader, form.current_password.data, form.password.data, device=this_device()
            )
        except profile.ChangeError:
            form.password.errors = [_("The password needs at least %(min)d characters.", min=passwords.MIN_LENGTH)]
        except (profile.WrongPassword, profile.NoPassword):
            form.current_password.errors = [_("The password is not correct.")]
        else:
            response = _back(_("Your password has been changed. Every other device has been signed out."))
            cookies.set_reader_token(response, g.site, token)
            return response
    return _page(reader, sid, 422, password_form=form)


@bp.post("/account/email")
@ratelimit.account_change
def account_email():
    reader, sid = _signed_in()
    form = EmailChangeForm()
    if form.validate_on_submit():
        try:
            address = profile.request_email_change(g.site, reader, form.password.data, form.email.data)
        except profile.ChangeError as exc:
            form.email.errors = [_("This is already your address.") if exc.same else _("Enter a valid email address.")]
        except (profile.WrongPassword, profile.NoPassword):
            form.password.errors = [_("The password is not correct.")]
        else:
            return _back(_("We have sent a link to %(email)s. Your address changes when you open it.", email=address))
    return _page(reader, sid, 422, email_form=form)


def _mailed_link(kind: str, token: str, expired: str, use: Callable[[str], ResponseReturnValue]) -> ResponseReturnValue:
    """A link the account page mailed: a GET shows the button (mail scanners open links and must change
    nothing), the POST uses the token; an expired or bad one gets its page, 400."""
    form = ActionForm()
    if request.method == "GET":
        return render_template("pages/account_link.html", kind=kind, token=token, form=form)
    if not form.validate_on_submit():
        abort(400)
    try:
        return use(token)
    except tokens.TokenError as exc:
        return _result(expired if exc.kind == "expired" else "invalid", 400)


@bp.route("/account/email/<token>", methods=["GET", "POST"])
def confirm_email(token: str):
    def use(token: str) -> ResponseReturnValue:
        return _result("email_changed", email=profile.confirm_email_change(g.site, token).email)

    return _mailed_link("email", token, "expired_change", use)


@bp.post("/account/sessions/end-others")
def end_other_sessions():
    reader, sid = _signed_in()
    if not ActionForm().validate_on_submit():
        abort(400)
    sessions.end_other_sessions(reader, sid)
    return _back(_("Every other session has ended."))


@bp.post("/account/sessions/end")
def end_session():
    """End one other session (an AMP link, another device); this browser's own ends by logging out."""
    reader, sid = _signed_in()
    form = EndSessionForm()
    if not form.validate_on_submit():
        abort(400)
    if form.session.data == sid or not sessions.end_sessions(g.site.id, reader.id, [form.session.data]):
        abort(404)
    return _back(_("The session has ended."))


@bp.post("/account/sign-ins/<provider>/remove")
def remove_sign_in(provider: str):
    reader, _sid = _signed_in()
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        removed = social_accounts.remove_identities(reader, provider)
    except social_accounts.LastWayIn:
        return _back(_("This is your only way to sign in: set a password before removing it."))
    if not removed:
        abort(404)
    return _back(_("%(provider)s no longer signs you in.", provider=_provider_labels().get(provider, provider)))


@bp.get("/account/export")
def account_export():
    reader, _sid = _signed_in()
    body = json.dumps(export.export(g.site, reader), ensure_ascii=False, indent=2)
    response = Response(body, mimetype="application/json")
    name = f"{g.site.slug}-account-{reader.id}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _deleted():
    signed_out_here()
    response = make_response(*_result("deleted"))
    cookies.clear_reader_token(response, g.site)
    return response


def _erase(reader: Reader):
    try:
        erasure.erase(g.site, reader, "reader")
    except RedisUnavailable:
        abort(503)
    return _deleted()


@bp.post("/account/delete")
@ratelimit.account_change
def account_delete():
    reader, sid = _signed_in()
    form = DeletionForm()
    if not form.validate_on_submit():
        return _page(reader, sid, 422, delete_form=form)
    if not passwords.usable(reader.password_hash):
        erasure.request_deletion(g.site, reader)
        return _back(_("We have sent a link to %(email)s. Open it to confirm the deletion.", email=reader.email))
    try:
        profile.check_password(reader, form.password.data or "")
    except (profile.WrongPassword, profile.NoPassword):
        form.password.errors = [_("The password is not correct.")]
        return _page(reader, sid, 422, delete_form=form)
    return _erase(reader)


@bp.route("/account/delete/<token>", methods=["GET", "POST"])
def confirm_delete(token: str):
    return _mailed_link(
        "delete", token, "expired_delete", lambda token: _erase(erasure.reader_for_deletion(g.site, token))
    )
