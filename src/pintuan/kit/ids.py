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


def _crockford(value: int, chars: int) -> str:
    return "".join(chr(_CROCKFORD[(value >> shift) & 31]) for shift in range(5 * chars - 5, -5, -5))


class IdSequence:
    """Ids shaped as :func:`new_id`'s (``prefix_`` + 26 Crockford base32 characters, the first
    10 the milliseconds, so they sort by creation time) for what needs them unique but not
    unguessable, at a tenth of the cost: a request's id, made for every request. The
    milliseconds are written once a millisecond; then come 8 random characters drawn once per
    sequence (so that two processes do not repeat each other) and a counter of 32 bits in
    hexadecimal, whose digits are Crockford's too."""

    __slots__ = ("_count", "_millis", "_stamp", "_start", "_tag")

    def __init__(self, prefix: str) -> None:
        self._start = f"{prefix}_"
        self._tag = _crockford(secrets.randbits(40), 8)
        self._count = secrets.randbits(32)
        self._millis = -1
        self._stamp = ""

    def next(self) -> str:
        millis = time.time_ns() // 1_000_000
        if millis != self._millis:
            self._millis = millis
            self._stamp = f"{self._start}{_crockford(millis, 10)}{self._tag}"
        self._count = (self._count + 1) & 0xFFFFFFFF
        return f"{self._stamp}{self._count:08X}"
