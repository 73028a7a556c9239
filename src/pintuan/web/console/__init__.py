"""The merchant and operator consoles, under ``/console``: deals and the deal form, teams,
orders, shipping, the voucher counter, refunds, settlements, moderation, the audit, applications
to sell (with the ``/sell`` form itself), the developer console, and the growth pages with their
charts.

:data:`router` holds them all, in the order their routes are matched.
"""

from __future__ import annotations

from pintuan.kit.routing import Router
from pintuan.web.console import (
    applications,
    bargain_terms,
    commissions,
    deal_images,
    developer,
    feed_lab,
    feed_rules,
    fill_budgets,
    growth,
    merchant,
    operator,
    payment_queue,
    pickup_points,
    seat_refunds,
    shipping,
    vouchers,
    withdrawals,
)

router = Router(include_in_schema=False)
# deal_images and bargain_terms before merchant: ".../deals/{deal_id}/images" and
# ".../bargain" must not match its "/{action}".
for _pages in (
    growth,
    feed_lab,
    feed_rules,
    applications,
    payment_queue,
    pickup_points,
    operator,
    deal_images,
    bargain_terms,
    merchant,
    shipping,
    vouchers,
    seat_refunds,
    commissions,
    withdrawals,
    fill_budgets,
    developer,
):
    router.include_router(_pages.router)
