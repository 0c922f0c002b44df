"""The JSON answers of meter's HTTP API, as the views build them: typed dicts, described in /openapi.json.

A view returns one of these (a plain dict at run time, so the access check pays nothing for it);
`meter.platform.openapi` generates each answer's JSON schema from the same class, and the test suite
checks every answer it sees against that schema. One description, used by both.
"""

from __future__ import annotations

from typing import (
    Annotated,
    Literal,
    NotRequired,  # pydantic reads typing.TypedDict only on Python 3.12+
)

from pydantic import Field
from typing_extensions import TypedDict

from meter.platform.reasons import REASONS

Reason = Literal[REASONS]  # type: ignore[valid-type]  (the domain's one list of reasons)
GiftRefusal = Literal["expired", "revoked", "device_limit", "invalid"]
GIFT_FIELD = Field(
    description="Only when a gift_token was given and not used: why (the reader was judged without it). "
    "`invalid`: not a gift of this site, made for another article, or no reader or anonymous id to count the "
    "device by."
)
State = Literal["registered", "verified", "subscriber"]
Judged = Literal["anonymous", "registered", "verified", "subscriber"]


class Problem(TypedDict):
    """RFC 9457 problem details (application/problem+json)."""

    type: Annotated[str, Field(description="A URI ending in /problems/<name>, such as .../problems/token-expired.")]
    title: str
    status: Annotated[int, Field(ge=100, le=599)]
    detail: str
    errors: NotRequired[Annotated[dict[str, str], Field(description="On 422: field → message.")]]


class Accepted(TypedDict):
    status: Literal["activation_sent"]


class ResetAccepted(TypedDict):
    status: Literal["reset_sent"]


class ReaderOut(TypedDict):
    reader_id: int
    email: str
    state: State
    locale: Literal["id", "en"]
    subscription_until: Annotated[str | None, Field(description="ISO-8601 in UTC, or null.")]


class Activated(TypedDict):
    reader_id: int
    state: State
    reader_token: NotRequired[Annotated[str, Field(description="Only for the click that activated the account.")]]
    next: NotRequired[
        Annotated[str, Field(description="Where the activation page returns to, when registration gave one.")]
    ]


class LoggedIn(TypedDict):
    reader_token: str
    reader: ReaderOut


class ReaderToken(TypedDict):
    reader_token: str


class ConfirmationSent(TypedDict):
    status: Literal["confirmation_sent"]


class EmailChanged(TypedDict):
    email: Annotated[str, Field(description="The account's address from now on.")]


METER_NAME = Field(
    description="The meter: `default` (the policy's top-level quota and period), or one of the policy's `meters`, "
    "which the article's `section` chose."
)


class MeterSummary(TypedDict):
    name: Annotated[str, METER_NAME]
    used: int
    limit: int
    remaining: int
    period: str
    period_end: str
    unlocked: list[str]


class Me(ReaderOut):
    logins: Annotated[
        list[str], Field(description='How the reader can sign in: "password", then each linked provider\'s name.')
    ]
    meter: Annotated[MeterSummary, Field(description="The default meter (`name`: default).")]
    meters: Annotated[
        list[MeterSummary],
        Field(description="Every meter of the site, the default one first: a reader's count in each is its own."),
    ]


RULE_NAME = Field(
    description="The meter's rule by arrival that applied: the first of its `rules` that matched the reader's arrival "
    "(search, social, or a campaign), whose `extra` reads are in `limit`; null when none matched, and when no "
    "meter was read (a gift, a crawler, a link preview)."
)


EXPERIMENT_NAME = Field(
    description="The meter's experiment that set this check's quotas (its `experiment`, while it runs); null when "
    "none ran, for a check without a reader or an anonymous id, and when no meter was read."
)
VARIANT_NAME = Field(
    description="The reader's (or the anonymous id's) variant of that experiment, whose quotas are in `limit`: "
    "the same at every visit, and kept when the visitor registers; null with `experiment` null."
)


