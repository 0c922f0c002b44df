"""Host names and addresses in what an operator configures: a site's origins, a provider's issuer.

One module so that the console and the command line, which configure the same things, check them
alike. Names are checked as written and never resolved here: what a name resolves to may change
after it is configured (docs/security.md says what that leaves to the network).
"""

from __future__ import annotations

import ipaddress
import socket

import idna

# Names that never lead to the Internet: RFC 6761 (localhost), RFC 6762 (.local, multicast DNS),
# RFC 8375 (.home.arpa), ICANN's .internal, and the cloud providers' metadata service names.
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan", ".intranet", ".corp")
METADATA_NAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _printable(host: str) -> bool:
    return bool(host) and not any(ch.isspace() or ch < " " or ch == "\x7f" or ch in "\\%@/?#" for ch in host)


def _numeric(host: str) -> bool:
    """Written like an IPv4 address, in any of the forms the C library reads (127.1, 2130706433, 0x7f000001):
    no host name ends in a label of digits."""
    last = host.rstrip(".").rsplit(".", 1)[-1].lower()
    return bool(last) and (last.isdigit() or last.startswith("0x"))


def address(host: str) -> IPAddress | None:
    """The IP address `host` is written as (any form a resolver would read as one), else None."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _numeric(host):
            return None
        try:
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def ascii_host(host: str) -> str | None:
    """`host` as a browser sends it (lower case; an international name as its xn-- form, IDNA 2008 with
    UTS 46 as browsers map it; an IP address in its canonical text), or None when it is neither a host
    name nor an IP address written plainly."""
    if not isinstance(host, str) or not _printable(host) or len(host) > 253:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if _numeric(host):
        return None  # 127.1 and the like: an address in disguise, or nothing
    try:
        name = idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    return name if len(name) <= 253 else None


def internal(host: str) -> bool:
    """True when `host` names the operator's own network, not the Internet: a loopback, private,
    shared (100.64/10), link-local (the cloud metadata service at 169.254.169.254), unspecified,
    multicast or reserved address in any written form (IPv4-mapped IPv6 too), or a name that only
    resolves inside: localhost, *.localhost, *.local, *.internal, *.home.arpa, a name without a dot."""
    ip = address(host)
    if ip is not None:
        return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    name = host.lower().rstrip(".")
    return "." not in name or name in METADATA_NAMES or name.endswith(INTERNAL_SUFFIXES)
