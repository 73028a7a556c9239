"""A ``Set-Cookie`` header written directly, as Starlette's ``set_cookie`` writes it.

Starlette builds a ``http.cookies.SimpleCookie`` for every cookie it sets (about 7 microseconds);
a first visit to the home page sets two (the visitor and the CSRF nonce). For a name and value
that need no quoting, which is every cookie this application sets, the header is written here
in the same words and order; anything else goes through Starlette.
"""

from __future__ import annotations

import re
from typing import Literal

from starlette.responses import Response

# The characters ``http.cookies`` leaves unquoted in a name or value.
_PLAIN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~:]+")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")


def set_cookie(
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    path: str | None = "/",
    secure: bool = False,
    httponly: bool = False,
    samesite: Literal["lax", "strict", "none"] | None = "lax",
) -> None:
    """``response.set_cookie(name, value, ...)``: the same header."""
    if not (_PLAIN.fullmatch(name) and _PLAIN.fullmatch(value)) or (
        path is not None and not _PLAIN_PATH.fullmatch(path)
    ):
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )
        return
    # The attributes in ``http.cookies``' order: by name.
    parts = [f"{name}={value}"]
    if httponly:
        parts.append("HttpOnly")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if path is not None:
        parts.append(f"Path={path}")
    if samesite is not None:
        parts.append(f"SameSite={samesite}")
    if secure:
        parts.append("Secure")
    response.raw_headers.append((b"set-cookie", "; ".join(parts).encode("latin-1")))
