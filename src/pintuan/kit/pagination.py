"""Cursor pagination over time-sortable ids, newest first."""

from __future__ import annotations

import base64
import binascii
from typing import Generic, TypeVar

from pydantic import BaseModel

from pintuan.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _invalid_cursor() -> InvalidInput:
    return InvalidInput(
        "The cursor is not one this API returned; start again without it.",
        code="invalid_cursor",
        extra={"errors": [{"field": "cursor", "message": "not a valid cursor"}]},
    )


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise _invalid_cursor() from exc
    if "_" not in value or not value.isascii():
        raise _invalid_cursor()
    return value
