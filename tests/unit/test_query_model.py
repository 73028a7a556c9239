"""A hot endpoint's query string read by one model: the same values and the same 422 as the
framework's parameter-by-parameter reading, and equal query strings read once."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from starlette.requests import Request

from pintuan.kit.query import KEPT_LENGTH, QueryModel, query_of


class Asked(QueryModel):
    slots: Annotated[int, Field(ge=1, le=50)] = 20
    cursor: str | None = None


def request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode()})


def test_a_query_string_is_read_as_its_model_and_an_equal_one_shares_the_reading() -> None:
    first = query_of(Asked, request("slots=7&other=x"))
    again = query_of(Asked, request("slots=7&other=x"))

    assert first == Asked(slots=7)
    assert again is first  # frozen, so one reading serves both
    assert query_of(Asked, request("slots=8")).slots == 8
    assert query_of(Asked, request("")).slots == 20


def test_a_refused_value_is_refused_every_time_it_is_asked() -> None:
    for _ in range(2):
        with pytest.raises(RequestValidationError) as refused:
            query_of(Asked, request("slots=0"))
        assert refused.value.errors()[0]["loc"] == ("query", "slots")


def test_a_long_query_string_is_read_but_not_kept() -> None:
    cursor = "c" * KEPT_LENGTH
    first = query_of(Asked, request(f"cursor={cursor}"))
    again = query_of(Asked, request(f"cursor={cursor}"))

    assert first == again == Asked(cursor=cursor)
    assert again is not first
