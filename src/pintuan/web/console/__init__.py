"""The merchant and operator consoles, under ``/console``: deals and the deal form, teams,
orders, refunds, settlements, moderation, the audit, applications to sell (with the ``/sell``
form itself), and the growth pages with their charts.

:data:`router` holds them all, in the order their routes are matched.
"""

from __future__ import annotations

from fastapi import APIRouter

from pintuan.web.console import applications, growth, merchant, operator

router = APIRouter(include_in_schema=False)
for _pages in (growth, applications, operator, merchant):
    router.include_router(_pages.router)
