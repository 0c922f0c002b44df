"""Request bodies of the /v1 API, validated strictly: a number is not a password."""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, StringConstraints

from meter.platform.identifiers import ANONYMOUS_ID_PATTERN

AnonymousId = Annotated[str, StringConstraints(pattern=ANONYMOUS_ID_PATTERN)]
# Login, resend and reset take any string as an address (they answer alike whether or not it names an
# account); registration takes what it can register, and the schema says so (email-validator checks more):
# an ASCII local part (Flask-Mail cannot deliver SMTPUTF8) and a dotted domain, spaces around allowed.
Email = Annotated[str, StringConstraints(min_length=3, max_length=320)]
NEW_EMAIL_PATTERN = r"^\s*[\x21-\x3f\x41-\x7e]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+\s*$"
NewEmail = Annotated[str, StringConstraints(min_length=6, max_length=320, pattern=NEW_EMAIL_PATTERN)]
Password = Annotated[str, StringConstraints(max_length=1024)]
# Any string up to 4096: one that is not a live token of meter's is answered 400 token-invalid (the contract).
TokenStr = Annotated[
    str,
    StringConstraints(min_length=1, max_length=4096),
    Field(description="A token of meter's; anything else is answered 400 `token-invalid` (or `token-expired`)."),
]
# A password being set: the flows check the minimum themselves (with their own message); this only
# tells /openapi.json about it. Login keeps plain Password: a short one gets the generic 401.
NewPassword = Annotated[Password, Field(json_schema_extra={"minLength": 8})]


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", str_strip_whitespace=False)


class RegisterBody(Body):
    email: NewEmail
    password: NewPassword
    locale: Literal["id", "en"] | None = None
    next: Annotated[str, StringConstraints(max_length=2048)] | None = None
    anonymous_id: AnonymousId | None = None


class EmailBody(Body):
    email: Email


class ResendBody(Body):
    email: Email
    next: Annotated[str, StringConstraints(max_length=2048)] | None = None  # as at registration


class ActivationBody(Body):
    token: TokenStr
    anonymous_id: AnonymousId | None = None


class LoginBody(Body):
    email: Email
    password: Password
    anonymous_id: AnonymousId | None = None


class SocialLoginBody(Body):
    """A sign-in with an ID token that the publisher's page got from the provider's own button."""

    provider: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="The name of one of the site's sign-in providers (flask sites login-providers)."
    )
    id_token: Annotated[str, StringConstraints(min_length=1, max_length=8192)] = Field(
        description="The provider's ID token (a signed JWT) for this provider's client id."
    )
    nonce: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None, description="The nonce the page gave the provider's button; the ID token must carry it."
    )
    anonymous_id: AnonymousId | None = None


class SessionBody(RootModel[LoginBody | SocialLoginBody]):
    """`POST /v1/sessions`: an address and a password, or a provider's ID token."""


class LogoutBody(Body):
    reader_token: TokenStr


class ResetConfirmBody(Body):
    token: TokenStr
    password: NewPassword


class PasswordChangeBody(Body):
    current_password: Password
    password: NewPassword


class EmailChangeBody(Body):
    password: Password
    email: NewEmail


class TokenBody(Body):
    token: TokenStr


class DeletionBody(Body):
    """The account's password; or, for an account without one, nothing (a confirmation link is mailed)
    and then the `confirm_token` of that link."""

    password: Password | None = None
    confirm_token: TokenStr | None = None


def _aware(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an ISO-8601 date and time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("give a time with a UTC offset, such as 2027-01-01T00:00:00+07:00")
    try:
        parsed.astimezone(UTC)  # kept in UTC: 9999-12-31T23:00:00-14:00 is past the last datetime there
    except OverflowError:
        raise ValueError("out of range") from None
    return parsed


# ISO 8601 with a UTC offset (or Z), as datetime.fromisoformat reads it.
UNTIL_PATTERN = r"^\d{4}-?\d{2}-?\d{2}[T ]\d{2}(:?\d{2}(:?\d{2}([.,]\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)$"


class SubscriptionBody(Body):
    until: Annotated[
        str,
        StringConstraints(max_length=64, pattern=UNTIL_PATTERN),
        Field(json_schema_extra={"format": "date-time"}),
        AfterValidator(_aware),
    ]


class Article(Body):
    # No control characters: ids are stored in the ledger, and PostgreSQL text cannot hold NUL.
    id: Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$")]
    class_: Literal["free", "metered", "premium"] = Field("metered", alias="class")
    section: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")] | None = (
        Field(
            None,
            description="The article's section: the site's policy maps sections to meters (`sections`); an unknown "
            "section, or none, counts in the default meter.",
        )
    )


