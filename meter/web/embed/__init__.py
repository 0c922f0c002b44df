"""The embed: `GET /embed/meter.js`, the script a publisher adds to its article pages, and the
browser-facing endpoints it calls on meter's own origin.

`POST /embed/<site>/access` answers the access check for the reader of this browser, found by
meter's own cookies (the login cookie the reader pages set, or an anonymous id cookie set here); no
API key is in the page. CORS answers only the site's origins, with credentials; a request from any
other origin (or with none) is refused before anything is counted. The answer carries the wall to
show, already in the reader's language, so the script holds no strings. The script asks with
`record: false` while the page is being prerendered and counts only once it is shown.
`POST /embed/<site>/resend` sends the activation mail again to the logged-in, unverified reader.
"""

from __future__ import annotations

import json
from importlib import resources

from flask import Blueprint, Flask, Response, current_app, g, request, url_for
from flask_babel import format_date, ngettext
from flask_babel import gettext as _

from meter.domain import judge
from meter.domain.accounts import confirm, mail_budget
from meter.domain.accounts.common import safe_next
from meter.domain.accounts.sessions import live_reader
from meter.domain.metering import Decision
from meter.domain.sites import normalise_origin
from meter.web import cookies, ratelimit, validation
from meter.web.csrf import csrf
from meter.web.http import site_or_404
from meter.web.i18n import choose_language
from meter.web.problems import Problem
from meter.web.validation import json_body

bp = Blueprint("embed", __name__, url_prefix="/embed")
SCRIPT = resources.files(__package__).joinpath("meter.js")


