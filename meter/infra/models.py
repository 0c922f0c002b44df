"""The durable state: sites, keys, readers, sessions, sign-in providers and identities, the unlock ledger (and
unlocks in doubt), gifts and who opened them, the mail outbox, the webhook endpoints and their deliveries,
and the publisher console's staff, their grants, sessions and audit log.

Redis holds only what can be rebuilt from these tables.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meter.infra import clock
from meter.infra.db import db


def utcnow() -> datetime:
    """Naive UTC, as stored; follows meter's clock so tests can travel in time."""
    return clock.now().replace(tzinfo=None)


class Site(db.Model):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    locale: Mapped[str] = mapped_column(String(8), default="id")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What readers see of the site: {"colour": "#b00", "subscribe_url": "https://…"} (`flask sites settings`).
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))

    keys: Mapped[list[ApiKey]] = relationship(back_populates="site", cascade="all, delete-orphan")
    article_keys: Mapped[list[ArticleKey]] = relationship(back_populates="site", cascade="all, delete-orphan")
    grant_keys: Mapped[list[GrantKey]] = relationship(
        back_populates="site", cascade="all, delete-orphan", order_by="GrantKey.id"
    )
    login_providers: Mapped[list[LoginProvider]] = relationship(
        back_populates="site", cascade="all, delete-orphan", order_by="LoginProvider.id"
    )


