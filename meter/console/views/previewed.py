"""The one rule of every policy form of the console (the policy, a meter, its rules, its experiment): a
change is saved only as it was shown. A save is refused when the policy changed since the form was
drawn (`base`), or when what is sent differs from the last preview (`shown`: a field edited after the
preview, then Enter, which presses "save"); either way the change is shown again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import flash, g, request
from flask_babel import gettext as _

from meter.console.rules import site_admin


@dataclass(frozen=True)
class Step:
    saved: bool
    changes: list  # (key, before, after) of the preview
    shown: str  # the version the preview shows, for the form's `shown`


def preview_or_save(site: Any, form: Any, sent: dict, asked: dict) -> Step:
    """Save `sent` (whose merge with the site's policy is `asked`) when "save" was pressed on this very
    preview; else the preview, with the form's `base` brought up to date."""
    made = site_admin.changes(site.policy, asked)
    stale = form.base.data != site_admin.version(site.policy)
    unseen = request.form.get("shown") != site_admin.version(asked)
    if "save" in request.form and not stale and not unseen:
        site_admin.save_policy(site, sent, g.staff)
        return Step(True, made, site_admin.version(asked))
    if stale and "save" in request.form:
        flash(_("The policy was changed meanwhile: check the change again before saving."), "error")
    form.base.data = site_admin.version(site.policy)
    return Step(False, made, site_admin.version(asked))