class AccessMeter(TypedDict):
    name: Annotated[str, METER_NAME]
    rule: Annotated[str | None, RULE_NAME]
    experiment: Annotated[str | None, EXPERIMENT_NAME]
    variant: Annotated[str | None, VARIANT_NAME]
    used: int
    limit: int
    remaining: int
    period_end: Annotated[str, Field(description="When the next article frees up (ISO-8601 with offset).")]


class AccessReader(TypedDict):
    state: Judged
    token: Literal["valid", "expired", "invalid", "revoked", "none"]


GRANT_FIELD = Field(
    description="A compact JWS (JWT) signed with the site's grant key (`EdDSA` or `ES256`, `kid` in the header; "
    "the keys: GET /{site_slug}/.well-known/jwks.json): the reader may read article `art` now. Claims `iss`, `aud` "
    "(the site's slug), `sub` (a per-site pseudonym of the reader), `art`, `rsn` (the reason), `iat`, `exp`, "
    "`jti`. Only on an allowed answer that was counted or needs no counting, never with `record: false`, "
    'and only when the site uses grants (the API: setting `grants` or `"grant": true`; the embed: setting '
    "`content_protection`) and has a grant key.",
    pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
)


class AccessAnswer(TypedDict):
    allowed: bool
    reason: Reason
    reader: AccessReader
    meter: Annotated[
        AccessMeter,
        Field(
            description="With `gift`, `crawler` and `preview` no meter was read: `used` is 0 and `limit` the "
            "anonymous quota."
        ),
    ]
    degraded: bool
    gift: NotRequired[Annotated[GiftRefusal, GIFT_FIELD]]
    grant: NotRequired[Annotated[str, GRANT_FIELD]]


class Jwk(TypedDict):
    kty: Literal["OKP", "EC"]
    crv: Literal["Ed25519", "P-256"]
    x: str
    y: NotRequired[str]
    kid: str
    alg: Literal["EdDSA", "ES256"]
    use: Literal["sig"]


class JwkSet(TypedDict):
    keys: list[Jwk]


class Health(TypedDict):
    status: Literal["ok"]


class Ready(TypedDict):
    status: Literal["ready"]
    checks: NotRequired[dict[str, Literal["ok", "unreachable"]]]  # to the host itself and METRICS_TOKEN only


class AmpData(TypedDict):
    articlesRead: int  # amp-subscriptions names these fields
    articlesLeft: int
    articleLimit: int
    isLoggedIn: bool


class AmpAuthorization(TypedDict):
    """amp-access / amp-subscriptions authorization answer (no personal data, under 500 bytes)."""

    granted: bool
    grantReason: Literal["SUBSCRIBER", "METERING", "FREE"] | None
    data: AmpData
    access: Annotated[bool, Field(description="amp-access's own field, the same as granted.")]
    reason: Annotated[Reason, Field(description="meter's reason, as in the access check.")]
    subscriber: bool
    meter: Annotated[str, METER_NAME]
    rule: Annotated[str | None, RULE_NAME]
    variant: Annotated[str | None, VARIANT_NAME]


# --- the embed's browser endpoints (/embed/<site>/access and /resend) -----------------------------


class RegisterAction(TypedDict):
    kind: Literal["register"]
    label: Annotated[str, Field(description="The button's text, in the reader's language.")]
    url: Annotated[str, Field(description="meter's register page, returning to the article.")]


class LoginAction(TypedDict):
    kind: Literal["login"]
    label: str
    url: Annotated[str, Field(description="meter's login page, returning to the article.")]


class SubscribeAction(TypedDict):
    kind: Literal["subscribe"]
    label: str
    url: Annotated[str, Field(description='The subscribe_url asked for or the site\'s, "#" when the site has none.')]


