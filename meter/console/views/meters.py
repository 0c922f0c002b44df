"""A site's named meters (the policy's `meters` and `sections`), for editors: one page per meter, its
change shown before it is saved, as on the policy page. The meter's form names its quotas, its
period and the sections that count in it; only what it posts changes (the rest of the policy, the
other meters, the sections of other meters keep theirs, unless a section is listed here and moves).
Removing a meter removes its sections with it, shown first too. Each save is audited (`policy.change`).
"""

from __future__ import annotations

import re

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from meter.console.forms import MeterForm, NewMeterForm
from meter.console.rules import site_admin
from meter.console.views.auth import view
from meter.console.views.previewed import preview_or_save
from meter.sites import DEFAULT_POLICY, MAX_METERS, METER_KEYS, METER_NAME, SECTION_NAME, PolicyError, merge, normalise

_ERRORS = {
    "period": _l("Write day, week, month, year or rolling:Nd (N from 1 to 999 days)."),
    "sections": _l("Sections are 1 to 64 of a-z, 0-9, _ and -, separated by commas."),
}


def _field(key: str) -> str:
    return key.replace(".", "_")


def _shown(policy: dict, name: str) -> MultiDict:
    """The meter's values as its form shows them (a meter not made yet: the defaults it would get)."""
    meter = normalise(policy).get("meters", {}).get(name) or {
        "quota": dict(DEFAULT_POLICY["quota"]),
        "period": DEFAULT_POLICY["period"],
    }
    values = {_field(f"quota.{state}"): str(n) for state, n in meter["quota"].items()}
    values["period"] = meter["period"]
    values["sections"] = ", ".join(sorted(s for s, m in normalise(policy).get("sections", {}).items() if m == name))
    return MultiDict(values)


def _sections(text: str) -> list[str] | None:
    """The sections typed (commas or spaces between them; any case), or None when one cannot be a section."""
    found = [part.lower() for part in re.split(r"[\s,]+", text.strip()) if part]
    return found if all(SECTION_NAME.match(section) for section in found) else None


def _page(form: MeterForm, name: str, exists: bool, status: int = 200, **extra):
    page = render_template("console/policy_meter.html", form=form, name=name, exists=exists, **extra)
    return page, status


@view("/policy/meters", "editor", methods=("POST",))
def new_meter():
    """A new meter's page, by its name (the meter is made when that page is saved)."""
    form = NewMeterForm()
    if not form.validate_on_submit() and form.csrf_token.errors:
        abort(400)
    name = (form.name.data or "").strip().lower()
    if not METER_NAME.match(name) or name == "default":
        flash(_("A meter's name is 1 to 32 of a-z, 0-9, _ and -, starting with a letter (not default)."), "error")
        return redirect(url_for("console.policy", site_slug=g.site.slug), 303)
    return redirect(url_for("console.meter", site_slug=g.site.slug, meter_name=name), 303)


@view("/policy/meters/<meter_name>", "editor", methods=("GET", "POST"))
def meter(meter_name: str):
    """GET: the meter's form. POST with `preview`: the change; with `save`: saved as previewed (shown
    again if the policy changed meanwhile). `remove`: the meter and its sections go, previewed too."""
    if not METER_NAME.match(meter_name) or meter_name == "default":
        abort(404)
    site = g.site_row
    exists = meter_name in normalise(site.policy).get("meters", {})
    if request.method == "GET":
        form = MeterForm(formdata=_shown(site.policy, meter_name))
        form.base.data = site_admin.version(site.policy)
        return _page(form, meter_name, exists)
    data = _shown(site.policy, meter_name)
    for field in request.form:
        data.setlist(field, request.form.getlist(field))
    form = MeterForm(formdata=data)
    removing = "remove" in request.form
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _page(form, meter_name, exists, 422)
    if removing:
        if not exists:
            abort(404)
        sent = site_admin.removal(site.policy, meter_name)
    else:
        sections = None
        if "sections" in request.form:
            sections = _sections(form.sections.data or "")
            if sections is None:
                form.sections.errors = [_ERRORS["sections"]]
                return _page(form, meter_name, exists, 422)
        keys = {}
        for key in METER_KEYS:
            if _field(key.name) in request.form:
                value = form[_field(key.name)].data
                keys[key.name] = value.strip() if isinstance(value, str) else value
        sent = site_admin.meter_changes(site.policy, meter_name, keys, sections)
    try:
        asked = merge(site.policy, sent)
    except PolicyError as exc:
        where = (exc.key or "").split(".")  # meters.koran.quota.verified, sections.laput, meters
        field = "sections" if where[0] == "sections" else _field(".".join(where[2:]))
        target = {f.name: f for f in form}.get(field, form.period)
        if exc.key == "meters":
            target.errors = [_("A site has at most %(n)d meters.", n=MAX_METERS)]
        else:
            target.errors = [_ERRORS.get(field, _l("This value is not allowed."))]
        return _page(form, meter_name, exists, 422)
    step = preview_or_save(site, form, sent, asked)
    if step.saved:
        if not step.changes:
            flash(_("Nothing changed."), "notice")
        elif removing:
            flash(_("Meter %(name)s is removed: its sections count in the default meter.", name=meter_name), "notice")
            return redirect(url_for("console.policy", site_slug=g.site.slug), 303)
        else:
            flash(_("The policy is saved: the next access checks follow it."), "notice")
        return redirect(url_for("console.meter", site_slug=g.site.slug, meter_name=meter_name), 303)
    return _page(form, meter_name, exists, changes=step.changes, preview=True, shown=step.shown, removing=removing)
