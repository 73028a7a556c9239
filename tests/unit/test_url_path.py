"""``url_path`` is the path the framework's URL gives, for any path a client may send."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import URL

from pintuan.kit.http import url_path

_PATHS = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


@settings(max_examples=500)
@given(
    path=_PATHS.map(lambda tail: "/" + tail),
    query=st.binary(max_size=20).filter(lambda b: b"\x00" not in b),
    host=st.sampled_from([None, b"example.com", b"example.com:8080", b"[::1]:8000"]),
)
def test_url_path_is_the_urls_own(path: str, query: bytes, host: bytes | None) -> None:
    scope = {
        "type": "http",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", host)] if host else [],
    }
    try:
        expected = URL(scope=scope).path
    except UnicodeDecodeError:  # a query the URL cannot decode: no request gets that far
        return
    assert url_path(scope) == expected


def test_plain_paths_are_taken_as_they_are() -> None:
    scope = {"path": "/v1/teams/team_1/seats", "headers": [], "query_string": b""}
    assert url_path(scope) == "/v1/teams/team_1/seats"