class ProviderAction(TypedDict):
    """Sign in (or up) with another account: one per sign-in provider of the site."""

    kind: Literal["provider"]
    provider: Annotated[str, Field(description="The provider's name, as in meter's URLs.")]
    label: Annotated[
        str, Field(description='"Daftar melalui Google" on the register wall, "Masuk melalui Google" on the others.')
    ]
    url: Annotated[str, Field(description="meter's page that starts the sign-in, returning to the article.")]


class ResendAction(TypedDict):
    kind: Literal["resend"]
    label: str
    url: Annotated[None, Field(description="The script POSTs to /embed/{site_slug}/resend instead.")]
    lead: Annotated[str, Field(description='Shown before the button: "If you did not receive the email,".')]


class RegisterWall(TypedDict):
    kind: Literal["register"]
    title: Annotated[str, Field(description="In the reader's language, as the body and the labels.")]
    body: str
    actions: Annotated[
        list[Annotated[RegisterAction | LoginAction | ProviderAction, Field(discriminator="kind")]],
        Field(description="Register, log in, then one per sign-in provider of the site."),
    ]


class VerifyWall(TypedDict):
    kind: Literal["verify"]
    title: str
    body: str
    actions: tuple[ResendAction]


class SubscribeWall(TypedDict):
    kind: Literal["subscribe"]
    title: str
    body: str
    actions: Annotated[
        list[Annotated[SubscribeAction | LoginAction | ProviderAction, Field(discriminator="kind")]],
        Field(description="Subscribe, log in, then one per sign-in provider of the site."),
    ]


class QuotaWall(TypedDict):
    """The quota is used up (or Redis is away and the answer is degraded_deny): the body says when it comes back."""

    kind: Literal["quota"]
    title: str
    body: str
    actions: tuple[SubscribeAction]


Wall = Annotated[RegisterWall | VerifyWall | SubscribeWall | QuotaWall, Field(discriminator="kind")]


class AccountLink(TypedDict):
    """The signed-in reader's way to their account page ("Akun Saya")."""

    label: str
    url: Annotated[str, Field(description="meter's account page of the site, in the reader's language.")]


class EmbedAccess(TypedDict):
    """The embed's access answer: the decision, the banner to show when it is allowed, the wall when not."""

    allowed: bool
    reason: Reason
    state: Judged
    logged_in: Annotated[
        bool, Field(description="Judged as the reader of meter's login cookie (else the anonymous id).")
    ]
    meter: AccessMeter
    banner: Annotated[str | None, Field(description='"N free articles left" after a metered read, else null.')]
    wall: Annotated[Wall | None, Field(description="Null when allowed.")]
    colour: Annotated[str, Field(description="The site's accent colour (CSS), for the wall.")]
    degraded: bool
    account: Annotated[AccountLink | None, Field(description="When logged in: the account page. Else null.")]
    can_give: Annotated[
        bool,
        Field(
            description="A subscriber on a site with gifts: the script shows the gift button "
            "(GET /embed/{site_slug}/gifts says how many are left)."
        ),
    ]
    gift: NotRequired[Annotated[GiftRefusal, GIFT_FIELD]]
    grant: NotRequired[Annotated[str, GRANT_FIELD]]


class EmbedResendSent(TypedDict):
    status: Literal["sent"]
    retry_after: Annotated[int, Field(ge=1, description="Seconds before the button may ask again.")]
    message: str


class EmbedResendWait(TypedDict):
    status: Literal["wait"]
    retry_after: Annotated[int, Field(ge=1, description="Seconds left of the cool-down (also in Retry-After).")]
    message: str


# --- gift articles (/v1/gifts and the embed's gift button) ---------------------------------------------


class GiftMade(TypedDict):
    gift_token: str
    url: Annotated[str, Field(description="The article's URL with `gift=<gift_token>`: the link to share.")]
    expires_at: Annotated[str, Field(description="When the link stops working (ISO-8601, UTC).")]
    gifts_left: Annotated[int, Field(ge=0, description="Gifts the reader may still make this period.")]


