"""The tables of this feature: LoginProvider, Identity."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meter.platform.clock import utcnow
from meter.platform.db import db

if TYPE_CHECKING:
    from meter.sites.models import Site


class LoginProvider(db.Model):
    """A way to sign in with another account (Google, Apple, Facebook, any OpenID Connect issuer), per site.

    `secret` is the client secret (for Apple: the private key the client secret is signed with),
    encrypted with a key derived from SECRET_KEY (meter.social.rules.sealing); it is never shown.
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


# LoginProvider.site names Site, a table of another feature: that class is mapped whenever this module is
# imported, so the relationship resolves even where nothing else imported its module (a test of rules
# without an app). At the end: in an import cycle, this module's classes exist by then.
import meter.sites.models  # noqa: E402, F401
