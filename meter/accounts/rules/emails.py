"""Email addresses: syntax checked by email-validator (no DNS), normalised, and a lookup key."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email


class BadEmail(ValueError):
    pass


def normalise(raw: str) -> str:
    """The address as it will be stored and mailed: domain lower-cased and IDNA-checked, NFC."""
    if not isinstance(raw, str) or len(raw) > 320 or any(ch in raw for ch in "\r\n\x00"):
        raise BadEmail("not an email address")
    try:
        # SMTPUTF8 local parts are refused: Flask-Mail (and many relays) cannot deliver to them.
        result = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise BadEmail(str(exc)) from None
    return result.normalized


def lookup_key(email: str) -> str:
    """One key per mailbox a person would consider the same: NFKC then case-folded.

    OHM SIGN and OMEGA meet here; a dotless i (U+0131) stays distinct from i: it is another letter.
    """
    return unicodedata.normalize("NFKC", email).casefold()
