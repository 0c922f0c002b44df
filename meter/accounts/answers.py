"""A reader as the JSON API shows one: the same fields wherever an answer carries a reader (who am I,
a login with a password or with another account's ID token)."""

from __future__ import annotations

from datetime import UTC

from meter.accounts.models import Reader
from meter.platform import responses as out


def reader_json(reader: Reader) -> out.ReaderOut:
    until = reader.subscription_until
    return out.ReaderOut(
        reader_id=reader.id,
        email=reader.email,
        state=reader.state,
        locale=reader.locale,
        subscription_until=until.replace(tzinfo=UTC).isoformat() if until else None,
    )
