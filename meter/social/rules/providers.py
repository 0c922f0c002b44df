"""A site's sign-in providers: what `flask sites login-providers` configures, and what a sign-in needs of them.

Kinds: `google` and `apple` (OpenID Connect at the issuer GOOGLE_ISSUER / APPLE_ISSUER, found by its
discovery document), `oidc` (any issuer the operator names), and `facebook` (OAuth 2 and the Graph
API; not OpenID Connect). The client secret (Apple: the private key that signs the client secret)
is sealed at rest and never shown. A provider is read per process through the sites' cache, so an
`add` or `remove` reaches every process within SITE_CACHE_TTL, without a restart.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import current_app
from joserfc import jwt
from joserfc.jwk import ECKey

from meter.platform import hosts
from meter.platform.clock import utcnow
from meter.platform.db import db
from meter.sites import sites
from meter.sites.models import Site
from meter.social.models import LoginProvider
from meter.social.rules import sealing

KINDS = ("google", "apple", "facebook", "oidc")
OPENID_KINDS = frozenset({"google", "apple", "oidc"})
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
DEFAULT_LABELS = {"google": "Google", "apple": "Apple", "facebook": "Facebook"}
APPLE_SECRET_SECONDS = 3600  # Apple accepts up to six months; a short-lived one is worth less if it leaks


class ProviderError(ValueError):
    """A configuration the operator must correct (the message says how)."""


@dataclass(frozen=True)
class Provider:
    """One provider of one site, with its secret opened (never in repr, never logged)."""

    site_id: int
    name: str
    kind: str
    label: str
    client_id: str
    issuer: str | None  # the OpenID Connect issuer (None for facebook)
    version: str  # changes whenever the operator replaces the provider: clients built for it are rebuilt
    secret: str = field(repr=False)  # the client secret; for apple, the private key (PEM)
    team_id: str | None = None
    key_id: str | None = None

    @property
    def is_openid(self) -> bool:
        return self.kind in OPENID_KINDS

    def client_secret(self, now: float | None = None) -> str:
        """What goes to the token endpoint: the secret, or for Apple a fresh ES256 JWT signed with the
        private key (header kid = key id; iss = team id, sub = client id, aud = Apple's issuer)."""
        if self.kind != "apple":
            return self.secret
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.team_id,
            "iat": issued,
            "exp": issued + APPLE_SECRET_SECONDS,
            "aud": self.issuer,
            "sub": self.client_id,
        }
        return jwt.encode({"alg": "ES256", "kid": self.key_id}, claims, ECKey.import_key(self.secret))


def issuer_for(kind: str, stored: str | None) -> str | None:
    config = current_app.config
    return {"google": config["GOOGLE_ISSUER"], "apple": config["APPLE_ISSUER"], "oidc": stored}.get(kind)


def check_issuer(url: str) -> str:
    """An issuer is one https URL without user, query or fragment, on a host of the Internet.

    meter fetches the issuer's discovery document and keys from the server: an issuer on the
    operator's own network (loopback, private, link-local such as the cloud metadata service, a name
    such as localhost or *.internal; meter.platform.hosts.internal) would make meter fetch from there
    for whoever may add a provider. Such issuers are refused unless SOCIAL_PRIVATE_ISSUERS allows them
    (on by default in development and the tests, whose providers run on loopback; an operator may turn
    it on for an intranet's provider); plain http only then, and only on loopback. A name is checked as
    written, not resolved (what it resolves to can change later)."""
    url = (url or "").strip()
    if len(url) > 512 or any(ch.isspace() or ch < " " or ch == "\x7f" or ch == "\\" for ch in url):
        raise ProviderError("the issuer must be one https URL (no spaces)")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _port = parts.port
    except ValueError:
        raise ProviderError(f"not an issuer URL: {url[:100]!r}") from None
    if "?" in url or "#" in url or "@" in parts.netloc or not host or parts.scheme not in ("https", "http"):
        raise ProviderError("the issuer must be an https URL without user, query or fragment")
    private_ok = bool(current_app.config.get("SOCIAL_PRIVATE_ISSUERS"))
    if hosts.internal(host):
        if not private_ok:
            raise ProviderError(
                f"the issuer's host {host} is on the operator's own network (loopback, private, link-local, "
                "metadata): refused unless SOCIAL_PRIVATE_ISSUERS is on"
            )
    elif hosts.ascii_host(host) is None:
        raise ProviderError(f"the issuer's host is not a host name: {host[:100]!r}")
    if parts.scheme == "http" and not (private_ok and _loopback(host)):
        raise ProviderError(
            "the issuer must use https (plain http only on 127.0.0.1, ::1 or localhost, in development)"
        )
    return url.rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    ip = hosts.address(host)
    return ip is not None and ip.is_loopback


