"""The page a visitor comes back to after logging in is the request's URL path and query."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from pintuan.web.kit.session import here

_URLISH = "abcXYZ019/_.~%!$&'()*+,;=:@?-# \\\t\né"


def request_of(path: str, query: bytes) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": query,
            "headers": [(b"host", b"shop.example")],
        }
    )


def as_the_url_says(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet=_URLISH, max_size=30).map(lambda text: "/" + text),
    st.text(alphabet=_URLISH, max_size=30).map(lambda text: text.encode()),
)
def test_here_is_what_the_requests_url_gives(path: str, query: bytes) -> None:
    request = request_of(path, query)
    assert here(request) == as_the_url_says(request)


def test_a_plain_page_comes_back_with_its_query() -> None:
    assert here(request_of("/deals/deal_1", b"tab=teams&more=x%2Fy")) == (
        "/deals/deal_1?tab=teams&more=x%2Fy"
    )
    assert here(request_of("/", b"")) == "/"
