"""Server-rendered pages: the shopper's pages, the consoles, and what they share.

:func:`install_web` adds the pages, ``/static`` and the security headers to the application.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pintuan.config import Environment, Settings
from pintuan.web.accounts import router as accounts_pages
from pintuan.web.friend_pay import router as friend_pay_pages
from pintuan.web.growth import router as growth_pages
from pintuan.web.rendering import STATIC_DIR, STATIC_PREFIX
from pintuan.web.security import SecurityHeadersMiddleware
from pintuan.web.sharing import router as sharing_pages
from pintuan.web.shopper import router as shopper_pages


def install_web(app: FastAPI, settings: Settings) -> None:
    """Mount ``/static``, add the account and shopper pages and the security headers."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(accounts_pages)
    app.include_router(shopper_pages)
    app.include_router(friend_pay_pages)
    app.include_router(sharing_pages)
    app.include_router(growth_pages)
    app.add_middleware(SecurityHeadersMiddleware, secure_cookies=settings.env is Environment.PROD)
