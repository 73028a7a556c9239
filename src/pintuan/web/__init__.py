"""Server-rendered pages, by audience: ``shopper/`` (the shopper's and the account pages),
``console/`` (the merchant and operator consoles), ``developers/`` (the open platform's consent
page, developer console, review of apps and docs) and ``kit/`` (what both use: CSRF, the session,
languages, rendering, security headers, error pages, once-only forms).

Templates, static files and catalogues stay beside the packages, in ``templates/``, ``static/``
and ``locales/``. :func:`install_web` adds all of it to the application.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pintuan.web import console, developers, shopper
from pintuan.web.kit.rendering import STATIC_DIR, STATIC_PREFIX
from pintuan.web.shopper.shopping import read_pages_router

__all__ = ["install_web", "read_pages_router"]

# Each audience's package exposes one ``router``; they are mounted alike, in this order.
AUDIENCES = (shopper, console, developers)


def install_web(app: FastAPI) -> None:
    """Mount ``/static`` and add every audience's pages (but for ``read_pages_router``, which
    the application includes among its hottest routes). The pages' security headers
    (``web.kit.security``) are applied by the application's one security-headers layer."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    for audience in AUDIENCES:
        app.include_router(audience.router)
