"""The reader's copy of their data: the answer of `GET /v1/readers/me/export`, typed as the view builds it.

Kept apart from `meter.platform.responses` (the other answers) for its size: one answer, a dozen parts,
each described in /openapi.json from these classes like every other answer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from typing_extensions import TypedDict

from meter.platform.responses import State

Time = Annotated[str, Field(description="ISO-8601 in UTC.")]


class ExportSite(TypedDict):
    slug: str
    name: str


class ExportAccount(TypedDict):
    reader_id: int
    email: str
    pending_email: Annotated[str | None, Field(description="An address change waiting for its link to be opened.")]
    state: State
    locale: Literal["id", "en"]
    has_password: bool
    created_at: Time
    verified_at: Time | None
    last_activation_sent_at: Time | None
    variant_seed: Annotated[
        str | None,
        Field(
            description="The digest of the anonymous id the reader registered with, which keeps them in the variant "
            "of a meter's experiment they had as a visitor; null: their own."
        ),
    ]


class ExportSubscription(TypedDict):
    until: Time | None
    active: bool


class ExportIdentity(TypedDict):
    provider: str
    subject: Annotated[str, Field(description="The provider's id of the person (`sub`).")]
    email: Annotated[str | None, Field(description="The address the provider gave at the last sign-in.")]
    email_verified: bool
    created_at: Time
    last_used_at: Time


class ExportSession(TypedDict):
    id: str
    device: Annotated[str | None, Field(description='Browser and system at login, such as "Chrome · Android".')]
    created_at: Time
    last_used_at: Time | None
    revoked_at: Time | None


METER = Field(description="The meter the unlock counted in: `default`, or one of the site's named meters.")


class ExportUnlock(TypedDict):
    meter: Annotated[str, METER]
    period: str
    article_id: str
    unlocked_at: Time


class ExportDoubt(TypedDict):
    meter: Annotated[str, METER]
    article_id: str
    checked_at: Time


class ExportAmpLink(TypedDict):
    rid: Annotated[str, Field(description="An AMP reader id a login linked to the account.")]
    session_id: str


class ExportGift(TypedDict):
    article_id: str
    article_class: str
    url: Annotated[str, Field(description="The article's URL (the gift link without its `gift` parameter).")]
    created_at: Time
    expires_at: Time
    revoked_at: Time | None
    device_limit: int
    devices: Annotated[int, Field(ge=0, description="How many devices opened it.")]


class ExportMail(TypedDict):
    id: int
    kind: str
    to: str
    subject: str
    body_text: Annotated[str, Field(description="The text of the mail, its links masked as [link].")]
    created_at: Time
    sent_at: Time | None
    attempts: int
    dead_at: Time | None
    last_error: str | None


class Export(TypedDict):
    """Everything meter holds about the reader (docs/security.md: what meter stores)."""

    format: Literal["meter.export.v1"]
    exported_at: Time
    site: ExportSite
    account: ExportAccount
    subscription: ExportSubscription
    identities: list[ExportIdentity]
    sessions: Annotated[list[ExportSession], Field(description="Every session, ended ones included.")]
    unlocks: Annotated[list[ExportUnlock], Field(description="Every unlock of the ledger, every period.")]
    unlocks_in_doubt: list[ExportDoubt]
    amp_links: Annotated[list[ExportAmpLink] | None, Field(description="Null when Redis could not be read.")]
    gifts: Annotated[list[ExportGift], Field(description="Every gift article the reader made, every period.")]
    mails: Annotated[list[ExportMail], Field(description="The outbox's mails to the account's addresses.")]
