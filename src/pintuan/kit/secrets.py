"""Comparing a secret the caller sent with the one expected, in constant time."""

from __future__ import annotations

import hmac


def same_secret(given: str, expected: str) -> bool:
    """Whether ``given`` equals ``expected``, in time that does not depend on where they differ.

    ``hmac.compare_digest`` raises on a ``str`` that is not ASCII, and what arrives in a cookie,
    a header or a path may be anything; compared as UTF-8 bytes, an odd value is simply wrong.
    """
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
