"""The developer docs page, ``/developers/docs``: registering an app, authorising with PKCE,
calling the API, publishing an offer and verifying a webhook, in English and in Chinese."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from pintuan.kit.routing import Router
from pintuan.web.kit.i18n import request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import PagePrincipal

router = Router()


@router.get("/developers/docs", response_class=HTMLResponse)
async def developer_docs(request: Request, principal: PagePrincipal) -> Response:
    # The docs are prose with code, written once per language rather than string by string.
    chinese = request_locale(request, principal).startswith("zh")
    base = services_of(request).settings.base_url.rstrip("/")
    template = "developers/docs_zh.html" if chinese else "developers/docs_en.html"
    return await render(request, template, {"base": base})
