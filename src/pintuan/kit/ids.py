"""Opaque, prefixed public identifiers (``deal_01JD…``) that sort by creation time."""

from __future__ import annotations

import base64
import secrets
import time

_CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)


def new_id(prefix: str) -> str:
    """A new id: ``prefix_`` + 48 bits of milliseconds + 80 random bits, Crockford base32."""
    millis = time.time_ns() // 1_000_000
    value = (millis << 80) | secrets.randbits(80)
    # 26 characters hold 130 bits: two zero bits, then the 128 of the value. The standard
    # base32 encoder (in C, several times faster than a loop here) works on whole bytes, so the
    # value is shifted to end on a byte boundary and the characters past the 26th are dropped.
    body = base64.b32encode((value << 6).to_bytes(17, "big"))[:26].translate(_FROM_RFC4648)
    return f"{prefix}_{body.decode('ascii')}"
