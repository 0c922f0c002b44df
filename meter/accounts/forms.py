"""The reader pages' forms (Flask-WTF: each carries its CSRF token); labels and messages are catalog strings."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from meter.accounts.rules import emails, passwords

_PASSWORD_LENGTH = Length(
    min=passwords.MIN_LENGTH,
    max=passwords.MAX_LENGTH,
    message=_l("The password needs at least %(min)d characters.", min=passwords.MIN_LENGTH),
)


class _Carry(FlaskForm):
    """Where to return afterwards, and an AMP reader id to link to the login with AMP's `return` (its
    login flow's RETURN_URL, without which nothing is linked)."""

    next = HiddenField()
    rid = HiddenField()
    amp_return = HiddenField()


class RegisterForm(_Carry):
    email = EmailField(_l("Email"), validators=[DataRequired(_l("Enter your email address.")), Length(max=320)])
    password = PasswordField(
        _l("Password (at least 8 characters)"), validators=[DataRequired(_l("Choose a password.")), _PASSWORD_LENGTH]
    )
    # The honeypot: hidden from people (and from screen readers); a bot that fills every field fills it.
    website = StringField(_l("Leave this field empty"))

    def validate_email(self, field: EmailField) -> None:
        """The address is checked with the password, not after it: every field's error shows at once."""
        if field.data:
            try:
                emails.normalise(field.data)
            except emails.BadEmail:
                raise ValidationError(_l("Enter a valid email address.")) from None


class LoginForm(_Carry):
    email = EmailField(_l("Email"), validators=[DataRequired(_l("Enter your email address.")), Length(max=320)])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=1024)])


class EmailForm(_Carry):
    email = EmailField(_l("Email"), validators=[DataRequired(_l("Enter your email address.")), Length(max=320)])


class ResendForm(_Carry):
    """The resend button: the address comes from the session, not the form."""


class ResetForm(FlaskForm):
    password = PasswordField(
        _l("New password (at least 8 characters)"),
        validators=[DataRequired(_l("Choose a password.")), _PASSWORD_LENGTH],
    )


class ConfirmForm(FlaskForm):
    """The activation page's self-submitting form (only the CSRF token)."""


class LogoutForm(_Carry):
    pass


# --- the account page (meter.accounts.views.account_page) -------------------------------------------------------


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(_l("Enter your password.")), Length(max=1024)]
    )
    password = PasswordField(
        _l("New password (at least 8 characters)"),
        validators=[DataRequired(_l("Choose a password.")), _PASSWORD_LENGTH],
    )


class EmailChangeForm(FlaskForm):
    email = EmailField(
        _l("New email address"), validators=[DataRequired(_l("Enter your email address.")), Length(max=320)]
    )
    # Posted as "password"; its id is its own, as the account page shows three password fields.
    password = PasswordField(
        _l("Password"),
        id="email-password",
        validators=[DataRequired(_l("Enter your password.")), Length(max=1024)],
    )


class DeletionForm(FlaskForm):
    """The password when the account has one (the view checks it); without one, a link is mailed."""

    password = PasswordField(_l("Password"), id="delete-password", validators=[Length(max=1024)])


class EndSessionForm(FlaskForm):
    """A session's "End" button on the account page: which session (not this browser's own)."""

    session = HiddenField(validators=[DataRequired(), Length(max=32)])


class ActionForm(FlaskForm):
    """A button that changes something (end other sessions, remove a sign-in, confirm a link): the CSRF token."""
