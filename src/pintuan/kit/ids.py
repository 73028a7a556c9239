"""Opaque, prefixed public identifiers (``deal_01JD…``) that sort by creation time."""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time

_CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_stamp: tuple[int, str] = (-1, "")  # a millisecond and its ten characters


def new_id(prefix: str) -> str:
    """A new id: ``prefix_`` + 48 bits of milliseconds + 80 random bits, Crockford base32."""
    # 26 characters hold 130 bits: the first ten the milliseconds (two zero bits, then 48),
    # written once a millisecond; the other sixteen exactly the 80 random bits (ten bytes),
    # written ten bits (two characters) at a time from a table: the standard base32 encoder
    # is Python code in 3.11, and cost twice as much.
    millis = time.time_ns() // 1_000_000
    stamp = _stamp
    if stamp[0] != millis:
        stamp = (millis, _crockford(millis, 10))
        _set_stamp(stamp)
    bits = int.from_bytes(random_bytes(10))
    high, low = bits >> 40, bits & 0xFF_FFFF_FFFF
    pairs = _PAIRS
    return "".join(
        (
            prefix,
            "_",
            stamp[1],
            pairs[high >> 30],
            pairs[high >> 20 & 1023],
            pairs[high >> 10 & 1023],
            pairs[high & 1023],
            pairs[low >> 30],
            pairs[low >> 20 & 1023],
            pairs[low >> 10 & 1023],
            pairs[low & 1023],
        )
    )


# Every ten bits as two Crockford characters, by value.
_PAIRS = tuple(chr(a) + chr(b) for a in _CROCKFORD for b in _CROCKFORD)


_ENTROPY_BLOCK = 4096  # bytes read from the system at once: 409 ids' randomness


class _Entropy(threading.local):
    """A thread's block of bytes from the operating system's random source, and how far into
    it the thread has read."""

    block = b""
    at = 0


_entropy = _Entropy()


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the operating system's cryptographic random source, as
    ``os.urandom`` gives them, read from a block each thread takes at once. Every call to
    ``os.urandom`` lets go of the interpreter's lock, and a request that made ids (or a nonce)
    three times then waited three times for a thread that took the lock meanwhile; now one
    call in about four hundred does. A child process forgets its parent's blocks (the ids of
    two processes must never repeat)."""
    entropy = _entropy
    at = entropy.at
    end = at + count
    if end > len(entropy.block):
        if count > _ENTROPY_BLOCK:
            return os.urandom(count)
        entropy.block, at, end = os.urandom(_ENTROPY_BLOCK), 0, count
    entropy.at = end
    return entropy.block[at:end]


def random_hex(count: int) -> str:
    """``count`` random bytes in hexadecimal (``secrets.token_hex``'s shape)."""
    return random_bytes(count).hex()


def random_urlsafe(count: int) -> str:
    """``count`` random bytes in unpadded URL-safe base64 (``secrets.token_urlsafe``'s
    shape)."""
    return base64.urlsafe_b64encode(random_bytes(count)).rstrip(b"=").decode("ascii")


def _forget_entropy() -> None:
    global _entropy
    _entropy = _Entropy()


os.register_at_fork(after_in_child=_forget_entropy)


def _set_stamp(stamp: tuple[int, str]) -> None:
    # One tuple, replaced whole: a thread reading it sees a millisecond and its own text.
    global _stamp
    _stamp = stamp


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
