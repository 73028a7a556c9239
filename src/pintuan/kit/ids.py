"""Opaque, prefixed public identifiers (``deal_01JD…``) that sort by creation time."""

from __future__ import annotations

import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base32(value: int, length: int) -> str:
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(5 * (length - 1), -1, -5))


def new_id(prefix: str) -> str:
    """A new id: ``prefix_`` + 48 bits of milliseconds + 80 random bits, Crockford base32."""
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{_base32((millis << 80) | secrets.randbits(80), 26)}"
