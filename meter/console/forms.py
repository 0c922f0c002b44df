"""The console's forms (Flask-WTF: each carries its CSRF token); labels and messages from the `console` catalog."""

from __future__ import annotations

from flask_babel import get_translations, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from meter.sites import KEYS, MAX_TIMEZONE
from meter.social import KINDS
from meter.webhooks import EVENTS as WEBHOOK_EVENTS


class _Translations:
    """WTForms' own messages ("This field is required.") through the console's catalog: WTForms has no
    Indonesian of its own, and Flask-WTF would look only there."""

    def gettext(self, string: str) -> str:
        return get_translations().ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return get_translations().ungettext(singular, plural, n)


class ConsoleForm(FlaskForm):
    """Every console form: CSRF (Flask-WTF), and WTForms' own messages in the member's language."""

    class Meta:
        def get_translations(self, form):
            return _Translations()


def _wtforms_messages() -> None:
    """Never called: the WTForms messages the console's fields can show, written here so that pybabel
    puts them in the console's catalog."""
    _("This field is required.")
    _("Number must be between %(min)s and %(max)s.")
    _("Not a valid integer value.")
    _("Not a valid date value.")
    _("Not a valid choice.")
    ngettext("Field cannot be longer than %(max)d character.", "Field cannot be longer than %(max)d characters.", 1)


STAFF_PASSWORD_MIN = 12  # staff reach every reader of a site: longer than a reader's minimum
_CODE = [DataRequired(_l("Enter the 6-digit code from your authenticator app.")), Length(max=16)]


class SetupForm(ConsoleForm):
    password = PasswordField(
        _l("New password (at least 12 characters)"),
        validators=[
            DataRequired(_l("Choose a password.")),
            Length(min=STAFF_PASSWORD_MIN, max=1024, message=_l("The password needs at least 12 characters.")),
        ],
    )
    confirm = PasswordField(
        _l("The same password again"),
        validators=[DataRequired(_l("Type the password again.")), EqualTo("password", _l("The passwords differ."))],
    )
    code = StringField(_l("Code from the authenticator app"), validators=_CODE)


class SigninForm(ConsoleForm):
    email = EmailField(_l("Email"), validators=[DataRequired(_l("Enter your email address.")), Length(max=320)])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=1024)])
    code = StringField(_l("Code from the authenticator app"), validators=_CODE)
    next = HiddenField()


class ActionForm(ConsoleForm):
    """A button that changes something: only the CSRF token."""


def _within_years(_form, field) -> None:
    """Dates from 2000 to 2999: anything else is a typing slip (and year 9999 has no next day to end on)."""
    if field.data is not None and not 2000 <= field.data.year <= 2999:
        raise ValidationError(_l("Choose a date from 2000 to 2999."))


class SubscriptionForm(ConsoleForm):
    until = DateField(
        _l("Subscribed until (inclusive)"), validators=[InputRequired(_l("Choose a date.")), _within_years]
    )


class BulkForm(ConsoleForm):
    since = DateField(_l("Registered on or after"), validators=[InputRequired(_l("Choose a date.")), _within_years])


def _whole(key: str) -> list:
    low, high = KEYS[key].limits
    return [InputRequired(), NumberRange(low, high)]


