"""The site itself: the policy (editors; its change is shown before it is saved), and for owners the
API keys (a new key is shown once), grant keys (only their ids), origins and sign-in providers
(secrets never shown).
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from meter.console.forms import ActionForm, NewMeterForm, OriginForm, PolicyForm, ProviderForm
from meter.console.rules import site_admin
from meter.console.views.auth import view
from meter.console.views.previewed import preview_or_save
from meter.sites import SCHEMA, PolicyError, merge
from meter.social import providers

# What the policy's own check refuses, said in the member's language (its message is the operator's, in English).
_POLICY_ERRORS = {
    "timezone": _l("This is an unknown time zone: write an IANA name such as Asia/Jakarta."),
    "period": _l("Write day, week, month, year or rolling:Nd (N from 1 to 999 days)."),
}


def _field(key: str) -> str:
    """The form field of a policy key: quota.verified → quota_verified."""
    return key.replace(".", "_")


def _current(policy: dict) -> MultiDict:
    return MultiDict({_field(key): str(value) for key, value in site_admin.flat(policy).items()})


def _policy_form(policy: dict) -> PolicyForm:
    form = PolicyForm(formdata=_current(policy))
    form.base.data = site_admin.version(policy)
    return form


def _posted_form(policy: dict) -> PolicyForm:
    """The form as posted over the current policy: a field the post lacks (a page made before the field
    existed, a hand-made post) has the current value, and `_sent` leaves it out of the change."""
    data = _current(policy)
    for name in request.form:
        data.setlist(name, request.form.getlist(name))
    return PolicyForm(formdata=data)


def _sent(form: PolicyForm) -> dict:
    """The policy keys the post names, with the values typed: the change asks for these and no others."""
    sent = {}
    for key in SCHEMA:
        if _field(key.name) in request.form:
            value = form[_field(key.name)].data
            sent[key.name] = value.strip() if isinstance(value, str) else value
    return sent


def _policy_page(**context) -> str:
    """The policy page: its form, and the site's meters with the form that starts a new one."""
    return render_template("console/policy.html", meter_form=NewMeterForm(formdata=None), **context)


@view("/policy", "editor", methods=("GET", "POST"))
def policy():
    """GET: the form. POST with `preview`: the change, key by key, and a button to save exactly that.
    POST with `save`: saved, unless someone changed the policy since the preview (then shown again).
    Only the keys posted change: the change is merged onto the current policy, here and when saved."""
    site = g.site_row
    if request.method == "GET":
        return _policy_page(form=_policy_form(site.policy), changes=None)
    form = _posted_form(site.policy)
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _policy_page(form=form, changes=None), 422
    sent = _sent(form)
    try:
        asked = merge(site.policy, sent)
    except PolicyError as exc:
        field = form[_field(exc.key)] if exc.key and _field(exc.key) in form else form.period
        field.errors = [_POLICY_ERRORS.get(exc.key or "", _l("This value is not allowed."))]
        return _policy_page(form=form, changes=None), 422
    step = preview_or_save(site, form, sent, asked)
    if step.saved:
        flash(
            _("The policy is saved: the next access checks follow it.") if step.changes else _("Nothing changed."),
            "notice",
        )
        return redirect(url_for("console.policy", site_slug=g.site.slug), 303)
    return _policy_page(form=form, changes=step.changes, preview=True, shown=step.shown)


def _keys_page(new_key: str | None = None) -> str:
    site = g.site_row
    return render_template(
        "console/keys.html",
        keys=site_admin.keys(site),
        grant_keys=site_admin.grant_key_rows(site),
        action=ActionForm(),
        new_key=new_key,
    )


@view("/keys", "owner")
def keys():
    return _keys_page()


@view("/keys/new", "owner", methods=("POST",))
def new_key():
    if not ActionForm().validate_on_submit():
        abort(400)
    return _keys_page(site_admin.new_key(g.site_row, g.staff)), 201


