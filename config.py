"""Configuration, read from the environment (a `.env` file is read in development only).

One `Config` class, as in the Flask Mega-Tutorial; `TestConfig` only changes what tests need.
Production sets its variables itself (the systemd units' environment file, docs/operations.md) and
installs requirements.txt only, which has no python-dotenv: a stray `.env` there is never read.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
# What `make run` (meter.dev.devserver) last served, written under the instance directory: its
# PUBLIC_BASE_URL, so that the operator's commands on its data (`METER_ENV=development bin/meter …`)
# print the redirect URIs and links of the port it runs on. Read in development only, after `.env`.
MAKE_RUN_ENV = "make-run.env"

_DEVELOPMENT = os.environ.get("METER_ENV") == "development"
DEV_BASE_URL = "http://127.0.0.1:5000"

if _DEVELOPMENT:
    try:  # python-dotenv (requirements-dev.txt): a development convenience, never required.
        from dotenv import load_dotenv

        load_dotenv(BASE_DIR / ".env")  # neither file overrides what the environment sets
        load_dotenv(Path(os.environ.get("METER_INSTANCE_DIR", BASE_DIR / "instance")) / MAKE_RUN_ENV)
    except ImportError:  # pragma: no cover
        pass

INSTANCE_DIR = Path(os.environ.get("METER_INSTANCE_DIR", BASE_DIR / "instance"))


def dev_redis_socket(instance_dir: str | os.PathLike) -> str:
    """Where `make run`'s own redis-server listens: a unix socket under instance/ (or in /tmp when
    that path is too long for a socket)."""
    path = os.path.join(instance_dir, "redis.sock")
    if len(path) > 100:  # unix socket paths are limited to ~107 bytes
        digest = hashlib.sha256(str(instance_dir).encode()).hexdigest()[:12]
        path = os.path.join(tempfile.gettempdir(), f"meter-{digest}.sock")
    return path


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Settings whose value cannot be read, each a line naming it: create_app refuses to start with them
# (meter.platform.settings.ConfigError), so a typo stops the start instead of raising a traceback here.
UNREADABLE: list[str] = []


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        UNREADABLE.append(f"{name} must be a whole number, not {value!r}")
        return default


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError:
        UNREADABLE.append(f"{name} must be a number of seconds, such as {default}, not {value!r}")
        return default


def _list(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


class Config:
    ENV_NAME = os.environ.get("METER_ENV", "production")  # "development" relaxes SECRET_KEY
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SECRET_KEY_FALLBACKS = _list("SECRET_KEY_FALLBACKS")
    # The same from files (one key a line), read again by every new gunicorn worker: a rotation is
    # "edit the files, reload" (meter/platform/keyfiles.py). Each excludes its variable above.
    SECRET_KEY_FILE = os.environ.get("SECRET_KEY_FILE", "")
    SECRET_KEY_FALLBACKS_FILE = os.environ.get("SECRET_KEY_FALLBACKS_FILE", "")

    # Required outside development (create_app says so and stops); in development, SQLite under instance/.
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{INSTANCE_DIR / 'meter.sqlite3'}" if ENV_NAME == "development" else ""
    )
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    # Required outside development; in development, `make run`'s own redis-server under instance/.
    REDIS_URL = os.environ.get("REDIS_URL") or (
        f"unix://{dev_redis_socket(INSTANCE_DIR)}" if ENV_NAME == "development" else ""
    )
    # The access check must answer even when Redis hangs: short timeouts, then degraded mode.
    REDIS_SOCKET_TIMEOUT = _float("REDIS_SOCKET_TIMEOUT", 0.25)
    # After a Redis failure, skip Redis for this long instead of paying a timeout per request.
    REDIS_RETRY_AFTER = _float("REDIS_RETRY_AFTER", 1.0)
    # While Redis is away each process logs the outage once, then a summary this often, and its end.
    REDIS_OUTAGE_LOG_SECONDS = _float("REDIS_OUTAGE_LOG_SECONDS", 60.0)

    MAIL_SERVER = os.environ.get("MAIL_SERVER", "127.0.0.1")
    MAIL_PORT = _int("MAIL_PORT", 1025)
    MAIL_USE_TLS = _bool("MAIL_USE_TLS")
    MAIL_USE_SSL = _bool("MAIL_USE_SSL")
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "meter <no-reply@localhost>")
    # Flask-Mail sets no timeout; a hanging SMTP server must not stall the worker.
    MAIL_TIMEOUT = _float("MAIL_TIMEOUT", 10.0)
    MAIL_MAX_ATTEMPTS = _int("MAIL_MAX_ATTEMPTS", 12)  # then the row is a dead letter
    MAIL_RETRY_BASE = _float("MAIL_RETRY_BASE", 30.0)  # seconds, doubled per attempt
    MAIL_RETRY_MAX = _float("MAIL_RETRY_MAX", 3600.0)

    # Every mailed link starts with it. Development defaults to make run's address; production has no
    # default and refuses to start without it (meter.platform.settings.public_address_problems).
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", DEV_BASE_URL if _DEVELOPMENT else "").rstrip("/")

    ACTIVATION_MAX_AGE = _int("ACTIVATION_MAX_AGE", 3 * 24 * 3600)
    RESET_MAX_AGE = _int("RESET_MAX_AGE", 3600)
    READER_TOKEN_MAX_AGE = _int("READER_TOKEN_MAX_AGE", 30 * 24 * 3600)
    # The link that moves an account to a new address (mailed there), and the one that confirms the
    # deletion of an account without a password (mailed to its address).
    EMAIL_CHANGE_MAX_AGE = _int("EMAIL_CHANGE_MAX_AGE", 24 * 3600)
    ACCOUNT_DELETION_MAX_AGE = _int("ACCOUNT_DELETION_MAX_AGE", 24 * 3600)
    # Retention (docs/security.md): accounts never activated are deleted after this many days, and mail
    # the outbox sent (or gave up on) is deleted after SENT_MAIL_RETENTION_DAYS; the worker checks hourly.
    UNVERIFIED_RETENTION_DAYS = _int("UNVERIFIED_RETENTION_DAYS", 30)
    SENT_MAIL_RETENTION_DAYS = _int("SENT_MAIL_RETENTION_DAYS", 30)
    RETENTION_EVERY_SECONDS = float(os.environ.get("RETENTION_EVERY_SECONDS", "3600"))
    # How long reader state (verified, subscription, live sessions) stays cached in Redis.
    READER_CACHE_TTL = _int("READER_CACHE_TTL", 3600)
    # How long a site and its API key hashes stay cached in each process (key revocation delay).
    SITE_CACHE_TTL = _float("SITE_CACHE_TTL", 10.0)

    # Sign-in with other accounts (docs/social-login.md). Where each kind of provider lives: Google and
    # Apple by their OpenID Connect discovery document under the issuer, Facebook by its dialog and
    # Graph API. Only tests (and a staging provider) point these elsewhere; the code is the same.
    GOOGLE_ISSUER = os.environ.get("GOOGLE_ISSUER", "https://accounts.google.com").rstrip("/")
    APPLE_ISSUER = os.environ.get("APPLE_ISSUER", "https://appleid.apple.com").rstrip("/")
    FACEBOOK_DIALOG_URL = os.environ.get("FACEBOOK_DIALOG_URL", "https://www.facebook.com/v19.0/dialog/oauth")
    FACEBOOK_GRAPH_URL = os.environ.get("FACEBOOK_GRAPH_URL", "https://graph.facebook.com/v19.0").rstrip("/")
    # Each call to a provider (discovery, keys, token, user info) gives up after this many seconds.
    SOCIAL_HTTP_TIMEOUT = float(os.environ.get("SOCIAL_HTTP_TIMEOUT", "5"))
    # An oidc issuer on the operator's own network (loopback, private addresses, localhost, *.internal, the
    # cloud metadata address) is refused unless this is on: meter fetches from the issuer (docs/security.md).
    # On in development, whose test provider runs on loopback; an intranet's own provider needs it too.
    SOCIAL_PRIVATE_ISSUERS = _bool("SOCIAL_PRIVATE_ISSUERS", ENV_NAME == "development")
    # How long a started sign-in may take at the provider before its state expires (seconds).
    SOCIAL_STATE_TTL = _int("SOCIAL_STATE_TTL", 600)

    # Search crawlers (policy crawlers: verified): the updated address ranges (`flask crawlers update`; else
    # the copy shipped in the package), and the DNS server ("host" or "host:port"; else the system's) and
    # timeout (s) of the reverse-DNS check (meter/access/rules/crawlers/).
    # The one folder meter writes besides its database (the crawler ranges `flask crawlers update`
    # fetches, the backup's last success): /var/lib/meter under systemd (StateDirectory=meter sets
    # STATE_DIRECTORY), else METER_STATE_DIR, else instance/ (development).
    STATE_DIR = os.environ.get("METER_STATE_DIR") or os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    CRAWLER_RANGES_FILE = os.environ.get("CRAWLER_RANGES_FILE", "")
    # Where deploy/meter-backup writes the time of its last good dump; /metrics reports it (unset: nothing).
    BACKUP_STATUS_FILE = os.environ.get("BACKUP_STATUS_FILE", "")
    CRAWLER_DNS_SERVER = os.environ.get("CRAWLER_DNS_SERVER", "")
    CRAWLER_DNS_TIMEOUT = float(os.environ.get("CRAWLER_DNS_TIMEOUT", "2"))

    MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 64 * 1024)
    # When set, GET /metrics wants `Authorization: Bearer <METRICS_TOKEN>` (else open: restrict at the proxy).
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
    # Answer well-formed access checks without Flask's request machinery (meter/api/fastpath.py).
    METER_FAST_ACCESS = _bool("METER_FAST_ACCESS", True)

    # Argon2id cost (argon2-cffi's RFC 9106 "low memory" profile by default).
    ARGON2_TIME_COST = _int("ARGON2_TIME_COST", 3)
    ARGON2_MEMORY_COST = _int("ARGON2_MEMORY_COST", 64 * 1024)
    ARGON2_PARALLELISM = _int("ARGON2_PARALLELISM", 4)

    WTF_CSRF_TIME_LIMIT = None  # the CSRF token lives as long as the session
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", ENV_NAME != "development")
    # The demo publisher site at /demo-site/ (always on in development).
    DEMO_SITE = _bool("DEMO_SITE")
    DEMO_SITE_SLUG = os.environ.get("DEMO_SITE_SLUG", "demo")

    # Logs: "json" (one object per line) or "text". See meter/logs.py.
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "json").strip().lower()

    # Rate limits (meter/accounts/rate_limits.py, on REDIS_URL unless RATELIMIT_REDIS_URL says otherwise). Limit
    # strings are the `limits` library's: "20/minute", "1 per 3 minutes;5 per day" (several with ";").
    RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
    RATELIMIT_REDIS_URL = os.environ.get("RATELIMIT_REDIS_URL", "")
    RATELIMIT_STRATEGY = os.environ.get("RATELIMIT_STRATEGY", "fixed-window")
    RATELIMIT_REGISTER_IP = os.environ.get("RATELIMIT_REGISTER_IP", "20/minute")
    RATELIMIT_LOGIN_FAIL_IP = os.environ.get("RATELIMIT_LOGIN_FAIL_IP", "10/minute")  # failed logins only
    # Failed logins of one account from one client address; from all addresses together, the ceiling.
    RATELIMIT_LOGIN_FAIL_ACCOUNT = os.environ.get("RATELIMIT_LOGIN_FAIL_ACCOUNT", "5 per 5 minutes")
    RATELIMIT_LOGIN_FAIL_ACCOUNT_CEILING = os.environ.get("RATELIMIT_LOGIN_FAIL_ACCOUNT_CEILING", "20 per 5 minutes")
    # The mail budget of one address on one site, spent by every path that mails it: registration
    # (activation or "already registered"), every resend, the operator's resend without --force.
    RATELIMIT_RESEND_EMAIL = os.environ.get("RATELIMIT_RESEND_EMAIL", "1 per 3 minutes;5 per day")
    RATELIMIT_RESEND_IP = os.environ.get("RATELIMIT_RESEND_IP", "20/hour")  # resend requests per client IP
    # Reset mail has its own budget per address (so that spending an address's activation budget cannot
    # keep its owner from a password reset), also capped per day: 5 a minute alone allowed 7,200 a day.
    RATELIMIT_RESET_EMAIL = os.environ.get("RATELIMIT_RESET_EMAIL", "5/minute;10/day")
    RATELIMIT_RESET_IP = os.environ.get("RATELIMIT_RESET_IP", "20/minute")
    RATELIMIT_SOCIAL_IP = os.environ.get("RATELIMIT_SOCIAL_IP", "30/minute")  # sign-ins started with another account
    # Changes a signed-in reader makes with their current password (password, address, deletion), per
    # account, every attempt counted: bounds guessing with a stolen session, and the notices it mails.
    RATELIMIT_ACCOUNT_CHANGE = os.environ.get("RATELIMIT_ACCOUNT_CHANGE", "5 per 15 minutes;20 per day")
    RATELIMIT_ACCESS_IP = os.environ.get("RATELIMIT_ACCESS_IP", "")  # empty: the access check is not limited
    # How many proxies in front set X-Forwarded-For (ProxyFix); 0 trusts none: the socket's address counts.
    TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)

    # Compact meter storage: how many bucket keys a site's readers are spread over, per period. Redis
    # keeps a hash of up to hash-max-listpack-entries (512 by default) small fields packed, so aim for
    # 100 to 400 readers a period per bucket: 4096 suits up to ~1.6 million readers a period, 10
    # million monthly readers want 32768. Changing it only costs a reload of each meter from the
    # ledger (the count is in the key names); do not change it back within a period unless the old
    # keys are deleted.
    METER_BUCKETS = _int("METER_BUCKETS", 4096)
    # The publisher console (/console/): a set-up link printed by `flask staff create` works this long (seconds);
    # a console session ends after this long without a request (12 hours).
    STAFF_SETUP_MAX_AGE = _int("STAFF_SETUP_MAX_AGE", 3 * 24 * 3600)
    STAFF_IDLE_SECONDS = _int("STAFF_IDLE_SECONDS", 12 * 3600)
    # Failed console sign-ins (wrong address, password or code): per client address; per staff address from
    # one client address; per staff address from all client addresses together, the ceiling.
    RATELIMIT_CONSOLE_SIGNIN_IP = os.environ.get("RATELIMIT_CONSOLE_SIGNIN_IP", "10/minute")
    RATELIMIT_CONSOLE_SIGNIN_ACCOUNT = os.environ.get("RATELIMIT_CONSOLE_SIGNIN_ACCOUNT", "5 per 5 minutes")
    RATELIMIT_CONSOLE_SIGNIN_ACCOUNT_CEILING = os.environ.get(
        "RATELIMIT_CONSOLE_SIGNIN_ACCOUNT_CEILING", "20 per 5 minutes"
    )
    # Reader searches in the console per staff member (each is also an audit row).
    RATELIMIT_CONSOLE_SEARCH = os.environ.get("RATELIMIT_CONSOLE_SEARCH", "30 per minute;300 per day")
    # How often the worker moves the views counted in Redis into the figures (daily_stats): at most this
    # much of them is lost with Redis's data.
    STATS_ROLL_UP_SECONDS = float(os.environ.get("STATS_ROLL_UP_SECONDS", "60"))
    # How often the worker writes the unlocks journaled in Redis into the ledger (those the access check
    # could not write itself, the database away): the ledger catches up this long after the database is back.
    LEDGER_JOURNAL_SECONDS = float(os.environ.get("LEDGER_JOURNAL_SECONDS", "5"))

    # Webhooks (docs/api.md, docs/security.md). Endpoints on the operator's own network (loopback, private,
    # link-local such as the cloud metadata service) and plain http:// are refused unless this is on
    # (development and the tests, whose receivers run on loopback).
    WEBHOOK_ALLOW_PRIVATE = _bool("WEBHOOK_ALLOW_PRIVATE", ENV_NAME == "development")
    WEBHOOK_CONNECT_TIMEOUT = _float("WEBHOOK_CONNECT_TIMEOUT", 2.0)  # seconds to connect
    WEBHOOK_TIMEOUT = _float("WEBHOOK_TIMEOUT", 5.0)  # seconds for the whole exchange
    # A failed delivery is tried again after this many seconds, doubled per attempt up to WEBHOOK_RETRY_MAX
    # (each wait ±20%), for WEBHOOK_RETRY_SECONDS after the event; then it is a dead letter. An endpoint
    # failing that long (or answering 410) is disabled and the site's owners mailed.
    WEBHOOK_RETRY_BASE = _float("WEBHOOK_RETRY_BASE", 30.0)
    WEBHOOK_RETRY_MAX = _float("WEBHOOK_RETRY_MAX", 6 * 3600.0)
    WEBHOOK_RETRY_SECONDS = _int("WEBHOOK_RETRY_SECONDS", 3 * 24 * 3600)
    # After `rotate-secret`, the old secret signs too (a second signature) for this long.
    WEBHOOK_SECRET_OVERLAP = _int("WEBHOOK_SECRET_OVERLAP", 24 * 3600)
    WEBHOOK_BATCH = _int("WEBHOOK_BATCH", 100)  # deliveries one worker pass takes at most

    UNREADABLE_SETTINGS = UNREADABLE  # read by create_app: a non-empty list stops the start


class TestConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "test-secret-key"
    SECRET_KEY_FALLBACKS: list[str] = []
    PUBLIC_BASE_URL = "http://meter.test"
    SESSION_COOKIE_SECURE = False
    SOCIAL_PRIVATE_ISSUERS = True  # the tests' providers run on loopback; tests of the refusal turn it off
    # Argon2id stays, at a cost the suite can afford; production keeps the defaults above.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 1024
    ARGON2_PARALLELISM = 1
    SITE_CACHE_TTL = 0.0
    # The suite runs on every core of a machine that may be busy: a Redis reply can wait for CPU longer
    # than production's 0.25 s, and a check would then answer degraded. Tests of a silent Redis set their own.
    REDIS_SOCKET_TIMEOUT = 2.0
    MAIL_TIMEOUT = 2.0
    MAIL_SUPPRESS_SEND = False  # Flask-Mail would swallow mail when TESTING; tests use a real SMTP server
    MAIL_RETRY_BASE = 0.0
    MAIL_RETRY_MAX = 0.0
    STATS_ROLL_UP_SECONDS = 0.0  # every worker pass rolls up (tests read the figures right after)
    RETENTION_EVERY_SECONDS = 0.0  # every worker pass applies retention (tests travel in time, then run it)
    LEDGER_JOURNAL_SECONDS = 0.0  # every worker pass writes the journal into the ledger
    # No test reads or writes instance/'s crawler ranges, and none asks the machine's DNS (there is no network):
    # a port where nothing listens answers "unknown" at once; tests/functional/test_crawlers.py runs its own DNS server.
    CRAWLER_RANGES_FILE = os.path.join(tempfile.gettempdir(), f"meter-test-crawler-ranges-{os.getpid()}-absent.json")
    CRAWLER_DNS_SERVER = "127.0.0.1:9"
    CRAWLER_DNS_TIMEOUT = 0.5