class ApiKey(db.Model):
    """Only a SHA-256 of the key is stored; the prefix finds the row and names the key to operators."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    site: Mapped[Site] = relationship(back_populates="keys")


class ArticleKey(db.Model):
    """A secret the publisher signs article descriptors with (HMAC), so a reader cannot choose an article's class.

    Kept as is: meter needs it to verify signatures. Shown once when made; `kid` names it in signatures.
    """

    __tablename__ = "article_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    kid: Mapped[str] = mapped_column(String(16), unique=True)
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    site: Mapped[Site] = relationship(back_populates="article_keys")


class GrantKey(db.Model):
    """A key meter signs the site's grants with (Ed25519 or P-256); publishers verify with its public half.

    `private_key` is the PEM, sealed like the providers' secrets (meter.domain.social.sealing);
    `public_jwk` is the public key as a JWK (JSON text), served in the site's JWK Set. One key signs
    (meter.domain.sites.signing_grant_key); a key rotated out stops signing at `retired_at` and stays
    in the set until `published_until` (every grant it signed has expired by then); a key retired at
    once (a leak) leaves the set at once.
    """

    __tablename__ = "grant_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    kid: Mapped[str] = mapped_column(String(32), unique=True)
    alg: Mapped[str] = mapped_column(String(8))
    private_key: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]
    published_until: Mapped[datetime | None]

    site: Mapped[Site] = relationship(back_populates="grant_keys")


class LoginProvider(db.Model):
    """A way to sign in with another account (Google, Apple, Facebook, any OpenID Connect issuer), per site.

    `secret` is the client secret (for Apple: the private key the client secret is signed with),
    encrypted with a key derived from SECRET_KEY (meter.domain.social.sealing); it is never shown.
    """

    __tablename__ = "login_providers"
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_login_providers_site_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))  # in the URLs: /<site>/login/<name>
    kind: Mapped[str] = mapped_column(String(16))  # google | apple | facebook | oidc
    label: Mapped[str] = mapped_column(String(80))  # the button's text: the provider's own name
    client_id: Mapped[str] = mapped_column(String(255))
    secret: Mapped[str] = mapped_column(Text)  # sealed (Fernet)
    issuer: Mapped[str | None] = mapped_column(String(512))
    team_id: Mapped[str | None] = mapped_column(String(32))  # Apple
    key_id: Mapped[str | None] = mapped_column(String(32))  # Apple
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    site: Mapped[Site] = relationship(back_populates="login_providers")


class Reader(db.Model):
    __tablename__ = "readers"
    __table_args__ = (
        UniqueConstraint("site_id", "email_key", name="uq_readers_site_email_key"),
        # The worker's retention duty looks for accounts never activated, oldest first.
        Index("ix_readers_unverified", "verified_at", "created_at"),
        # A deleted reader's id is never given again (tokens, Redis keys and the ledger name readers by
        # id); PostgreSQL's sequences never go back, SQLite's rowids do without this (migration 0019).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    # As the reader wrote it (normalised); mail goes only here.
    email: Mapped[str] = mapped_column(String(320))
    # NFKC + casefold: finds the account whatever the case or compatibility form typed.
    email_key: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    # While unverified: the password of the latest registration of this address, installed only when
    # the activation link mailed for that registration is clicked (meter.domain.accounts.confirm).
    pending_password_hash: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str] = mapped_column(String(8), default="id")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[datetime | None]
    subscription_until: Mapped[datetime | None]  # naive UTC
    # Bumped whenever the password changes: reset tokens and sessions made before die.
    auth_version: Mapped[int] = mapped_column(default=1)
    last_activation_sent_at: Mapped[datetime | None]
    # An address the reader asked to move to, until the link mailed there is clicked (accounts.profile).
    pending_email: Mapped[str | None] = mapped_column(String(320))

    @property
    def state(self) -> str:
        if self.is_subscriber():
            return "subscriber"
        return "verified" if self.verified_at else "registered"

    def is_subscriber(self, now: datetime | None = None) -> bool:
        return self.subscription_until is not None and self.subscription_until > (now or utcnow())


class ReaderSession(db.Model):
    """One login; a reader token names it, and revoking it kills the token everywhere.

    `device` is a short label made from the browser's User-Agent at login ("Chrome · Android"), kept
    so the reader can tell their sessions apart on the account page; never the User-Agent itself.
    """

    __tablename__ = "reader_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    device: Mapped[str | None] = mapped_column(String(80))
    # Last seen where meter looks the session up in SQL (pages, /v1/readers/me …), not on access checks.
    last_used_at: Mapped[datetime | None]


class Identity(db.Model):
    """A reader's account at a sign-in provider: (site, provider name, the provider's subject `sub`).

    `email` is the address the provider gave at the last sign-in and `email_verified` whether it said
    the address was verified; the reader's own address stays in `readers`.
    """

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("site_id", "provider", "subject", name="uq_identities_site_provider_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)


class Unlock(db.Model):
    """The ledger of unlocks: the truth the Redis meter is rebuilt from."""

    __tablename__ = "unlocks"
    __table_args__ = (
        UniqueConstraint("site_id", "subject", "period", "article_id", name="uq_unlocks_subject_article"),
        Index("ix_unlocks_subject_period", "site_id", "subject", "period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(160))  # "r:<reader id>" or "a:<anonymous id>"
    period: Mapped[str] = mapped_column(String(32))
    article_id: Mapped[str] = mapped_column(String(512))
    unlocked_at: Mapped[datetime] = mapped_column(default=utcnow)


class UnlockDoubt(db.Model):
    """A recording check whose Redis reply was lost: the script may have unlocked the article or not.

    Settled by `metering.settle_doubts` (the worker, `flask meter settle`): in Redis → into the ledger,
    else forgotten. Without it, such an unlock lived in Redis only and was lost with Redis's data.
    """

    __tablename__ = "unlock_doubts"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(160))
    article_id: Mapped[str] = mapped_column(String(512))
    checked_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Gift(db.Model):
    """An article a subscriber gave: its link works for `expires_at`, for at most the policy's
    `gifts.devices` different readers or visitors, until revoked. The truth the gifted reads' Redis
    copy (meter.domain.gifts) is rebuilt from. `token` is the link's secret; a new one replaces a
    revoked or expired link when the same article is given again in the same period."""

    __tablename__ = "gifts"
    __table_args__ = (
        Index("ix_gifts_reader_created", "reader_id", "created_at"),
        {"sqlite_autoincrement": True},  # gift_openings name a gift by id: never given again (as readers')
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    article_id: Mapped[str] = mapped_column(String(512))
    article_class: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(2200))
    devices: Mapped[int]  # the device limit when it was made (the policy may change later)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    openings: Mapped[list[GiftOpening]] = relationship(
        back_populates="gift", cascade="all, delete-orphan", passive_deletes=True
    )


class GiftOpening(db.Model):
    """A device that opened a gift: the 8-byte hash (hex) of the reader or anonymous id, never the id."""

    __tablename__ = "gift_openings"
    __table_args__ = (UniqueConstraint("gift_id", "device", name="uq_gift_openings_gift_device"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gift_id: Mapped[int] = mapped_column(ForeignKey("gifts.id", ondelete="CASCADE"))
    device: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)

    gift: Mapped[Gift] = relationship(back_populates="openings")


class DailyStat(db.Model):
    """The console's and /v1/stats' figures, per site and day (the site's time zone): one row per figure.

    `metric` is views (key: the access check's reason), registrations, activations, signins (key: the
    method), subscriptions_started or gifts_made. Views are counted in Redis by the access check's
    script and rolled up here by the worker each minute; the others are counted here as they happen.
    No row names a reader: deleting one leaves the figures as they were.
    """

    __tablename__ = "daily_stats"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True, default="")
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class ActivationTime(db.Model):
    """How long one reader took from registration to activation (for the median), without the reader."""

    __tablename__ = "activation_times"
    __table_args__ = (Index("ix_activation_times_site_day", "site_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date]
    seconds: Mapped[int]


class OutboxMail(db.Model):
    """Mail waiting for the worker; a request only ever writes here, never to SMTP.

    The headers that depend on the site (sender, reply_to, message_id) are fixed when the mail is
    queued, with its body: the footer that says "reply to this email" is then always true of the
    mail it is in, a retry keeps the Message-ID (so a receiver can drop a duplicate), and the worker
    needs no site settings. Rows queued before these columns existed have them NULL: the worker
    then uses MAIL_DEFAULT_SENDER.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(40))
    to_addr: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(String(400))  # "Name <address>", the From
    reply_to: Mapped[str | None] = mapped_column(String(320))
    message_id: Mapped[str | None] = mapped_column(String(255))  # "<…@the sender's domain>"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class Staff(db.Model):
    """A publisher's staff member: signs in to the console (`/console/`), never to a site as a reader.

    Made by `flask staff create`, which mails nothing: it prints a one-time set-up link (only its SHA-256
    is kept, in `setup_token_hash`) where the member sets a password (Argon2id, as readers) and enrols an
    authenticator. `totp_secret` is sealed at rest (meter.domain.social.sealing); `totp_last_step` is the
    time step of the last code accepted, so that a code cannot be used twice.
    """

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)  # NFKC + casefold, as readers'
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    setup_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    setup_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    setup_at: Mapped[datetime | None]  # when the password and authenticator were set: signing in works from then
    disabled_at: Mapped[datetime | None]

    grants: Mapped[list[StaffGrant]] = relationship(
        back_populates="staff", cascade="all, delete-orphan", order_by="StaffGrant.site_id"
    )


