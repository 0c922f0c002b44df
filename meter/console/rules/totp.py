"""Authenticator codes (TOTP, RFC 6238: 6 digits, 30-second steps, SHA-1, as every authenticator app
reads a QR code) and the enrolment QR code, drawn on the server as SVG (segno): no JavaScript.

A code is accepted for the step before, the step of and the step after meter's clock (a phone's
clock may be off by some seconds), and only for a step later than the last one accepted: a code
seen over a shoulder, or replayed, does not sign in a second time.
"""

from __future__ import annotations

import hmac

import pyotp
import segno

from meter.platform import clock

ISSUER = "meter"
DIGITS = 6


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def uri(secret: str, email: str, site_names: str = "") -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    issuer = f"{ISSUER} {site_names}".strip()
    return pyotp.TOTP(secret, issuer=issuer, name=email).provisioning_uri()


def qr_svg(otpauth_uri: str) -> str:
    """The QR code as an inline <svg> element (dark modules on white, a quiet zone of 4)."""
    return segno.make(otpauth_uri, error="m").svg_inline(scale=5, dark="#000", light="#fff", border=4)


def current_step() -> int:
    return pyotp.TOTP(new_secret()).timecode(clock.now())


def matching_step(secret: str, code: str, last_step: int) -> int | None:
    """The time step `code` belongs to (one step of drift either way), or None; never a step ≤ last_step.

    Every candidate is compared (constant time), whether or not an earlier one matched."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    otp = pyotp.TOTP(secret)
    now = current_step()
    found = None
    for step in (now - 1, now, now + 1):
        if hmac.compare_digest(otp.generate_otp(step), code) and step > last_step and found is None:
            found = step
    return found


def display(secret: str) -> str:
    """The secret in groups of four, for typing into an app that cannot scan."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


__all__ = ["current_step", "display", "matching_step", "new_secret", "qr_svg", "uri"]