# "class" is a Python keyword: the functional form names the key.
GiftArticleOut = TypedDict("GiftArticleOut", {"id": str, "class": Literal["metered", "premium"]})


class GiftOut(TypedDict):
    gift_token: str
    url: str
    article: GiftArticleOut
    created_at: str
    expires_at: str
    state: Literal["active", "expired", "revoked"]
    devices: Annotated[int, Field(ge=0, description="Different readers or visitors who opened it.")]
    device_limit: Annotated[int, Field(ge=1, description="How many may open it (the policy's gifts.devices then).")]
    opened: Annotated[int, Field(ge=0, description="Gifted reads it gave (every opening, devices repeated).")]


class GiftList(TypedDict):
    gifts: Annotated[list[GiftOut], Field(description="This period's gifts, newest first.")]
    gifts_left: Annotated[int, Field(ge=0)]


class EmbedGifts(TypedDict):
    """The gift button of the reader of this browser: how many gifts are left, the button's label."""

    gifts_left: Annotated[int, Field(ge=0)]
    label: Annotated[str, Field(description='"Hadiahkan artikel ini (N tersisa)" / "Gift this article (N left)".')]


class EmbedGiftMade(GiftMade):
    label: Annotated[str, Field(description="The button's label now (with the gifts left).")]
    message: Annotated[str, Field(description="What to tell the reader about the link.")]
    copy_label: Annotated[str, Field(description='The copy button: "Salin tautan" / "Copy link".')]
    copied_label: Annotated[str, Field(description='The copy button once copied: "Tersalin" / "Copied".')]


# --- the figures (GET /v1/stats) ---------------------------------------------------------------------


class DayFigures(TypedDict):
    date: Annotated[str, Field(description="YYYY-MM-DD, in the site's time zone.")]
    views: Annotated[
        dict[str, int], Field(description="The access check's answers with record true, by reason (every reason).")
    ]
    registrations: int
    activations: int
    median_activation_seconds: Annotated[
        int | None, Field(description="Median time from registration to activation of that day's activations.")
    ]
    signins: Annotated[dict[str, int], Field(description='Logins by method: "password" and each provider name.')]
    subscriptions_started: int
    gifts_made: int


class Interval(TypedDict):
    rate: Annotated[float, Field(description="The conversions per wall shown (0 to 1).")]
    low: Annotated[float, Field(description="The 95% interval's lower end (Wilson score interval).")]
    high: Annotated[float, Field(description="Its upper end.")]


class VariantQuota(TypedDict):
    anonymous: int
    registered: int
    verified: int


INTERVAL_NULL = "null before the variant's first wall."


class VariantFigures(TypedDict):
    name: str
    share: Annotated[int, Field(description="The percent of readers put in this variant.")]
    quota: Annotated[VariantQuota, Field(description="The quotas the variant enforces.")]
    walls: Annotated[int, Field(description="Refusals of the meter's quota shown to readers of the variant.")]
    registrations: int
    activations: int
    subscriptions_started: int
    wall_to_registration: Annotated[
        Interval | None, Field(description="Registrations per wall, with its 95% interval; " + INTERVAL_NULL)
    ]
    wall_to_subscription: Annotated[
        Interval | None, Field(description="Subscriptions started per wall, with its 95% interval; " + INTERVAL_NULL)
    ]


class ExperimentFigures(TypedDict):
    meter: Annotated[str, METER_NAME]
    name: str
    start: Annotated[str, Field(description="ISO-8601 with offset.")]
    end: str
    adopted: Annotated[str | None, Field(description="The variant whose quotas the meter took when it ended.")]
    variants: list[VariantFigures]


class Stats(TypedDict):
    site: str
    timezone: str
    days: list[DayFigures]
    experiments: Annotated[
        list[ExperimentFigures],
        Field(
            description="Each experiment of the site's meters, its figures per variant since it started (whatever "
            "`from` and `to`): the readers and anonymous ids of a variant are counted in it at every event."
        ),
    ]
