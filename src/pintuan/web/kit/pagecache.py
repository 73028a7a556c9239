"""Pages for visitors who are not signed in, rendered once a second at most and shared.

A visitor's page is the same for every visitor of the same language, time zone and host but for
two things: the CSRF token (bound to the browser's nonce cookie) and the fresh ``form_key`` of each
form. The shared part is rendered with a marker in their place and kept in the read cache
(``pintuan.kit.readcache``, one second at most, dropped sooner when the outbox names its team or
deal); each answer puts this browser's token and new form keys in. A signed-in viewer's page
carries their seat, payments and shares, so it is never kept: it is rendered for them alone and
sent with ``Cache-Control: no-store``.

A visitor's answer carries an ``ETag`` (the shared part's version and this browser's token) and
``Cache-Control: private, no-cache``: the browser may keep it, asks each time, and gets ``304``
while nothing changed. An answer that sets the nonce cookie is never stored (the security headers
make it ``no-store``). The next visitors of the same page are answered before routing
(``pintuan.kit.frontcache``), by the same code.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from pintuan.kit.cached_reads import not_modified
from pintuan.kit.frontcache import remember
from pintuan.kit.readcache import Cached, etag_of, if_none_match
from pintuan.web.kit.csrf import csrf_token, set_csrf_cookie
from pintuan.web.kit.i18n import TZ_COOKIE, request_locale, viewer_time_zone
from pintuan.web.kit.rendering import csrf_values, page_context, templates
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import page_principal

VISITOR_CACHE_CONTROL = "private, no-cache"
PAGE_VARY = "Cookie, Accept-Language"

# Markers no content can guess (new in each process), replaced in every answer.
_TOKEN_MARK = f"csrf-{secrets.token_hex(12)}"
_FORM_KEY_MARK = f"fk-{secrets.token_hex(12)}"


async def is_shared_view(request: Request) -> bool:
    """Whether this request sees the page every visitor sees: a plain GET without a query, by a
    visitor who is not signed in."""
    return (
        request.method == "GET"
        and not request.scope.get("query_string")
        and services_of(request).reads.enabled
        and await page_principal(request) is None
    )


def _personal(html: str, token: str) -> str:
    html = html.replace(_TOKEN_MARK, token)
    if _FORM_KEY_MARK not in html:
        return html
    parts = html.split(_FORM_KEY_MARK)
    keys = [uuid.uuid4().hex for _ in parts[1:]]
    return parts[0] + "".join(key + part for key, part in zip(keys, parts[1:], strict=True))


async def shared_page(
    request: Request,
    kind: str,
    subject_id: str,
    build: Callable[[], Awaitable[tuple[str, Mapping[str, Any], Iterable[str]]]],
) -> Response:
    """The visitor's page of ``kind`` about ``subject_id``. ``build()`` gives the template, its
    context and the cache tags it depends on; it runs at most once a second per language, time
    zone and host while the page is asked for."""
    locale = request_locale(request, None)
    zone = viewer_time_zone(request, None)
    key = (
        "page",
        kind,
        subject_id,
        locale,
        zone,
        TZ_COOKIE in request.cookies,
        # Where the page is served from (links in it name it), without building a URL.
        request.scope["scheme"],
        request.headers.get("host"),
        tuple(request.scope.get("server") or ()),
        request.scope.get("root_path", ""),
    )

    async def render() -> tuple[str, str, Iterable[str]]:
        template, context, tags = await build()
        values = await page_context(request)
        values.update(csrf_values(_TOKEN_MARK), form_key=lambda: _FORM_KEY_MARK)
        values.update(context)
        html = templates.get_template(template).render(values)
        return html, etag_of(html), tags

    cache = services_of(request).reads
    entry = await cache.get_or_build(key, render)
    remember(request, cache, key, _visitors_answer)
    return _visitors_answer(request, entry)


def _visitors_answer(request: Request, entry: Cached[str]) -> Response:
    """The kept page for this visitor: their browser's CSRF token and new form keys put in, or
    ``304`` while their copy is current."""
    token = csrf_token(request)
    etag = etag_of(entry.etag, token)
    headers = {"cache-control": VISITOR_CACHE_CONTROL, "vary": PAGE_VARY}
    if if_none_match(request.headers.get("if-none-match"), etag) and not getattr(
        request.state, "csrf_new_nonce", False
    ):
        return not_modified(etag, headers)
    response = HTMLResponse(_personal(entry.value, token), headers={**headers, "etag": etag})
    set_csrf_cookie(request, response)
    return response
