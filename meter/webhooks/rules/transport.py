"""One POST to a publisher's endpoint, and nothing else: not a way into meter's own network.

The rules (docs/security.md, "Webhooks"): https only (plain http only where private addresses are
allowed: development and tests); no user name or password in the URL; the host is resolved at each
delivery and every address it resolves to must be on the Internet (not loopback, private, shared,
link-local such as the cloud metadata service at 169.254.169.254, multicast, reserved or unspecified:
`meter.platform.hosts.internal`), unless WEBHOOK_ALLOW_PRIVATE is on. The connection goes to the
address that was checked, never to a second resolution, so a name that answers once with a public
address and then with 127.0.0.1 (DNS rebinding) cannot slip between the check and the connect; the
request still carries the original Host, and TLS the original name (SNI and certificate check).
Redirects are not followed (http.client never does; a 3xx is a failed delivery). The answer's body
is read up to 64 kB, then the connection is dropped.

Timeouts are real time (time.monotonic, not meter's clock, which tests move): 2 s to connect,
5 s for the whole exchange.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from meter.platform import hosts

READ_LIMIT = 64 * 1024


class Refused(ValueError):
    """The URL may not be called: its scheme, its host, or an address its host resolves to."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes  # at most READ_LIMIT bytes of it


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as browsers send it (IDNA, lower case)
    port: int
    path: str  # path and query


def parse(url: str, allow_private: bool) -> Target:
    """The URL's parts when its form is allowed (the address check comes at each delivery); raise Refused."""
    if not isinstance(url, str) or len(url) > 2048 or any(ch <= " " or ch == "\x7f" for ch in url):
        raise Refused("not a URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("not a URL") from None
    if parts.scheme != "https" and not (parts.scheme == "http" and allow_private):
        raise Refused("must be an https:// URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Refused("must not carry a user name or password")
    if parts.fragment:
        raise Refused("must not have a #fragment")
    host = hosts.ascii_host(parts.hostname or "")
    if host is None:
        raise Refused("has no valid host name")
    if not allow_private and hosts.internal(host):
        raise Refused("names a host of a private network")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def resolve(target: Target, allow_private: bool) -> str:
    """The address to connect to: the first the host resolves to, when every one of them is allowed."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise ConnectionError(f"cannot resolve {target.host}: {exc}") from None
    addresses = list(dict.fromkeys(str(ipaddress.ip_address(info[4][0].split("%")[0])) for info in infos))
    if not addresses:
        raise ConnectionError(f"{target.host} resolves to no address")
    if not allow_private:
        inside = [address for address in addresses if hosts.internal(address)]
        if inside:
            raise Refused(f"{target.host} resolves to an address of a private network ({inside[0]})")
    return addresses[0]


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    connect_timeout: float = 2.0,
    total_timeout: float = 5.0,
) -> Reply:
    """POST `body` to `url` as the module says; raise Refused, or OSError (TimeoutError…) / HTTPException."""
    target = parse(url, allow_private)
    address = resolve(target, allow_private)
    deadline = time.monotonic() + total_timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no complete answer within {total_timeout:g} s")
        return remaining

    sock = socket.create_connection((address, target.port), timeout=min(connect_timeout, left()))
    response = None
    try:
        sock.settimeout(left())
        if target.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
        connection = _Pinned(target.host, target.port, sock)
        connection.request("POST", target.path, body=body, headers={"Host": _host_header(target), **headers})
        sock.settimeout(left())
        response = connection.getresponse()
        received = bytearray()
        while len(received) < READ_LIMIT:
            sock.settimeout(left())  # each read waits only for what is left of the whole exchange
            chunk = response.read1(min(8192, READ_LIMIT - len(received)))
            if not chunk:
                break
            received += chunk
        return Reply(response.status, bytes(received))
    finally:
        if response is not None:
            response.close()
        sock.close()


class _Pinned(http.client.HTTPConnection):
    """http.client over a socket already connected to the checked address. It never connects (nor
    resolves) itself, and never closes the socket: `post` does, after the last read under its deadline."""

    def __init__(self, host: str, port: int, sock: socket.socket) -> None:
        super().__init__(host, port)
        self.sock = sock

    def connect(self) -> None:
        raise ConnectionError("the connection to the checked address was lost")

    def close(self) -> None:
        self.sock = None
