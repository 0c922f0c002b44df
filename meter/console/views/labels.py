"""The words the console shows for meter's codes: audit actions and their details, who acted, reader
states, mail kinds, roles, sign-in methods, policy keys and their values, languages.

The codes stay codes in the data (the audit log, `flask audit show --json`, the CSV, the pages'
`data-` attributes): stable names that scripts and tests read. A person reads words in the member's
language, from this one mapping each; a code without a label still reads as words (a command's own
words for `cli.*`, the code's words otherwise), never as a dotted code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from flask import g
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from meter.console.forms import PolicyForm
from meter.console.rules.audit import COMMAND_LINE
from meter.sites import SCHEMA

ACTIONS = {
    "console.signin": _l("Signed in to the console"),
    "console.signout": _l("Signed out of the console"),
    "staff.create": _l("Staff member added"),
    "staff.grant": _l("Role given"),
    "staff.reset": _l("New set-up link"),
    "staff.disable": _l("Staff member disabled"),
    "staff.setup": _l("Console account set up"),
    "policy.change": _l("Policy changed"),
    "origin.add": _l("Origin added"),
    "origin.remove": _l("Origin removed"),
    "api_key.create": _l("API key made"),
    "api_key.revoke": _l("API key revoked"),
    "provider.add": _l("Sign-in provider added"),
    "provider.replace": _l("Sign-in provider replaced"),
    "provider.remove": _l("Sign-in provider removed"),
    "reader.search": _l("Readers searched"),
    "reader.view": _l("Reader's page opened"),
    "reader.resend_activation": _l("Activation mail sent again"),
    "reader.end_sessions": _l("Reader's sessions ended"),
    "reader.subscribe": _l("Subscription set"),
    "reader.unsubscribe": _l("Subscription ended"),
    "reader.reset_meter": _l("Meter reset"),
    "readers.bulk_resend": _l("Activation mail sent again to unverified readers"),
    "mail.retry": _l("Dead letters retried"),
    "grant_key.create": _l("Grant key made"),
    "grant_key.rotate": _l("Grant key rotated"),
    "grant_key.retire": _l("Grant key retired"),
    "webhook.add": _l("Webhook added"),
    "webhook.remove": _l("Webhook removed"),
    "webhook.enable": _l("Webhook enabled again"),
    "webhook.rotate": _l("Webhook secret rotated"),
    "webhook.test": _l("Webhook test sent"),
    "webhook.send_again": _l("Webhook delivery sent again"),
}

DETAIL_KEYS = {
    "reader": _l("Reader"),
    "query": _l("Search"),
    "results": _l("Found"),
    "email": _l("Email"),
    "role": _l("Role"),
    "origin": _l("Origin"),
    "origins": _l("Origins"),
    "prefix": _l("Key"),
    "key_prefix": _l("Key"),
    "name": _l("Name"),
    "kind": _l("Kind"),
    "label": _l("Button text"),
    "client_id": _l("Client id"),
    "count": _l("Count"),
    "ids": _l("Mails"),
    "retry_all": _l("All"),
    "job": _l("Request"),
    "since": _l("Since"),
    "until": _l("Until"),
    "slug": _l("Site"),
    "locale": _l("Language"),
    "changes": _l("Changes"),
    "days": _l("Days"),
    "kid": _l("Key"),
    "url": _l("Address"),
    "events": _l("Events"),
}

STATES = {"registered": _l("Registered"), "verified": _l("Verified"), "subscriber": _l("Subscriber")}

ROLES = {"owner": _l("Owner"), "editor": _l("Editor"), "support": _l("Support")}

LANGUAGES = {"id": _l("Indonesian"), "en": _l("English")}

MAIL_KINDS = {
    "activation": _l("Account activation"),
    "already_registered": _l("Already registered"),
    "password_reset": _l("Password reset"),
    "password_changed": _l("Password changed"),
    "email_change": _l("Address change"),
    "email_changed": _l("Address changed"),
    "account_deletion": _l("Account deletion"),
    "sign_in_added": _l("Sign-in method added"),
    "social_link": _l("Provider account to link"),
    "social_signup": _l("Registered through a provider"),
    "webhook_disabled": _l("Webhook disabled"),
}


def _policy_form_labels() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The policy keys' labels and their coded values' labels: those of the console's policy form
    (`quota.verified` is its field `quota_verified`), so that a key reads the same in the form, its
    preview and the audit log."""
    keys, values = {}, {}
    for item in SCHEMA:
        field = getattr(PolicyForm, item.name.replace(".", "_"), None)
        if field is None:
            continue
        keys[item.name] = field.args[0] if field.args else field.kwargs.get("label", item.name)
        choices = field.kwargs.get("choices")
        if choices:
            values[item.name] = {choice.value: choice.label for choice in choices}
    return keys, values


POLICY_KEYS, POLICY_VALUES = _policy_form_labels()


