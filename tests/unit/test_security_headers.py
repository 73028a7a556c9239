"""The one security-headers layer (kit/security_headers.py), header by header: what it adds,
what it leaves to the answer, what it replaces."""

from __future__ import annotations

from pintuan.kit.security_headers import HSTS, SecurityHeadersMiddleware
from pintuan.web.kit.security import EVERY_RESPONSE, HTML_HEADERS, POLICY_EXEMPT_PATHS


async def _app(scope: object, receive: object, send: object) -> None:  # never called here
    raise AssertionError


def _layer(*, prod: bool) -> SecurityHeadersMiddleware:
    return SecurityHeadersMiddleware(
        _app,
        session_cookie="pintuan_session",
        hsts=prod,
        secure_cookies=prod,
        every_response=EVERY_RESPONSE,
        html_headers=HTML_HEADERS,
        policy_exempt_paths=POLICY_EXEMPT_PATHS,
    )


def _all(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key.lower() == name]


JSON = [(b"content-type", b"application/json")]
HTML = [(b"content-type", b"text/html; charset=utf-8")]


def test_an_anonymous_json_answer_gets_nosniff_only() -> None:
    headers = _layer(prod=False).headers_for("/healthz", JSON, credentials=False)
    assert headers == [*JSON, (b"x-content-type-options", b"nosniff")]


def test_a_page_gets_the_page_headers_but_keeps_its_own_policy() -> None:
    own = (b"Content-Security-Policy", b"default-src 'none'")
    headers = _layer(prod=False).headers_for("/", [*HTML, own], credentials=False)
    assert _all(headers, b"content-security-policy") == [b"default-src 'none'"]
    for name, value in HTML_HEADERS[1:]:
        assert _all(headers, name) == [value]


def test_the_api_explorers_get_every_page_header_but_the_policy() -> None:
    headers = _layer(prod=False).headers_for("/docs", HTML, credentials=False)
    assert _all(headers, b"content-security-policy") == []
    assert _all(headers, b"x-frame-options") == [b"DENY"]


def test_no_store_for_credentials_unless_the_answer_says_how_to_cache_it() -> None:
    layer = _layer(prod=False)
    assert _all(layer.headers_for("/v1/me", JSON, credentials=True), b"cache-control") == [
        b"no-store"
    ]
    public = [*JSON, (b"cache-control", b"public, max-age=60")]
    assert _all(layer.headers_for("/i.png", public, credentials=True), b"cache-control") == [
        b"public, max-age=60"
    ]


def test_an_answer_setting_a_cookie_is_never_stored_whatever_it_said() -> None:
    given = [*JSON, (b"Cache-Control", b"public"), (b"set-cookie", b"a=1; Path=/")]
    headers = _layer(prod=False).headers_for("/s/abc", given, credentials=False)
    assert _all(headers, b"cache-control") == [b"no-store"]
    assert _all(headers, b"set-cookie") == [b"a=1; Path=/"]  # not marked outside production


def test_in_production_hsts_replaces_any_and_every_cookie_is_secure_once() -> None:
    given = [
        *JSON,
        (b"strict-transport-security", b"max-age=1"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2; Secure"),
    ]
    headers = _layer(prod=True).headers_for("/", given, credentials=False)
    assert _all(headers, b"strict-transport-security") == [HSTS.encode()]
    assert _all(headers, b"set-cookie") == [b"a=1; Secure", b"b=2; Secure"]
    assert _all(headers, b"x-content-type-options") == [b"nosniff"]
