"""The tables of this feature: Site, ApiKey, ArticleKey, GrantKey."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meter.platform.clock import utcnow
from meter.platform.db import db

if TYPE_CHECKING:
    from meter.social.models import LoginProvider


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

    `private_key` is the PEM, sealed like the providers' secrets (meter.social.rules.sealing);
    `public_jwk` is the public key as a JWK (JSON text), served in the site's JWK Set. One key signs
    (meter.sites.rules.sites.signing_grant_key); a key rotated out stops signing at `retired_at` and stays
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


# Site.login_providers names LoginProvider, a table of another feature: that class is mapped whenever this module is
# imported, so the relationship resolves even where nothing else imported its module (a test of rules
# without an app). At the end: in an import cycle, this module's classes exist by then.
import meter.social.models  # noqa: E402, F401
