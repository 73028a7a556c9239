"""The shopper's pages: deals, teams, paying and friend pay, sharing, orders, notifications, and
the account pages (log in, sign up, settings).

:data:`router` holds them all, in the order their routes are matched.
"""

from __future__ import annotations

from pintuan.kit.routing import Router
from pintuan.web.shopper import (
    accounts,
    bargains,
    continuing,
    delivery,
    friend_pay,
    orders,
    pickups,
    sharing,
    shopping,
    wallet,
)

router = Router(include_in_schema=False)
for _pages in (
    accounts,
    continuing,
    shopping,
    orders,
    friend_pay,
    sharing,
    delivery,
    pickups,
    bargains,
    wallet,
):
    router.include_router(_pages.router)
