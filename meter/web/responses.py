"""Answers of the /v1 API (and the health, metrics, AMP and embed routes), as pydantic models.

The views still build plain dicts; these models exist to describe them in `/openapi.json`, and the
test suite checks every JSON answer it sees against that description, so they cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Reason = Literal[
    "free_content",
    "subscriber",
    "already_unlocked",
    "unlocked_now",
    "would_unlock",
    "quota_exhausted",
    "subscription_required",
    "registration_required",
    "verification_required",
    "degraded_allow",
    "degraded_deny",
]
State = Literal["registered", "verified", "subscriber"]


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class Problem(Answer):
    """RFC 9457 problem details (application/problem+json)."""

    type: str = Field(description="A URI ending in /problems/<name>, such as .../problems/token-expired.")
    title: str
    status: int = Field(ge=100, le=599)
    detail: str
    errors: dict[str, str] | None = Field(None, description="On 422: field → message.")


class Accepted(Answer):
    status: Literal["activation_sent"]


class ResetAccepted(Answer):
    status: Literal["reset_sent"]


class ReaderOut(Answer):
    reader_id: int
    email: str
    state: State
    locale: Literal["id", "en"]
    subscription_until: str | None = Field(description="ISO-8601 in UTC, or null.")


class Activated(Answer):
    reader_id: int
    state: State
    reader_token: str | None = Field(None, description="Only for the click that activated the account.")
    next: str | None = Field(None, description="Where the activation page returns to, when registration gave one.")


class LoggedIn(Answer):
    reader_token: str
    reader: ReaderOut


class ReaderToken(Answer):
    reader_token: str


class MeterSummary(Answer):
    used: int
    limit: int
    remaining: int
    period: str
    period_end: str
    unlocked: list[str]


class Me(ReaderOut):
    meter: MeterSummary


class AccessMeter(Answer):
    used: int
    limit: int
    remaining: int
    period_end: str = Field(description="When the next article frees up (ISO-8601 with offset).")


class AccessReader(Answer):
    state: Literal["anonymous", "registered", "verified", "subscriber"]
    token: Literal["valid", "expired", "invalid", "revoked", "none"]


class AccessAnswer(Answer):
    allowed: bool
    reason: Reason
    reader: AccessReader
    meter: AccessMeter
    degraded: bool


class Health(Answer):
    status: Literal["ok"]


class Ready(Answer):
    status: Literal["ready"]
    checks: dict[str, Literal["ok", "unreachable"]]


class AmpData(Answer):
    articlesRead: int  # amp-subscriptions names these fields
    articlesLeft: int
    articleLimit: int
    isLoggedIn: bool


class AmpAuthorization(Answer):
    """amp-access / amp-subscriptions authorization answer (no personal data, under 500 bytes)."""

    granted: bool
    grantReason: Literal["SUBSCRIBER", "METERING", "FREE"] | None = None
    data: AmpData | None = None
    access: bool | None = None  # amp-access's own field, the same as granted
    reason: str | None = None  # meter's reason, as in the access check
    subscriber: bool | None = None


# --- the embed's browser endpoints (/embed/<site>/access and /resend) -----------------------------


class _Action(Answer):
    label: str = Field(description="The button's text, in the reader's language.")


class RegisterAction(_Action):
    kind: Literal["register"]
    url: str = Field(description="meter's register page, returning to the article.")


class LoginAction(_Action):
    kind: Literal["login"]
    url: str = Field(description="meter's login page, returning to the article.")


class SubscribeAction(_Action):
    kind: Literal["subscribe"]
    url: str = Field(description='The subscribe_url asked for or the site\'s, "#" when the site has none.')


class ResendAction(_Action):
    kind: Literal["resend"]
    url: None = Field(description="The script POSTs to /embed/{site_slug}/resend instead.")


class _Wall(Answer):
    title: str = Field(description="In the reader's language, as the body and the labels.")
    body: str


class RegisterWall(_Wall):
    kind: Literal["register"]
    actions: tuple[RegisterAction, LoginAction]


class VerifyWall(_Wall):
    kind: Literal["verify"]
    actions: tuple[ResendAction]


class SubscribeWall(_Wall):
    kind: Literal["subscribe"]
    actions: tuple[SubscribeAction, LoginAction]


class QuotaWall(_Wall):
    """The quota is used up (or Redis is away and the answer is degraded_deny): the body says when it comes back."""

    kind: Literal["quota"]
    actions: tuple[SubscribeAction]


Wall = Annotated[RegisterWall | VerifyWall | SubscribeWall | QuotaWall, Field(discriminator="kind")]


class EmbedAccess(Answer):
    """The embed's access answer: the decision, the banner to show when it is allowed, the wall when not."""

    allowed: bool
    reason: Reason
    state: Literal["anonymous", "registered", "verified", "subscriber"]
    logged_in: bool = Field(description="Judged as the reader of meter's login cookie (else as the anonymous id).")
    meter: AccessMeter
    banner: str | None = Field(description='"N free articles left" after a metered read, else null.')
    wall: Wall | None = Field(description="Null when allowed.")
    colour: str = Field(description="The site's accent colour (CSS), for the wall.")
    degraded: bool


class EmbedResendSent(Answer):
    status: Literal["sent"]
    retry_after: int = Field(ge=1, description="Seconds before the button may ask again.")
    message: str


class EmbedResendWait(Answer):
    status: Literal["wait"]
    retry_after: int = Field(ge=1, description="Seconds left of the cool-down (also in Retry-After).")
    message: str
