"""Turn ``limit + 1`` rows into one page and the cursor of the next."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from pintuan.kit.pagination import Page, encode_cursor


class HasId(Protocol):
    @property
    def id(self) -> str: ...


RowT = TypeVar("RowT", bound=HasId)
OutT = TypeVar("OutT")


def page_of(rows: Sequence[RowT], limit: int, render: Callable[[RowT], OutT]) -> Page[OutT]:
    shown = rows[:limit]
    next_cursor = encode_cursor(shown[-1].id) if len(rows) > limit and shown else None
    return Page[OutT](data=[render(row) for row in shown], next_cursor=next_cursor)
