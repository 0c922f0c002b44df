"""A meter's experiment (the policy's `experiment`, `meters.koran.experiment`), for editors: one page per
meter, the default one included, with the change shown before it is saved, as on the policy page.

The form is the experiment as JSON (its name, start, end and variants, each its share and quota:
docs/api.md "Experiments"); empty removes it. It changes only that meter's experiment, nothing else
of the policy; each save is audited (`policy.change`, the keys before and after). Its figures per
variant are on the dashboard; ending it and adopting a variant is `flask sites experiments end`.
"""

from __future__ import annotations

import json

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from meter.console.forms import ExperimentForm
from meter.console.rules import site_admin
from meter.console.views.auth import view
from meter.console.views.previewed import preview_or_save
from meter.sites import METER_NAME, PolicyError, merge, normalise

DEFAULT = "default"


def _key(meter_name: str) -> str:
    return "experiment" if meter_name == DEFAULT else f"meters.{meter_name}.experiment"


def _experiment_of(policy: dict, meter_name: str) -> dict | None:
    policy = normalise(policy)
    holder = policy if meter_name == DEFAULT else policy.get("meters", {}).get(meter_name, {})
    return holder.get("experiment")


def _page(form: ExperimentForm, name: str, status: int = 200, **extra):
    return render_template("console/policy_experiment.html", form=form, name=name, **extra), status


@view("/policy/experiment/<meter_name>", "editor", methods=("GET", "POST"))
def experiment(meter_name: str):
    """GET: the meter's experiment. POST with `preview`: the change; with `save`: saved as previewed
    (shown again if the policy changed meanwhile)."""
    site = g.site_row
    if meter_name != DEFAULT and (
        not METER_NAME.match(meter_name) or meter_name not in normalise(site.policy).get("meters", {})
    ):
        abort(404)
    if request.method == "GET":
        given = _experiment_of(site.policy, meter_name)
        form = ExperimentForm(data={"experiment": json.dumps(given, indent=2) if given else "", "base": ""})
        form.base.data = site_admin.version(site.policy)
        return _page(form, meter_name)
    form = ExperimentForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _page(form, meter_name, 422)
    text = (form.experiment.data or "").strip()
    try:
        sent = {_key(meter_name): json.loads(text) if text else None}
        asked = merge(site.policy, sent)
    except ValueError as exc:  # PolicyError, or JSON that is not
        why = str(exc) if isinstance(exc, PolicyError) else _("it is not JSON (%(why)s)", why=str(exc))
        form.experiment.errors = [_("This experiment cannot be: %(why)s", why=why)]
        return _page(form, meter_name, 422)
    step = preview_or_save(site, form, sent, asked)
    if step.saved:
        flash(
            _("The policy is saved: the next access checks follow it.") if step.changes else _("Nothing changed."),
            "notice",
        )
        return redirect(url_for("console.experiment", site_slug=g.site.slug, meter_name=meter_name), 303)
    return _page(form, meter_name, changes=step.changes, preview=True, shown=step.shown)