class StaffGrant(db.Model):
    """A staff member's role on one site: support < editor < owner (meter.domain.staff.roles)."""

    __tablename__ = "staff_grants"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))

    staff: Mapped[Staff] = relationship(back_populates="grants")
    site: Mapped[Site] = relationship()


class StaffSession(db.Model):
    """One console sign-in. `id` is the SHA-256 of the cookie's token (a database dump holds no live
    session); it ends when signed out, when idle too long (STAFF_IDLE_SECONDS) or when the member is disabled."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class AuditEntry(db.Model):
    """One thing done through the console or the staff commands: who, when, what, on which site.

    `actor` and `site_slug` are kept as text, so the row still says who and where after the staff
    member or the site is gone. `detail` names what was changed (a reader id, a key prefix, the
    policy before and after), never a secret.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_site_at", "site_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(320))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    site_slug: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class BulkResend(db.Model):
    """A console request to resend the activation mail to every unverified reader registered since a
    date: worked through by the worker in batches (`cursor` is the last reader id done), so the page
    can show its progress and a large site never ties up a request."""

    __tablename__ = "bulk_resends"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    since: Mapped[datetime]  # naive UTC: readers registered from then on
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    queued: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    cursor: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime | None]


class WebhookEndpoint(db.Model):
    """A URL of the publisher's that is sent the site's events (Standard Webhooks, meter.domain.webhooks).

    `secret` is the signing secret (`whsec_…`), sealed at rest as the sign-in providers' secrets are
    (meter.domain.social.sealing), shown once when made. After a rotation the old one stays, sealed, in
    `previous_secret` until `previous_until`: deliveries are signed with both meanwhile. `events` lists
    the event types sent ([] = all of them). `failing_since` is when the endpoint's current run of
    failures began (None after a success); `disabled_at` stops deliveries (a 410, or 3 days failing).
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(Text)  # sealed
    previous_secret: Mapped[str | None] = mapped_column(Text)  # sealed
    previous_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(200))


class WebhookDelivery(db.Model):
    """One event for one endpoint: the webhook outbox (meter.infra.webhook_outbox writes it in the
    transaction of the change; the worker delivers it). `msg_id` is the `webhook-id`, the same on
    every attempt; `body` the exact bytes signed and sent. `reader_id` names the reader the event is
    about (no foreign key: a reader.deleted row outlives its reader), so that a deletion removes the
    reader's past deliveries. `last_response` keeps at most 1 kB of the receiver's answer."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "delivered_at", "dead_at", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_reader", "reader_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    reader_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(1200))
    last_response: Mapped[str | None] = mapped_column(String(1100))
