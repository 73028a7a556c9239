"""A cookie set directly is the header Starlette's ``set_cookie`` writes."""

from __future__ import annotations

from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import Response

from pintuan.kit.cookies import set_cookie

_PLAIN = "abcXYZ019!#$%&'*+-.^_`|~:"
texts = st.one_of(
    st.text(alphabet=_PLAIN, min_size=1, max_size=30),
    st.text(alphabet=_PLAIN + ' ;,"\\=é/', min_size=0, max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(
    name=st.text(alphabet=_PLAIN, min_size=1, max_size=12),
    value=texts,
    max_age=st.one_of(st.none(), st.integers(-5, 10**9)),
    path=st.one_of(st.none(), st.sampled_from(["/", "/deals", "/a b", "/x;y"])),
    secure=st.booleans(),
    httponly=st.booleans(),
    samesite=st.sampled_from(["lax", "strict", "none", None]),
)
def test_the_header_is_starlettes(
    name: str,
    value: str,
    max_age: int | None,
    path: str | None,
    secure: bool,
    httponly: bool,
    samesite: Literal["lax", "strict", "none"] | None,
) -> None:
    ours, theirs = Response(b""), Response(b"")
    set_cookie(
        ours,
        name,
        value,
        max_age=max_age,
        path=path,
        secure=secure,
        httponly=httponly,
        samesite=samesite,
    )
    theirs.set_cookie(
        name, value, max_age=max_age, path=path, secure=secure, httponly=httponly, samesite=samesite
    )
    assert ours.raw_headers == theirs.raw_headers


def test_a_plain_cookie_is_written_without_starlettes_cookie_jar() -> None:
    class Refusing(Response):
        def set_cookie(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("written through Starlette")

    response = Refusing(b"")
    set_cookie(response, "pt_vid", "vis_01JEXAMPLE", max_age=60, httponly=True, path="/")
    assert response.raw_headers[-1] == (
        b"set-cookie",
        b"pt_vid=vis_01JEXAMPLE; HttpOnly; Max-Age=60; Path=/; SameSite=lax",
    )
