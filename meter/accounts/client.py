"""The device a request logs in from, as a session row keeps it: the label of its User-Agent (which the
request's beginning leaves in `g`) and its network (the client address, ProxyFix's behind
TRUSTED_PROXIES). Made here, at the edge, and handed to the account rules as an argument: the rules
never read the request."""

from __future__ import annotations

from flask import g, request

from meter.accounts.rules import devices


def this_device() -> str | None:
    return devices.stored(g.get("user_agent"), request.remote_addr)