@view("/keys/grants/new", "owner", methods=("POST",))
def new_grant_key():
    """The first grant key, or a rotation (the new key signs two minutes later)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    key = site_admin.new_grant_key(g.site_row, g.staff)
    flash(_("Grant key %(kid)s is made: it is in the JWK Set now.", kid=key.kid), "notice")
    return redirect(url_for("console.keys", site_slug=g.site.slug), 303)


@view("/keys/grants/retire", "owner", methods=("POST",))
def retire_grant_key():
    if not ActionForm().validate_on_submit():
        abort(400)
    kid = request.form.get("kid", "")[:64]
    if site_admin.retire_grant_key(g.site_row, kid, g.staff):
        flash(_("Grant key %(kid)s is retired: its grants are refused from now on.", kid=kid), "notice")
    else:
        flash(_("No published grant key %(kid)s.", kid=kid), "error")
    return redirect(url_for("console.keys", site_slug=g.site.slug), 303)


@view("/keys/revoke", "owner", methods=("POST",))
def revoke_key():
    if not ActionForm().validate_on_submit():
        abort(400)
    prefix = request.form.get("prefix", "")[:64]
    if site_admin.revoke_key(g.site_row, prefix, g.staff):
        flash(_("Key %(prefix)s… is revoked: it stops working within seconds.", prefix=prefix), "notice")
    else:
        flash(_("No live key starts with %(prefix)s.", prefix=prefix), "error")
    return redirect(url_for("console.keys", site_slug=g.site.slug), 303)


@view("/origins", "owner", methods=("GET", "POST"))
def origins():
    form = OriginForm()
    status = 200
    if form.validate_on_submit():
        try:
            origin = site_admin.add_origin(g.site_row, form.origin.data, g.staff)
        except ValueError:
            form.origin.errors = [_("Write an origin as https://host (a port may follow; no path).")]
        else:
            flash(_("%(origin)s is one of the site's origins.", origin=origin), "notice")
            return redirect(url_for("console.origins", site_slug=g.site.slug), 303)
    if form.errors:
        status = 422
    return render_template("console/origins.html", form=form, action=ActionForm()), status


@view("/origins/remove", "owner", methods=("POST",))
def remove_origin():
    if not ActionForm().validate_on_submit():
        abort(400)
    origin = request.form.get("origin", "")[:2048]
    if site_admin.remove_origin(g.site_row, origin, g.staff):
        flash(_("%(origin)s is no longer one of the site's origins.", origin=origin), "notice")
    return redirect(url_for("console.origins", site_slug=g.site.slug), 303)


@view("/providers", "owner", methods=("GET", "POST"))
def login_providers():
    form = ProviderForm()
    status = 200
    if form.validate_on_submit():
        fields = {f.short_name: (f.data or "").strip() for f in form if f.short_name != "csrf_token"}
        try:
            replaced = site_admin.save_provider(g.site_row, fields, g.staff)
        except providers.ProviderError as exc:
            form.name.errors = [str(exc)]
        else:
            flash(
                _("Provider %(name)s replaced.", name=fields["name"])
                if replaced
                else _("Provider %(name)s added.", name=fields["name"]),
                "notice",
            )
            return redirect(url_for("console.login_providers", site_slug=g.site.slug), 303)
    if form.errors:
        status = 422
    form.secret.data = ""  # a secret typed in is never sent back, not even to the one who typed it
    rows = providers.listing(g.site_row)
    return render_template("console/providers.html", form=form, rows=rows, action=ActionForm()), status


@view("/providers/remove", "owner", methods=("POST",))
def remove_provider():
    if not ActionForm().validate_on_submit():
        abort(400)
    name = request.form.get("name", "")[:32]
    if site_admin.remove_provider(g.site_row, name, g.staff):
        flash(_("Provider %(name)s removed; readers it signed in keep their accounts.", name=name), "notice")
    return redirect(url_for("console.login_providers", site_slug=g.site.slug), 303)