def _words(code: str) -> str:
    return code.replace(".", " ").replace("_", " ").strip()


def action(code: str) -> str:
    """An audit row's action in words: its label; a command's own words for `cli.*`."""
    if code in ACTIONS:
        return str(ACTIONS[code])
    if code.startswith("cli."):
        return _("Command %(command)s", command="flask " + " ".join(code.split(".")[1:]))
    return _words(code)


def actor(name: str) -> str:
    return _("Command line") if name == COMMAND_LINE else name


def state(code: str) -> str:
    return str(STATES.get(code, _words(code)))


def role(code: str) -> str:
    return str(ROLES.get(code, _words(code)))


def language(code: str | None) -> str:
    return str(LANGUAGES.get(code or "", code or "—"))


def mail_kind(code: str) -> str:
    return str(MAIL_KINDS.get(code, _words(code)))


def policy_key(key: str) -> str:
    """A policy key in words; a named meter's key as its meter's ("Meter koran: Free articles for verified
    readers"), a section's mapping as "Section laput counts in"."""
    group, _dot, rest = key.partition(".")
    if group == "meters" and rest:
        name, _dot, sub = rest.partition(".")
        if sub:
            return _("Meter %(name)s: %(setting)s", name=name, setting=policy_key(sub))
        return _("Meter %(name)s", name=name)
    if group == "sections" and rest:
        return _("Section %(section)s counts in", section=rest)
    if key == "rules":
        return _("Rules by arrival")
    if group == "experiment":  # experiment.variants.b.quota.verified
        return _("Experiment: %(setting)s", setting=_words(rest)) if rest else _("Experiment")
    if group == "rules" and rest:  # one rule's key, as the command line sets it: rules.search.extra
        name, _dot, sub = rest.partition(".")
        if sub:
            return _("Rule %(name)s: %(setting)s", name=name, setting=RULE_KEYS.get(sub, _words(sub)))
        return _("Rule %(name)s", name=name)
    return str(POLICY_KEYS.get(key, _words(key)))


RULE_KEYS = {"arrival": _l("the reader came from"), "campaign": _l("campaign"), "extra": _l("extra reads")}
ARRIVALS = {"search": _l("a search engine"), "social": _l("a social network"), "campaign": _l("a campaign")}


def policy_value(key: str, value: Any) -> str:
    """A value in words; none (a meter or a section that is not, or no longer, there) as a dash."""
    if value is None:
        return "—"
    if key.startswith(("rules.", "meters.")) and key.endswith(".arrival"):
        return str(ARRIVALS.get(str(value), value))
    return str(POLICY_VALUES.get(key, {}).get(str(value), value))


def signin_method(method: str) -> str:
    """ "password", or the name of one of the site's sign-in providers: its label (the button's text);
    a provider since removed by its name."""
    if method == "password":
        return _("Password")
    site = g.get("site")
    for name, _kind, label in getattr(site, "login_providers", ()):
        if name == method:
            return label or name
    return method


class Detail(NamedTuple):
    label: str
    value: str
    reader: int | None = None  # a reader's id: the page links to the reader


def detail(detail: dict[str, Any] | None) -> list[Detail]:
    """An audit row's detail under the names of its keys, in the order of the keys."""
    pairs = []
    for key, value in sorted((detail or {}).items()):
        if _policy(key):
            before, arrow, after = str(value).partition(" -> ")
            shown = f"{_stored(key, before)} → {_stored(key, after)}" if arrow else policy_value(key, value)
            pairs.append(Detail(policy_key(key), shown))
        elif key == "reader" and isinstance(value, int):
            pairs.append(Detail(str(DETAIL_KEYS[key]), str(value), value))
        else:
            pairs.append(Detail(str(DETAIL_KEYS.get(key, _words(key))), _value(key, value)))
    return pairs


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if key == "role":
        return role(str(value))
    if key == "locale":
        return language(str(value))
    if key in ("since", "until") and isinstance(value, str):
        return _moment(value)
    if isinstance(value, list | tuple):
        return ", ".join(_setting(str(item)) if key == "changes" else str(item) for item in value)
    return str(value)


def _moment(text: str) -> str:
    """An ISO time of a detail (`2026-12-07T17:00:00Z`) as the console writes times; else as it was."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return format_datetime(moment, "short")


def _setting(text: str) -> str:
    """A policy change as typed on the command line (`quota.verified=3`), in words."""
    key, equals, value = text.partition("=")
    return f"{policy_key(key)} = {policy_value(key, value or None)}" if equals and _policy(key) else text


def _policy(key: str) -> bool:
    """Whether an audit detail's key is a policy key (a named meter's and a section's too)."""
    return key in POLICY_KEYS or key == "rules" or key.startswith(("meters.", "sections.", "rules."))


def _stored(key: str, text: str) -> str:
    """One side of a change as the audit row keeps it ("None": the meter or section was not there)."""
    return policy_value(key, None if text == "None" else text)