@bp.get("/meter.js")
def script() -> Response:
    response = Response(SCRIPT.read_bytes(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.url_value_preprocessor
def load_site(_endpoint, values) -> None:
    if values and "site_slug" in values:
        g.site = site_or_404(values.pop("site_slug"))
        g.lang = choose_language()


def _allowed_origin() -> str | None:
    """The request's Origin when it is one of the site's own origins, else None."""
    origin = request.headers.get("Origin", "")
    if not origin or normalise_origin(origin) != origin or origin not in g.site.origins:
        return None
    return origin


def _cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
        "Cache-Control": "no-store",
    }


def _cors() -> dict[str, str]:
    """Only the site's own origins; anything else is refused before the body is read."""
    origin = _allowed_origin()
    if origin is None:
        raise Problem(403, "origin-refused", "Origin refused", "Only the site's own pages may ask.")
    return _cors_headers(origin)


@bp.after_request
def _cors_on_errors(response: Response) -> Response:
    """A refusal after the Origin was accepted (bad body, too large, database away) carries the CORS
    headers too, so that meter.js on the site's page can read it instead of seeing a network error."""
    if "site" in g and "Access-Control-Allow-Origin" not in response.headers:
        origin = _allowed_origin()
        if origin is not None:
            response.headers.update(_cors_headers(origin))
    return response


def _page_url(body: dict, name: str) -> str | None:
    value = body.get(name)
    return safe_next(g.site, value) if isinstance(value, str) else None


def _meter_url(endpoint: str, **values) -> str:
    base = current_app.config["PUBLIC_BASE_URL"]
    return base + url_for(endpoint, site_slug=g.site.slug, lang=g.lang, **values)


def _wall(decision: Decision, page: str | None, subscribe: str | None) -> dict | None:
    if decision.allowed:
        return None
    login = {"label": _("Log in"), "url": _meter_url("pages.login", next=page), "kind": "login"}
    if decision.reason == "registration_required":
        quota = g.site.policy.quota_verified
        return {
            "kind": "register",
            "title": _("Register to keep reading"),
            "body": ngettext(
                "Register for free and confirm your email to read %(num)d free article.",
                "Register for free and confirm your email to read %(num)d free articles.",
                quota,
            ),
            "actions": [
                {"label": _("Register here"), "url": _meter_url("pages.register_page", next=page), "kind": "register"},
                login,
            ],
        }
    if decision.reason == "verification_required":
        return {
            "kind": "verify",
            "title": _("Confirm your email to keep reading"),
            "body": _("We sent an activation link to your email. Open it to read more articles."),
            "actions": [{"label": _("Resend now"), "url": None, "kind": "resend"}],
        }
    subscribe_action = {"label": _("Subscribe"), "url": subscribe or "#", "kind": "subscribe"}
    if decision.reason == "subscription_required":
        return {
            "kind": "subscribe",
            "title": _("This article is for subscribers"),
            "body": _("Subscribe to read Laporan Utama and every article."),
            "actions": [subscribe_action, login],
        }
    return {
        "kind": "quota",
        "title": _("You have read all your free articles"),
        "body": _(
            "Subscribe to keep reading. Your free articles come back on %(date)s.",
            date=format_date(decision.period_end, "long"),
        ),
        "actions": [subscribe_action],
    }


@bp.route("/<site_slug>/access", methods=["POST", "OPTIONS"])
def access() -> Response:
    headers = _cors()
    if request.method == "OPTIONS":
        return Response(status=204, headers=headers)
    body = json_body()
    if not isinstance(body, dict) or not isinstance(body.get("article"), dict):
        raise Problem(422, "validation-failed", "Validation failed", "article is required.", {"article": "required"})
    item = validation.article(body["article"].get("id"), body["article"].get("class"))
    record = body.get("record", True)
    if not isinstance(record, bool):
        raise Problem(422, "validation-failed", "Validation failed", "record is true or false.", {"record": "bool"})
    anonymous_id = cookies.anonymous_id()
    new_anonymous = anonymous_id is None
    if new_anonymous:
        anonymous_id = cookies.new_anonymous_id()
    decision, logged_in, _token = judge.decide(
        g.site, item.id, item.class_, record, reader_token=cookies.reader_token(g.site), anonymous_id=anonymous_id
    )
    meter = decision.meter()
    banner = None
    if decision.allowed and decision.reason in ("unlocked_now", "already_unlocked", "would_unlock") and meter["limit"]:
        left = meter["remaining"]
        banner = ngettext("%(num)d free article left", "%(num)d free articles left", left)
    answer = {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "state": decision.state,
        "logged_in": logged_in,
        "meter": meter,
        "banner": banner,
        "wall": _wall(decision, _page_url(body, "url"), _page_url(body, "subscribe_url") or g.site.subscribe_url),
        "colour": g.site.colour,
        "degraded": decision.degraded,
    }
    response = Response(json.dumps(answer), mimetype="application/json", headers=headers)
    if new_anonymous:
        cookies.set_anonymous_id(response, anonymous_id)
    return response


@bp.route("/<site_slug>/resend", methods=["POST", "OPTIONS"])
def resend() -> Response:
    headers = _cors()
    if request.method == "OPTIONS":
        return Response(status=204, headers=headers)
    try:
        ratelimit.enforce(ratelimit.RESEND_IP)  # after the Origin check: a foreign page spends nothing
        _status, reader = live_reader(g.site, cookies.reader_token(g.site))
        if reader is None:
            raise Problem(401, "unauthorized", "Unauthorized", "Log in first.", headers=headers)
        confirm.resend(g.site, reader.email)  # the address's mail budget, shared with every other path
    except (ratelimit.RateLimited, mail_budget.Spent) as exc:
        answer = {"status": "wait", "retry_after": exc.retry_after, "message": _("Wait a moment before asking again.")}
        return Response(
            json.dumps(answer),
            429,
            mimetype="application/json",
            headers={**headers, "Retry-After": str(exc.retry_after)},
        )
    wait = mail_budget.wait(g.site.id, reader.email_key)
    answer = {"status": "sent", "retry_after": wait, "message": _("Sent. Check your email.")}
    return Response(json.dumps(answer), mimetype="application/json", headers=headers)


def init_app(app: Flask) -> None:
    csrf.exempt(bp)  # the Origin check above stands in for CSRF tokens: only the site's pages may ask
    app.register_blueprint(bp)
