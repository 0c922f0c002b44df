"""Sign in and register with another account: the pages under `/<site>/login/<provider>`.

- `GET  /<site>/login/<provider>?next=URL` starts: a redirect to the provider (state, nonce, PKCE).
- `GET|POST /<site>/login/<provider>/callback` finishes (POST: Apple's form post, exempt from the
  forms' CSRF token: the `state`, used once and bound to this browser, stands in for it). The reader
  is signed in exactly as after the login page: meter's reader cookie, an AMP `rid` linked, back to
  `next` only on one of the site's origins.
- `GET|POST /<site>/login/<provider>/address`: the provider gave no verified address; ask for one
  and mail a link there (a mail that asks to connect the identity to the address's account, or one
  that finishes the sign-in; the page that answers is the same either way).
- `GET|POST /<site>/login/<provider>/link/<token>`: that link. A GET shows what it does (the provider,
  the identity, the account) and a button; only the POST of that button, with its CSRF token, links.
  Nothing submits it by script: a mail scanner that opens links and runs pages links nothing.
- `POST /<site>/login/<provider>/connect`: the account page's "connect" button (CSRF); the sign-in it
  starts carries the reader and the session, and links the identity to them on the way back.

Every failure (cancelled at the provider, a wrong or used state, an error from the provider, an ID
token that fails a check, a provider that cannot be reached) is a page in the reader's language with
a way back to the login page; nothing is created. No code, token or secret is ever logged: the
request log names the route pattern, and failures log their kind and the exception's class.
"""

from __future__ import annotations

import logging
import time

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import refresh
from joserfc.errors import JoseError

from meter.access import amp_origins, amp_readers
from meter.accounts import (
    ActionForm,
    ConfirmForm,
    EmailForm,
    emails,
    mail_budget,
    reader_pages,
    safe_next,
    sessions,
    this_device,
)
from meter.accounts import rate_limits as ratelimit
from meter.platform import cookies, metrics, tokens
from meter.platform.csrf import csrf
from meter.platform.i18n import LOCALES
from meter.platform.identifiers import is_anonymous_id
from meter.social import oauth_clients as clients
from meter.social.rules import accounts, providers
from meter.social.rules import state as social_state
from meter.social.rules.sealing import SealError

log = logging.getLogger(__name__)
bp = Blueprint("social", __name__, url_prefix="/<site_slug>/login")
PENDING_SECONDS = 900  # how long the ask-for-an-address page keeps a sign-in that gave no address
UNREACHABLE = (requests.ConnectionError, requests.Timeout)


reader_pages.install(bp)


@bp.context_processor
def language_links() -> dict:
    """The language links of these pages lead to the login page (the callback and the mail link must not be
    requested twice); the address form is shown again in the other language."""

    def lang_url(code: str) -> str:
        if request.endpoint == "social.address" and request.method == "GET":
            return url_for("social.address", **(request.view_args or {}), lang=code)
        return url_for("pages.login", next=g.get("social_next"), lang=code)

    return {"lang_url": lang_url}