class PolicyForm(ConsoleForm):
    """Every key of meter.sites.rules.policy.SCHEMA, named as the key with "_" for "." (quota_verified);
    tests/functional/test_console_policy.py holds that no key is left out."""

    quota_anonymous = IntegerField(_l("Free articles for anonymous visitors"), validators=_whole("quota.anonymous"))
    quota_registered = IntegerField(_l("Free articles for registered readers"), validators=_whole("quota.registered"))
    quota_verified = IntegerField(_l("Free articles for verified readers"), validators=_whole("quota.verified"))
    period = StringField(
        _l("Period (day, week, month, year or rolling:30d)"), validators=[DataRequired(), Length(max=16)]
    )
    timezone = StringField(_l("Time zone"), validators=[DataRequired(), Length(max=MAX_TIMEZONE)])
    degraded_mode = SelectField(
        _l("When Redis is unreachable"),
        choices=[
            SelectChoice("allow", _l("allow metered articles")),
            SelectChoice("deny", _l("refuse metered articles")),
        ],
    )
    crawlers = SelectField(
        _l("Search engines' crawlers"),
        choices=[
            SelectChoice("off", _l("metered like everyone")),
            SelectChoice("verified", _l("verified crawlers read everything")),
        ],
    )
    gifts_per_period = IntegerField(
        _l("Gifts a subscriber may make per period (0: gifts off)"), validators=_whole("gifts.per_period")
    )
    gifts_days = IntegerField(_l("Days a gift link works"), validators=_whole("gifts.days"))
    gifts_devices = IntegerField(_l("Readers or visitors that may open one gift"), validators=_whole("gifts.devices"))
    base = HiddenField()  # the version of the policy the preview was made from


class MeterForm(ConsoleForm):
    """A named meter's keys (meter.sites.rules.policy.METER_KEYS, named and labelled as PolicyForm's)
    and the sections that count in it."""

    quota_anonymous = IntegerField(PolicyForm.quota_anonymous.args[0], validators=_whole("quota.anonymous"))
    quota_registered = IntegerField(PolicyForm.quota_registered.args[0], validators=_whole("quota.registered"))
    quota_verified = IntegerField(PolicyForm.quota_verified.args[0], validators=_whole("quota.verified"))
    period = StringField(PolicyForm.period.args[0], validators=[DataRequired(), Length(max=16)])
    sections = StringField(
        _l("Sections that count in this meter (such as koran, laput)"), validators=[Optional(), Length(max=4000)]
    )
    base = HiddenField()


class RulesForm(ConsoleForm):
    """A meter's rules by arrival, one a line in their order (meter.sites.rules.arrival_rules.rule_line)."""

    rules = TextAreaField(_l("Rules, one a line"), validators=[Optional(), Length(max=4000)])
    base = HiddenField()


class ExperimentForm(ConsoleForm):
    """A meter's experiment as JSON (meter.sites.rules.experiments); empty: none."""

    experiment = TextAreaField(_l("The experiment, as JSON"), validators=[Optional(), Length(max=4000)])
    base = HiddenField()


class NewMeterForm(ConsoleForm):
    name = StringField(_l("Name of a new meter (such as koran)"), validators=[DataRequired(), Length(max=32)])


class OriginForm(ConsoleForm):
    origin = StringField(_l("Origin (such as https://www.tempo.co)"), validators=[DataRequired(), Length(max=2048)])


class ProviderForm(ConsoleForm):
    name = StringField(_l("Name (in the URLs)"), validators=[DataRequired(), Length(max=32)])
    kind = SelectField(_l("Kind"), choices=[SelectChoice(kind, kind) for kind in KINDS])
    label = StringField(_l("Button text (optional)"), validators=[Optional(), Length(max=80)])
    client_id = StringField(_l("Client id"), validators=[DataRequired(), Length(max=255)])
    secret = TextAreaField(
        _l("Client secret (Apple: the private key, PEM)"), validators=[DataRequired(), Length(max=8192)]
    )
    issuer = StringField(_l("Issuer (kind oidc only)"), validators=[Optional(), Length(max=512)])
    team_id = StringField(_l("Team id (Apple only)"), validators=[Optional(), Length(max=32)])
    key_id = StringField(_l("Key id (Apple only)"), validators=[Optional(), Length(max=32)])


class WebhookForm(FlaskForm):
    url = StringField(_l("URL (https://…)"), validators=[DataRequired(), Length(max=2048)])
    events = SelectMultipleField(
        _l("Events (none chosen: all of them)"),
        choices=[SelectChoice(event, event) for event in WEBHOOK_EVENTS],
        validators=[Optional()],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
