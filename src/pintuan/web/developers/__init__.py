"""The open platform's pages: the OAuth consent page, the developer docs, the developers'
console (their apps, secrets) and the operators' review of apps.

:data:`router` holds them all.
"""

from __future__ import annotations

from pintuan.kit.routing import Router
from pintuan.web.developers import consent, console, docs

router = Router(include_in_schema=False)
for _pages in (consent, console, docs):
    router.include_router(_pages.router)