def _printable(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if not value or len(value) > limit or any(ch < " " or ch == "\x7f" for ch in value):
        raise ProviderError(f"{what} must be 1 to {limit} printable characters")
    return value


def add(
    site: Site,
    name: str,
    kind: str,
    client_id: str,
    secret: str,
    *,
    issuer: str | None = None,
    label: str | None = None,
    team_id: str | None = None,
    key_id: str | None = None,
) -> tuple[LoginProvider, bool]:
    """Add or replace the provider `name` of `site` (the caller commits); (row, replaced)."""
    if not NAME_RE.match(name or ""):
        raise ProviderError("the name must be lower-case letters, digits and dashes (at most 32)")
    if kind not in KINDS:
        raise ProviderError(f"the kind must be one of: {', '.join(KINDS)}")
    client_id = _printable(client_id or "", "the client id", 255)
    secret = (secret or "").strip()
    if not secret or len(secret) > 8192:
        raise ProviderError("the secret file must hold the secret (at most 8 KiB)")
    if kind == "oidc":
        if not issuer:
            raise ProviderError("--issuer is required for kind oidc")
        issuer = check_issuer(issuer)
    elif issuer:
        raise ProviderError(f"--issuer is for kind oidc only ({kind} has its own)")
    if kind == "apple":
        team_id = _printable(team_id or "", "--team-id", 32)
        key_id = _printable(key_id or "", "--key-id", 32)
        try:
            key = ECKey.import_key(secret)
        except Exception:  # noqa: BLE001 - any parse failure: the file is not such a key
            raise ProviderError("--private-key-file must hold Apple's private key (PEM, P-256)") from None
        if key.curve_name != "P-256" or not key.is_private:
            raise ProviderError("--private-key-file must hold Apple's private key (PEM, P-256)")
    elif team_id or key_id:
        raise ProviderError("--team-id and --key-id are for kind apple only")
    label = _printable(label or DEFAULT_LABELS.get(kind) or name, "the label", 80)
    row = db.session.scalar(db.select(LoginProvider).filter_by(site_id=site.id, name=name))
    replaced = row is not None
    if row is None:
        row = LoginProvider(site_id=site.id, name=name)
        db.session.add(row)
    row.kind, row.label, row.client_id, row.issuer = kind, label, client_id, issuer
    row.team_id, row.key_id = team_id, key_id
    row.secret = sealing.seal(secret)
    row.updated_at = utcnow()
    return row, replaced


def remove(site: Site, name: str) -> bool:
    """Remove the provider (the caller commits); the readers it linked keep their accounts and identities."""
    row = db.session.scalar(db.select(LoginProvider).filter_by(site_id=site.id, name=name))
    if row is None:
        return False
    db.session.delete(row)
    return True


def reseal_all() -> tuple[int, list[str]]:
    """Seal every provider's secret again with the current SECRET_KEY (the caller commits):
    (how many, and "site/name" of those no configured key opens)."""
    done, failed = 0, []
    for row in db.session.scalars(db.select(LoginProvider).order_by(LoginProvider.id)):
        try:
            row.secret = sealing.reseal(row.secret)
            done += 1
        except sealing.SealError:
            failed.append(f"{row.site.slug}/{row.name}")
    return done, failed


def listing(site: Site) -> list[dict]:
    """What an operator may see of the site's providers: never a secret."""
    rows = db.session.scalars(db.select(LoginProvider).filter_by(site_id=site.id).order_by(LoginProvider.name))
    return [
        {
            "name": row.name,
            "kind": row.kind,
            "label": row.label,
            "client_id": row.client_id,
            "issuer": issuer_for(row.kind, row.issuer),
            **({"team_id": row.team_id, "key_id": row.key_id} if row.kind == "apple" else {}),
            "redirect_uri": redirect_uri(site.slug, row.name),
            "updated_at": row.updated_at.isoformat() + "Z",
        }
        for row in rows
    ]


def redirect_uri(site_slug: str, name: str) -> str:
    """The callback to register at the provider."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/{site_slug}/login/{name}/callback"


def get(site: sites.SiteInfo, name: str) -> Provider | None:
    """The site's provider `name`, secret opened, cached per process like the site (SITE_CACHE_TTL)."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        return None

    def load() -> Provider | None:
        row = db.session.scalar(db.select(LoginProvider).filter_by(site_id=site.id, name=name))
        if row is None:
            return None
        return Provider(
            site_id=site.id,
            name=row.name,
            kind=row.kind,
            label=row.label,
            client_id=row.client_id,
            issuer=issuer_for(row.kind, row.issuer),
            version=f"{row.id}:{row.updated_at.isoformat()}",
            secret=sealing.unseal(row.secret),
            team_id=row.team_id,
            key_id=row.key_id,
        )

    return sites.cached(f"provider:{site.id}:{name}", load)