class _Unopenable(Exception):
    """The provider's secret opens with no configured key: an operator's mistake, told to the reader kindly."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@bp.errorhandler(_Unopenable)
def _unopenable(exc: _Unopenable):
    log.error("the secret of sign-in provider %r of %s cannot be opened (SECRET_KEY changed?)", exc.name, g.site.slug)
    metrics.social_failure(g.site.slug, exc.name, "unavailable")
    return render_template("social/failed.html", kind="unavailable", label=exc.name, next_url=None), 503


def _provider(name: str) -> providers.Provider:
    try:
        found = providers.get(g.site, name)
    except SealError:
        raise _Unopenable(name) from None
    if found is None:
        abort(404)
    return found


def _failed(config: providers.Provider, kind: str, status: int, exc: BaseException | None = None):
    """The failure page; counted and logged by kind (and the exception's class, never its text)."""
    metrics.social_failure(g.site.slug, config.name, kind)
    log.warning(
        "sign-in with %s failed: %s",
        config.name,
        kind,
        extra={"provider": config.name, "failure": kind, "error": type(exc).__name__ if exc else None},
    )
    page = render_template("social/failed.html", kind=kind, label=config.label, next_url=g.get("social_next"))
    return page, status


# --- start and finish ------------------------------------------------------------------------------


@bp.get("/<provider>")
@ratelimit.social_ip
def start(provider: str):
    config = _provider(provider)
    next_url = safe_next(g.site, request.args.get("next"))
    g.social_next = next_url
    rid = request.args.get("rid")
    # An AMP reader id is linked only when AMP's login flow opened the sign-in (its `return`).
    amp_return = amp_origins.login_return(g.site, request.args.get("return"))
    linked = rid if is_anonymous_id(rid) and amp_return else None
    return _to_provider(config, {"next": next_url, "rid": linked, "amp_return": amp_return, "lang": g.lang})


@bp.post("/<provider>/connect")
@ratelimit.social_ip
def connect(provider: str):
    """The account page's "connect": a sign-in at the provider whose state names this reader and session."""
    config = _provider(provider)
    if not ActionForm().validate_on_submit():
        abort(400)
    token = cookies.reader_token(g.site)
    _status, reader = sessions.live_reader(g.site, token)
    if reader is None:
        return redirect(url_for("pages.login", next=url_for("pages.account")), 303)
    sid = sessions.check_token(g.site, token).session_id
    return _to_provider(config, {"connect": {"r": reader.id, "s": sid}, "lang": g.lang})


def _to_provider(config: providers.Provider, extra: dict):
    # A fresh binding per start: a value planted in this browser beforehand (cookie tossing) binds nothing.
    binding = social_state.new_binding()
    try:
        response = clients.start(config, g.site.slug, binding, extra)
    except social_state.StateUnavailable as exc:
        return _failed(config, "unavailable", 503, exc)
    except UNREACHABLE as exc:
        return _failed(config, "unreachable", 502, exc)
    except (requests.RequestException, ValueError, clients.ProviderFailure) as exc:
        return _failed(config, "provider_error", 502, exc)
    cookies.set_binding(response, g.site, clients.BINDING_COOKIE, binding, current_app.config["SOCIAL_STATE_TTL"])
    return response


@bp.route("/<provider>/callback", methods=["GET", "POST"])
@csrf.exempt
def callback(provider: str):
    config = _provider(provider)
    try:
        error = request.values.get("error")
        if error:
            _carried(clients.abandon(config))
            kind = "cancelled" if error in clients.CANCELLED else "provider_error"
            return _failed(config, kind, 400 if kind == "cancelled" else 502)
        try:
            profile = clients.finish(config)
        finally:
            _carried(g.get("social_state"))
        connecting = (g.get("social_state") or {}).get("connect")
        if connecting:
            return _connected(config, profile, connecting)
        outcome = accounts.sign_in(g.site, provider, profile, g.lang, cookies.anonymous_id(), device=this_device())
    except social_state.StateUnavailable as exc:
        return _failed(config, "unavailable", 503, exc)
    except MismatchingStateError as exc:
        return _failed(config, "state", 400, exc)
    except clients.IssuerMismatch as exc:
        return _failed(config, "provider_error", 400, exc)
    except OAuthError as exc:
        return _failed(config, "provider_error", 502, exc)
    except JoseError as exc:
        return _failed(config, "id_token", 502, exc)
    except UNREACHABLE as exc:
        return _failed(config, "unreachable", 502, exc)
    except (requests.RequestException, ValueError, clients.ProviderFailure) as exc:
        return _failed(config, "provider_error", 502, exc)
    carried = g.get("social_state") or {}
    if isinstance(outcome, accounts.NeedsAddress):
        session["social_pending"] = {
            "site": g.site.id,
            "provider": provider,
            "subject": profile.subject,
            "email": profile.email,
            "name": accounts.shown(profile.name),
            "next": g.get("social_next"),
            "rid": carried.get("rid"),
            "until": time.time() + PENDING_SECONDS,
        }
        return redirect(url_for("social.address", provider=provider), 303)
    back_to_amp = amp_origins.login_return(g.site, carried.get("amp_return"))  # AMP's login flow: back with success
    onward = f"{back_to_amp}#success=true" if back_to_amp else g.get("social_next")
    return _signed_in(outcome, onward, carried.get("rid"))


def _carried(data: dict | None) -> None:
    """What the started sign-in carried: where to return, and the reader's language (Apple's cross-site
    form post brings no language cookie)."""
    if not data:
        return
    g.social_next = safe_next(g.site, data.get("next"))
    if data.get("lang") in LOCALES and data["lang"] != g.lang:
        g.lang = data["lang"]
        refresh()


def _connected(config: providers.Provider, profile: accounts.Profile, connecting: object):
    """Back from the provider for the account page's "connect": link, and back to the account page."""
    asked = connecting if isinstance(connecting, dict) else {}
    to_account = redirect(url_for("pages.account"), 303)
    try:
        added = accounts.connect(g.site, config.name, profile, asked.get("r"), asked.get("s"))
    except accounts.ConnectRefused as exc:
        if exc.kind == "signed_out":
            return redirect(url_for("pages.login", next=url_for("pages.account")), 303)
        flash(
            _(
                "This %(provider)s account signs in to another account already. Nothing was changed.",
                provider=config.label,
            )
        )
        return to_account
    if added:
        flash(_("%(provider)s now signs you in. We have emailed you a notice.", provider=config.label))
    else:
        flash(_("%(provider)s already signs you in.", provider=config.label))
    return to_account


def _signed_in(outcome: accounts.SignedIn, next_url: str | None, rid: str | None):
    if is_anonymous_id(rid):
        amp_readers.link(g.site, rid, outcome.reader, device=this_device())
    if next_url:
        response = redirect(next_url, 303)
    else:
        kind = "done" if outcome.created else "logged_in"
        response = make_response(render_template("pages/message.html", kind=kind, next_url=None))
    cookies.set_reader_token(response, g.site, outcome.reader_token)
    return response


# --- no verified address: ask for one, mail the link ---------------------------------------------


def _pending(provider: str) -> dict | None:
    pending = session.get("social_pending")
    if (
        not isinstance(pending, dict)
        or pending.get("site") != g.site.id
        or pending.get("provider") != provider
        or not accounts.valid_subject(pending.get("subject"))
        or not isinstance(pending.get("until"), int | float)
        or pending["until"] < time.time()
    ):
        return None
    return pending


@bp.route("/<provider>/address", methods=["GET", "POST"])
@ratelimit.pages.register_ip
def address(provider: str):
    config = _provider(provider)
    pending = _pending(provider)
    if pending is None:
        return redirect(url_for("pages.login"), 303)
    g.social_next = safe_next(g.site, pending.get("next"))
    form = EmailForm()
    if request.method == "GET" and isinstance(pending.get("email"), str):
        form.email.data = pending["email"]
    if form.validate_on_submit():
        try:
            chosen = emails.normalise(form.email.data)
        except emails.BadEmail:
            form.email.errors = [_("Enter a valid email address.")]
        else:
            name = pending.get("name") if isinstance(pending.get("name"), str) else None
            profile = accounts.Profile(pending["subject"], pending.get("email"), False, name)
            mail_budget.spend(g.site.id, emails.lookup_key(chosen))  # the address's one budget (Spent: a 429 page)
            accounts.request_link(g.site, provider, profile, chosen, g.lang, g.social_next)
            session.pop("social_pending", None)
            return render_template("social/link_sent.html", email=chosen, label=config.label)
    status = 422 if form.errors else 200
    return render_template("social/address.html", form=form, label=config.label, provider=provider), status


@bp.route("/<provider>/link/<token>", methods=["GET", "POST"])
def link(provider: str, token: str):
    config = _provider(provider)
    form = ConfirmForm()
    try:
        if request.method == "GET":
            mailed = accounts.read_link(g.site, provider, token)
            context = {"email": mailed.address, "who": mailed.who, "existing": mailed.existing}
            return render_template(
                "social/link_confirm.html", token=token, form=form, provider=provider, label=config.label, **context
            )
        if not form.validate_on_submit():
            abort(400)
        outcome = accounts.confirm_link(g.site, provider, token, cookies.anonymous_id(), device=this_device())
    except tokens.TokenError as exc:
        kind = "link_expired" if exc.kind == "expired" else "link_invalid"
        return _failed(config, kind, 400, exc)
    response = make_response(render_template("pages/message.html", kind="done", next_url=outcome.next_url))
    cookies.set_reader_token(response, g.site, outcome.reader_token)
    return response


def init_app(app: Flask) -> None:
    logging.getLogger("authlib").setLevel(logging.INFO)  # its debug lines print code verifiers
    app.register_blueprint(bp)
