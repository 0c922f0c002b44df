"""A meter's rules by arrival (the policy's `rules`, `meters.koran.rules`), for editors: one page per
meter, the default one included, with the change shown before it is saved, as on the policy page.

The form is the meter's ordered list, one rule a line (`search: search +1`, `ramadan: campaign
ramadan +3`; the first that matches decides): it changes only that meter's rules, nothing else of
the policy. Each save is audited (`policy.change`, the rules before and after).
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from meter.console.forms import RulesForm
from meter.console.rules import site_admin
from meter.console.views.auth import view
from meter.console.views.previewed import preview_or_save
from meter.sites import METER_NAME, PolicyError, RuleError, merge, normalise, parse_lines, rules_text

DEFAULT = "default"


def _key(meter_name: str) -> str:
    return "rules" if meter_name == DEFAULT else f"meters.{meter_name}.rules"


def _rules_of(policy: dict, meter_name: str) -> list[dict]:
    policy = normalise(policy)
    holder = policy if meter_name == DEFAULT else policy.get("meters", {}).get(meter_name, {})
    return holder.get("rules", [])


def _page(form: RulesForm, name: str, status: int = 200, **extra):
    return render_template("console/policy_rules.html", form=form, name=name, **extra), status


def _refused(form: RulesForm, name: str, exc: ValueError):
    """The form again, its field saying what is wrong (the line, or the rule and its key)."""
    form.rules.errors = [_("This rule cannot be: %(why)s", why=str(exc))]
    return _page(form, name, 422)


@view("/policy/rules/<meter_name>", "editor", methods=("GET", "POST"))
def rules(meter_name: str):
    """GET: the meter's rules. POST with `preview`: the change; with `save`: saved as previewed (shown
    again if the policy changed meanwhile)."""
    site = g.site_row
    if meter_name != DEFAULT and (
        not METER_NAME.match(meter_name) or meter_name not in normalise(site.policy).get("meters", {})
    ):
        abort(404)
    if request.method == "GET":
        form = RulesForm(data={"rules": rules_text(_rules_of(site.policy, meter_name)), "base": ""})
        form.base.data = site_admin.version(site.policy)
        return _page(form, meter_name)
    form = RulesForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _page(form, meter_name, 422)
    try:
        sent = {_key(meter_name): parse_lines(form.rules.data or "") or None}
        asked = merge(site.policy, sent)
    except (RuleError, PolicyError) as exc:
        return _refused(form, meter_name, exc)
    step = preview_or_save(site, form, sent, asked)
    if step.saved:
        flash(
            _("The policy is saved: the next access checks follow it.") if step.changes else _("Nothing changed."),
            "notice",
        )
        return redirect(url_for("console.rules", site_slug=g.site.slug, meter_name=meter_name), 303)
    return _page(form, meter_name, changes=step.changes, preview=True, shown=step.shown)
