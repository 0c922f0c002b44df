"""ConfigError: a setting that is missing or cannot be used, found while the app is made.

Its message is one line that names the setting and says how to fix it. The entry points
(`meter.app_or_exit`, used by wsgi.py for gunicorn and the `flask` command, and bin/meter) print it
and exit non-zero instead of showing a traceback: an operator reads the fix, not a stack.
"""

from __future__ import annotations


class ConfigError(RuntimeError):
    """A setting that is missing or malformed (the message: one line, the setting and the fix)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the cause's text held


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def _loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in LOOPBACK_HOSTS or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_address_problems(base_url: str, sender: str) -> list[str]:
    """What production refuses in the addresses meter hands out: every mailed link is built on
    PUBLIC_BASE_URL and every Message-ID and From on MAIL_DEFAULT_SENDER's domain, so a default left
    in place (loopback, localhost) would send readers links that lead nowhere and mail that spam
    filters drop. An http:// base is accepted only on loopback (a proxy on the same host in a test)."""
    from email.utils import parseaddr
    from urllib.parse import urlsplit

    problems = []
    if base_url:
        parts = urlsplit(base_url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            problems.append(f"PUBLIC_BASE_URL must be the public https:// address, such as {EXAMPLE_BASE}")
        elif parts.scheme == "http" and not _loopback(host):
            problems.append(
                f"PUBLIC_BASE_URL must be https:// outside development, not http://{host}: "
                f"links in mail would travel unencrypted (such as {EXAMPLE_BASE})"
            )
    domain = parseaddr(sender or "")[1].rpartition("@")[2].lower().rstrip(".")
    if domain and (domain == "localhost" or domain.endswith(".localhost") or _loopback(domain)):
        problems.append(
            f"MAIL_DEFAULT_SENDER is on {domain}: set the publisher's sender, such as {EXAMPLE_SENDER} "
            "(its domain names every Message-ID)"
        )
    return problems


EXAMPLE_BASE = "https://meter.example.org"
EXAMPLE_SENDER = '"Tempo <no-reply@tempo.co>"'
