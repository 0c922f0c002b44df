"""The site's mail (support and up): the outbox backlog, the dead letters with their errors, retry;
and for owners the audit log and the site's staff.
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from meter.console.forms import ActionForm
from meter.console.models import StaffGrant
from meter.console.rules import audit, outbox
from meter.console.views.auth import MAX_ID, view
from meter.platform.db import db


@view("/mail", "support")
def mail():
    return render_template(
        "console/mail.html",
        status=outbox.status(g.site),
        waiting=outbox.waiting(g.site),
        dead=outbox.dead_letters(g.site),
        action=ActionForm(),
    )


@view("/mail/retry", "support", methods=("POST",))
def retry_mail():
    if not ActionForm().validate_on_submit():
        abort(400)
    if request.form.get("all"):
        ids = None
    else:
        try:
            ids = [int(value) for value in request.form.getlist("id")][:500]
        except ValueError:
            abort(400)
        if not ids or not all(0 < i < MAX_ID for i in ids):
            abort(400)
    count = outbox.retry(g.site, ids, g.staff)
    flash(_("%(n)d mails are queued again; the worker sends them on its next pass.", n=count), "notice")
    return redirect(url_for("console.mail", site_slug=g.site.slug), 303)


@view("/audit", "owner")
def audit_log():
    return render_template("console/audit.html", entries=audit.entries(site_id=g.site.id, limit=500))


@view("/staff", "owner")
def staff():
    grants = db.session.scalars(db.select(StaffGrant).filter_by(site_id=g.site.id)).all()
    members = sorted(((grant.staff, grant.role) for grant in grants), key=lambda pair: pair[0].email_key)
    return render_template("console/staff.html", members=members)