# A page's referrer, only classified (search, social, other: docs/api.md "Rules by arrival"), never stored.
Referrer = Annotated[
    str,
    StringConstraints(max_length=2048),
    Field(
        description="The page that sent the reader (the Referer of the article's request, `document.referrer`): "
        "a search engine or a social network may earn the reader a rule's extra reads (the policy's `rules`). "
        "Only its host is looked at; anything that is not a URL counts as another site."
    ),
]
Campaign = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"),
    Field(description="The campaign the reader came by (the page URL's `utm_campaign`), compared in lower case."),
]


class SignedArticle(Article):
    """An article as a page describes it (the embed, AMP): optionally signed by the publisher's server."""

    expires: int | None = Field(None, description="Unix time after which `sig` is refused.")
    sig: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None,
        description="The publisher's signature of id, class, expires, section and campaign, when one is given "
        "(docs/api.md: signed articles).",
    )
    campaign: Campaign | None = Field(
        None,
        description="The campaign of the page (its URL's `utm_campaign`), signed with the rest when signing is on: "
        "with `signed_articles: required` only a signed campaign earns a rule's extra reads.",
    )


def _ip(value: str) -> str:
    """The address, written as Python writes it. An IPv4 address in its usual form (the common case, and
    one that comes with every access check) is checked by the C library (`inet_pton` refuses what
    `ipaddress` refuses: leading zeros, short forms), not parsed into an object only to be printed back."""
    value = value.strip()
    try:
        socket.inet_pton(socket.AF_INET, value)
        return value
    except (OSError, ValueError):  # ValueError: a NUL in the text
        pass
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("not an IPv4 or IPv6 address") from None


class Client(Body):
    """The reader's client as the publisher's server saw it: only used to recognise search engines' crawlers
    and link-preview fetchers, and the reader's arrival for the rules by arrival (docs/api.md), never
    stored with the reader."""

    ip: (
        Annotated[
            str,
            StringConstraints(min_length=2, max_length=64),
            AfterValidator(_ip),
            Field(
                description="The client's address (IPv4 or IPv6), as your server saw it behind your own proxies.",
                json_schema_extra={"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
            ),
        ]
        | None
    ) = None
    user_agent: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        None, description="The client's User-Agent header."
    )
    referrer: Referrer | None = None
    campaign: Campaign | None = None


GiftToken = Annotated[
    str,
    StringConstraints(max_length=256),
    Field(description="A gift link's token (its `gift` parameter); a bad one never fails the call (`gift`: invalid)."),
]


class AccessBody(Body):
    reader_token: str | None = None  # any string: a bad token is judged as anonymous, never refused
    anonymous_id: AnonymousId | None = None
    article: Article
    record: bool = True
    client: Client | None = None
    gift_token: GiftToken | None = None
    grant: bool = Field(
        False,
        description="Ask for a `grant` on an allowed, counted answer (the site's setting `grants` gives one always); "
        "none when the site has no grant key.",
    )


class EmbedAccessBody(Body):
    """What the embed's script sends to /embed/<site>/access (JSON sent as text/plain: a CORS simple
    request). A url or subscribe_url that is not on one of the site's origins is ignored."""

    article: SignedArticle
    record: bool = Field(True, description="False while the page is prerendered: judged, not counted.")
    url: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        None,
        description="The article page's URL (where login and register return to; its `utm_campaign` is the "
        "campaign unless the article names one, and never with `signed_articles: required`).",
    )
    referrer: Referrer | None = None
    subscribe_url: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        None, description="Overrides the site's subscribe URL on the walls."
    )
    gift_token: GiftToken | None = None


class GiftArticle(Body):
    id: Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$")]
    class_: Literal["metered", "premium"] = Field(
        "metered", alias="class", description="A free article is free for everyone: it cannot be given (422)."
    )
    url: Annotated[str, StringConstraints(min_length=8, max_length=2048)] = Field(
        description="The article's URL, on one of the site's origins: the gift link is this URL with `gift=<token>`."
    )


class GiftBody(Body):
    reader_token: TokenStr
    article: GiftArticle


class EmbedGiftBody(Body):
    """What the embed's gift button sends (JSON as text/plain): the page's article and URL."""

    article: SignedArticle
    url: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
