"""Two-factor login: TOTP codes (RFC 6238, via ``pyotp``), one-time recovery codes, the QR code.

Why pyotp: RFC 6238 is small, but a maintained implementation that authenticator apps are tested
against is worth its 13 ms of import (measured with ``python -X importtime`` on the dev machine;
it loads only on a TOTP login or enrolment, never at start). Why ``segno`` for the QR code: pure
Python with no dependencies (``qrcode`` wants Pillow for anything but its plain SVG factory) and it
writes SVG itself; 27 ms import and 7.5 ms to encode an ``otpauth://`` URI into a 2.4 KB SVG,
paid only while enrolling. The SVG is rendered on the server, so the console needs no QR script.

A code is accepted for the time step it was shown in and one step either side (30 s steps: up to
~90 s of clock skew or typing time), and each step is used at most once: the store keeps the last
step used per user and refuses that one and any earlier (a code seen over someone's shoulder, or
replayed from a captured request, fails).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

STEP: Final = 30
WINDOW: Final = 1
ISSUER: Final = "ipkvm"
RECOVERY_CODES: Final = 10
_RECOVERY_ALPHABET: Final = "abcdefghjkmnpqrstuvwxyz23456789"


def new_secret() -> str:
    import pyotp

    return str(pyotp.random_base32())


def provisioning_uri(secret: str, user: str, issuer: str = ISSUER) -> str:
    import pyotp

    return str(pyotp.TOTP(secret).provisioning_uri(name=user, issuer_name=issuer))


def matching_step(secret: str, code: str, now: float, window: int = WINDOW) -> int | None:
    """The time step (``now // 30`` +- ``window``) whose code is ``code``, or None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    import pyotp

    totp = pyotp.TOTP(secret)
    here = int(now // STEP)
    found: int | None = None
    for step in range(here - window, here + window + 1):
        if hmac.compare_digest(totp.at(step * STEP), code):
            found = step
    return found


def code_at(secret: str, when: float) -> str:
    """The code an authenticator app shows at ``when`` (tests, and the CLI's self-check)."""
    import pyotp

    return str(pyotp.TOTP(secret).at(int(when)))


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """``xxxxx-xxxxx`` codes, ~49 bits each, typed from paper: no 0/O or 1/l/I."""
    return [
        "-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5)) for _ in range(2))
        for _ in range(count)
    ]


def recovery_digest(code: str) -> str:
    normal = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(b"ipkvm-recovery\0" + normal.encode()).hexdigest()


def qr_svg(text: str) -> str:
    """``text`` as a QR code in SVG (dark modules on white, a 4-module quiet zone)."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="svg", scale=4, xmldecl=False, border=4)
    return buf.getvalue().decode()
