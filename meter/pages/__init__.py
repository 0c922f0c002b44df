"""Reader pages (HTML). This first version has what mail links land on: activation and password reset.

A GET never changes anything: the activation page submits a POST by itself, so a mail scanner that
follows links activates nothing. Every form carries a CSRF token (Flask-WTF).
"""

from __future__ import annotations

import secrets

from flask import Blueprint, Flask, abort, g, render_template, request

from .. import passwords, tokens
from ..accounts import confirm, recover
from ..sites import by_slug, info

bp = Blueprint("pages", __name__, url_prefix="/<site_slug>")

TEXT = {
    "id": {
        "confirm_title": "Konfirmasi Email",
        "confirm_lead": "Tekan tombol di bawah untuk mengaktifkan akun Anda.",
        "confirm_button": "Aktifkan akun",
        "done_title": "Email Anda sudah terkonfirmasi",
        "done_lead": "Selamat! Anda mendapat akses membaca {quota} artikel gratis.",
        "already_title": "Akun sudah aktif",
        "already_lead": "Link ini sudah dipakai. Silakan masuk.",
        "expired_title": "Link aktivasi kedaluwarsa",
        "expired_lead": "Link ini sudah tidak berlaku. Minta link baru lewat halaman pendaftaran.",
        "invalid_title": "Link tidak valid",
        "invalid_lead": "Link ini tidak valid. Periksa kembali email Anda.",
        "continue": "Lanjutkan membaca",
        "reset_title": "Atur Ulang Kata Sandi",
        "reset_label": "Kata sandi baru (minimal 8 karakter)",
        "reset_button": "Simpan kata sandi",
        "reset_done": "Kata sandi Anda sudah diganti.",
        "reset_short": "Kata sandi minimal 8 karakter.",
    },
    "en": {
        "confirm_title": "Confirm your email",
        "confirm_lead": "Press the button below to activate your account.",
        "confirm_button": "Activate account",
        "done_title": "Your email is confirmed",
        "done_lead": "Welcome! You can now read {quota} free articles.",
        "already_title": "Account already active",
        "already_lead": "This link was already used. Please log in.",
        "expired_title": "Activation link expired",
        "expired_lead": "This link is no longer valid. Ask for a new one from the registration page.",
        "invalid_title": "Invalid link",
        "invalid_lead": "This link is not valid. Please check your email.",
        "continue": "Continue reading",
        "reset_title": "Reset password",
        "reset_label": "New password (at least 8 characters)",
        "reset_button": "Save password",
        "reset_done": "Your password has been changed.",
        "reset_short": "The password needs at least 8 characters.",
    },
}


@bp.url_value_preprocessor
def load_site(_endpoint, values) -> None:
    site = by_slug(values.pop("site_slug"))
    if site is None:
        abort(404)
    g.site = info(site)
    lang = request.args.get("lang") or request.accept_languages.best_match(["id", "en"]) or g.site.locale
    g.lang = lang if lang in TEXT else "id"
    g.t = TEXT[g.lang]


@bp.before_request
def make_nonce() -> None:
    g.csp_nonce = secrets.token_urlsafe(16)


@bp.after_request
def security_headers(response):
    nonce = g.get("csp_nonce", "")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"  # tokens live in these URLs
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def inject_nonce() -> dict:
    return {"csp_nonce": g.get("csp_nonce", "")}


@bp.url_defaults
def add_site(_endpoint, values) -> None:
    values.setdefault("site_slug", g.site.slug)


@bp.route("/activate/<token>", methods=["GET", "POST"])
def activate(token: str):
    if request.method == "GET":
        return render_template("pages/activate_confirm.html", token=token)
    try:
        result = confirm.activate(g.site, token)
    except tokens.TokenError as exc:
        return render_template("pages/message.html", kind=exc.kind), 400
    kind = "done" if result.reader_token else "already"
    return render_template("pages/message.html", kind=kind, next_url=result.next_url)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    error = None
    if request.method == "POST":
        password = request.form.get("password", "")
        if not passwords.MIN_LENGTH <= len(password) <= passwords.MAX_LENGTH:
            error = g.t["reset_short"]
        else:
            try:
                recover.confirm_reset(g.site, token, password)
            except tokens.TokenError as exc:
                return render_template("pages/message.html", kind=exc.kind), 400
            return render_template("pages/message.html", kind="reset_done")
    return render_template("pages/reset_password.html", token=token, error=error), 422 if error else 200


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
