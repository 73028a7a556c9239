"""Who may call what: an authorisation matrix over the whole route table.

Every route (each API route and each page, each method) has a row in ``MATRIX`` saying what each
of six callers gets when it calls the route on seeded data that belongs to ``shopper`` and to
``staff``'s merchant: the shopper who owns the team, seat, payment and share; another shopper;
staff of the merchant whose deal it is; staff of another merchant; and an operator.

A row is one string of six outcomes, in the order of ``CALLERS``:

- ``ok``: allowed: anything but 401, 403, 404, a redirect to the log-in page or a 5xx (a business
  refusal such as 409 still means the caller was let in);
- ``401``, ``403``, ``404``: refused with exactly that status (404 where the resource's existence
  is itself private), and the database is unchanged afterwards;
- ``login``: a page that sends the visitor to ``/login`` (303), database unchanged.

A new route without a row fails ``test_every_route_has_a_row`` with the line to add.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from pintuan.app import create_app
from pintuan.config import Settings
from pintuan.domain.roles import Role
from pintuan.errors import PROBLEM_JSON
from pintuan.models import Base
from pintuan.services import Services
from tests.conftest import _empty_all_tables
from tests.factories import (
    PASSWORD,
    US_ADDRESS,
    Account,
    World,
    app_manifest,
    create_account,
    create_deal,
    create_merchant,
    deal_body,
    seed_world,
)
from tests.partnering import offer_body

CALLERS = ("anonymous", "shopper", "other_shopper", "staff", "other_staff", "operator")
OUTCOMES = frozenset({"ok", "401", "403", "404", "login"})
HTML = {"accept": "text/html"}
# A refused form or keyed request saves its refusal under the caller's own key, to replay it to
# that caller (invariant 7); nothing anyone else sees.
# The feed's log of slates served (a refused call may redirect to the home page, which is the
# feed) is written in batches whenever the buffer flushes, as a request log would be.
BOOKKEEPING = frozenset({"idempotency_keys", "feed_impressions", "feed_candidates", "feed_pools"})
# When a token or session was last used is noted on any authenticated call, refused or not; every
# other column of those rows must stay as it was.
LAST_USE_COLUMNS = frozenset({"last_used_at"})
# The framework's own documentation pages: the same for everyone, and not ours to authorise.
FRAMEWORK_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

Body = dict[str, Any] | Callable[[World], dict[str, Any]] | None
Query = str | Callable[[World], str]


@dataclass(frozen=True)
class Rule:
    """One row: the outcome per caller, and what the request carries."""

    outcomes: tuple[str, ...]
    body: Body = None
    query: Query = ""
    # Path parameters that do not take their usual seeded value (see ``World.path_values``).
    params: dict[str, str] = field(default_factory=dict)


def rule(outcomes: str, body: Body = None, query: Query = "", **params: str) -> Rule:
    parts = tuple(outcomes.split())
    assert len(parts) == len(CALLERS), f"{outcomes!r}: one outcome per caller {CALLERS}"
    assert set(parts) <= OUTCOMES, f"{outcomes!r}: outcomes are {sorted(OUTCOMES)}"
    return Rule(parts, body, query, params)


def _new_deal(world: World) -> dict[str, Any]:
    return deal_body(world.merchant_id)


_MERCHANT = {
    "name": "Noodle Bar",
    "slug": "noodle-bar",
    "country": "US",
    "currency": "USD",
    "time_zone": "America/New_York",
}
_PROFILE = {"display_name": "Renamed"}
_SHARE = {"channel": "wechat"}
_SANDBOX = {"provider": "sandbox"}
_TOPUP = {"amount": {"amount": 1000, "currency": "USD"}}
_PAYOUT = {"amount": {"amount": 100, "currency": "USD"}}
_WITHDRAWAL = {"amount": {"amount": 100, "currency": "USD"}, "destination": "IBAN DE89 3704"}
_REFUND = {"amount": 100, "reason": "damaged"}
_SIGNUP = {"email": "newcomer@example.com", "password": PASSWORD, "display_name": "Newcomer"}
_WEBHOOK_ENDPOINT = {"url": "http://127.0.0.1:9/hooks", "events": ["team.succeeded"]}
_SHIPMENT = {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}


def _CHOSEN_ADDRESS(world: World) -> dict[str, Any]:  # noqa: N802 - a body, like the others
    return {"address_id": world.address_id}


def _BULK_SHIPMENTS(world: World) -> dict[str, Any]:  # noqa: N802 - a body, like the others
    return {"shipments": [{"seat_id": world.seat_id, **_SHIPMENT}]}


def _VOUCHER_CODE(world: World) -> dict[str, Any]:  # noqa: N802 - a body, like the others
    return {"code": world.voucher_code}


_BARGAIN_TERMS = {
    "floor_price": {"amount": 1000, "currency": "USD"},
    "helpers": 5,
    "hours": 24,
}
_POINT_APPLICATION = {
    "name": "Maple Court lobby",
    "address": "12 Maple Court",
    "opening_hours": "Daily 9-21",
    "capacity_per_day": 20,
}


def _new_staff(world: World) -> dict[str, Any]:
    return {"email": world.accounts["other_shopper"].email}


def _image_order(world: World) -> dict[str, Any]:
    return {"image_ids": [world.image_id]}


def _pasted_token(world: World) -> str:
    return urlencode({"text": f"Join me {world.share_token}"})


def _shoppers_tree(world: World) -> str:
    return urlencode({"root": world.accounts["shopper"].user_id})


def _shoppers_login(world: World) -> dict[str, Any]:
    return {"email": world.accounts["shopper"].email, "password": PASSWORD}


def _app_manifest(world: World) -> dict[str, Any]:
    return app_manifest()


def _shoppers_login_page(world: World) -> dict[str, Any]:
    return {**_shoppers_login(world), "next": "/"}


_FEED_RULES = {
    "rules": {"exploration": 0.2, "min_share": {"travel": 0.1}},
    "arms": [{"name": "linucb", "kind": "linucb", "share": 1}],
}
_SIGNUP_PAGE = {**_SIGNUP, "email": "page.newcomer@example.com"}
_ACCOUNT_PAGE = {"display_name": "Renamed", "locale": "en", "time_zone": "UTC"}
_MERCHANT_PAGE = {
    "name": "Matrix Mart",
    "slug": "matrix-mart",
    "country": "ID",
    "currency": "IDR",
    "time_zone": "Asia/Jakarta",
}
_APPLICATION_PAGE = {**_MERCHANT_PAGE, "slug": "matrix-stall", "pitch": "Noodles"}
_WITHDRAWAL_PAGE = {"amount": "1.00", "currency": "USD", "destination": "IBAN DE89 3704"}
_FILL_BUDGET = {"limit": {"amount": 1000, "currency": "USD"}}
_FILL_BUDGET_PAGE = {"limit": "10.00"}
_PLATFORM_BUDGET_PAGE = {"currency": "USD", "limit": "10.00"}

# One row per route; the outcomes are for, in this order:
#   anonymous   shopper   other_shopper   staff   other_staff   operator
# Path parameters name the shopper's team, seat, payment, share, pay link, notification and API
# token, and the staff's merchant and its live deal (``World.path_values``).
MATRIX: dict[tuple[str, str], Rule] = {
    # operations
    ("GET", "/healthz"): rule("ok ok ok ok ok ok"),
    ("GET", "/readyz"): rule("ok ok ok ok ok ok"),
    # open unless PINTUAN_METRICS_TOKEN is set (then its bearer token; tested with the metrics)
    ("GET", "/metrics"): rule("ok ok ok ok ok ok"),
    # teams and seats: anyone signed in may start or join; a seat is its holder's alone
    ("POST", "/v1/deals/{deal_id}/teams"): rule("401 ok ok ok ok ok"),
    ("POST", "/v1/deals/{deal_id}/solo"): rule("401 ok ok ok ok ok"),
    ("POST", "/v1/teams/{team_id}/seats"): rule("401 ok ok ok ok ok"),
    ("GET", "/v1/teams/{team_id}"): rule("ok ok ok ok ok ok"),
    ("GET", "/v1/deals/{deal_id}/teams"): rule("ok ok ok ok ok ok"),
    ("POST", "/v1/seats/{seat_id}/cancel"): rule("401 ok 404 404 404 404"),
    ("GET", "/v1/me/seats"): rule("401 ok ok ok ok ok"),
    # deals: public to read when live; written by the merchant's staff (and operators)
    ("POST", "/v1/deals"): rule("401 403 403 ok 403 ok", _new_deal),
    ("GET", "/v1/deals"): rule("ok ok ok ok ok ok"),
    # the feed: anyone's slate; its rules and policies are the operators'
    ("GET", "/v1/feed"): rule("ok ok ok ok ok ok"),
    ("GET", "/v1/operator/feed"): rule("401 403 403 403 403 ok"),
    ("PUT", "/v1/operator/feed"): rule("401 403 403 403 403 ok", _FEED_RULES),
    ("GET", "/v1/deals/{deal_id}"): rule("ok ok ok ok ok ok"),
    ("PATCH", "/v1/deals/{deal_id}"): rule("401 403 403 ok 403 ok", {"title": "Renamed"}),
    ("POST", "/v1/deals/{deal_id}/publish"): rule("401 403 403 ok 403 ok"),
    ("POST", "/v1/deals/{deal_id}/pause"): rule("401 403 403 ok 403 ok"),
    ("POST", "/v1/deals/{deal_id}/end"): rule("401 403 403 ok 403 ok"),
    # a deal's pictures: public to see; changed by the merchant's staff (and operators)
    ("GET", "/v1/deals/{deal_id}/images"): rule("ok ok ok ok ok ok"),
    ("POST", "/v1/deals/{deal_id}/images"): rule("401 403 403 ok 403 ok"),
    ("DELETE", "/v1/deals/{deal_id}/images/{image_id}"): rule("401 403 403 ok 403 ok"),
    ("PUT", "/v1/deals/{deal_id}/images/order"): rule("401 403 403 ok 403 ok", _image_order),
    ("GET", "/media/{name}"): rule("ok ok ok ok ok ok"),
    # moderation is the operators' alone: the merchant's staff cannot lift it
    ("POST", "/v1/deals/{deal_id}/moderate"): rule("401 403 403 403 403 ok"),
    ("POST", "/v1/deals/{deal_id}/unmoderate"): rule("401 403 403 403 403 ok"),
    # payments: a seat is paid by its holder, or by anyone holding its pay link
    ("POST", "/v1/seats/{seat_id}/payments"): rule("401 ok 404 404 404 404", _SANDBOX),
    ("POST", "/v1/me/wallet/topups"): rule("401 ok ok ok ok ok", _TOPUP),
    ("POST", "/v1/seats/{seat_id}/pay-links"): rule("401 ok 404 404 404 404"),
    ("GET", "/v1/pay-links/{token}"): rule("ok ok ok ok ok ok"),
    ("POST", "/v1/pay-links/{token}/payments"): rule("401 ok ok ok ok ok", _SANDBOX),
    ("GET", "/v1/payments/{payment_id}"): rule("401 ok 404 404 404 404"),
    # webhooks are authorised by the provider's signature, which nobody here has
    ("POST", "/v1/webhooks/{provider_name}"): rule("ok ok ok ok ok ok", {"id": "evt_1"}),
    # the sandbox's hosted checkout: whoever holds the checkout reference, as with a real one
    ("GET", "/sandbox/checkout/{ref}"): rule("ok ok ok ok ok ok"),
    ("POST", "/sandbox/checkout/{ref}/{choice}"): rule("ok ok ok ok ok ok"),
    ("POST", "/v1/test_helpers/payments/{payment_id}/{outcome}"): rule("401 ok 404 404 404 404"),
    # accounts
    ("POST", "/v1/signup"): rule("ok ok ok ok ok ok", _SIGNUP),
    ("POST", "/v1/sessions"): rule("ok ok ok ok ok ok", _shoppers_login),
    ("DELETE", "/v1/sessions/current"): rule("ok ok ok ok ok ok"),
    ("POST", "/v1/tokens"): rule("ok ok ok ok ok ok", _shoppers_login),
    ("GET", "/v1/me"): rule("401 ok ok ok ok ok"),
    ("PATCH", "/v1/me"): rule("401 ok ok ok ok ok", _PROFILE),
    ("POST", "/v1/me/tokens"): rule("401 ok ok ok ok ok", {"name": "cli"}),
    ("GET", "/v1/me/tokens"): rule("401 ok ok ok ok ok"),
    ("DELETE", "/v1/me/tokens/{token_id}"): rule("401 ok 404 404 404 404"),
    ("GET", "/v1/me/sessions"): rule("401 ok ok ok ok ok"),
    ("POST", "/v1/me/sessions/revoke-all"): rule("401 ok ok ok ok ok"),
    ("POST", "/v1/users/{user_id}/disable"): rule("401 403 403 403 403 ok"),
    ("POST", "/v1/users/{user_id}/enable"): rule("401 403 403 403 403 ok"),
    # merchants: operators approve and suspend; staff see their own merchant's private parts
    ("POST", "/v1/merchants"): rule("401 403 403 403 403 ok", _MERCHANT),
    ("GET", "/v1/merchants"): rule("ok ok ok ok ok ok"),
    ("GET", "/v1/merchants/{merchant_id}"): rule("ok ok ok ok ok ok"),
    ("POST", "/v1/merchants/{merchant_id}/approve"): rule("401 403 403 403 403 ok"),
    ("POST", "/v1/merchants/{merchant_id}/suspend"): rule("401 403 403 403 403 ok"),
    ("DELETE", "/v1/merchants/{merchant_id}/staff/{user_id}"): rule("401 403 403 403 403 ok"),
    ("POST", "/v1/merchants/{merchant_id}/staff"): rule("401 403 403 403 403 ok", _new_staff),
    ("GET", "/v1/merchants/{merchant_id}/staff"): rule("401 404 404 ok 404 ok"),
    ("GET", "/v1/me/notifications"): rule("401 ok ok ok ok ok"),
    ("POST", "/v1/me/notifications/{notification_id}/read"): rule("401 ok 404 404 404 404"),
    # money
    ("GET", "/v1/me/wallet"): rule("401 ok ok ok ok ok"),
    ("GET", "/v1/merchants/{merchant_id}/balance"): rule("401 404 404 ok 404 ok"),
    ("GET", "/v1/merchants/{merchant_id}/settlements"): rule("401 404 404 ok 404 ok"),
    ("POST", "/v1/merchants/{merchant_id}/payouts"): rule("401 403 403 403 403 ok", _PAYOUT),
    # Refunds after success and disputes.
    ("POST", "/v1/seats/{seat_id}/refunds"): rule("401 404 404 ok 404 ok", _REFUND),
    ("GET", "/v1/seats/{seat_id}/refunds"): rule("401 ok 404 ok 404 ok"),
    ("GET", "/v1/merchants/{merchant_id}/disputes"): rule("401 404 404 ok 404 ok"),
    ("GET", "/v1/merchants/{merchant_id}/payouts"): rule("401 404 404 ok 404 ok"),
    # withdrawals: one's own wallet; operators see and move everyone's
    ("POST", "/v1/me/wallet/withdrawals"): rule("401 ok ok ok ok ok", _WITHDRAWAL),
    ("GET", "/v1/me/wallet/withdrawals"): rule("401 ok ok ok ok ok"),
    ("GET", "/v1/ops/withdrawals"): rule("401 403 403 403 403 ok"),
    # referral commissions: one's own; a merchant's for its staff and operators
    ("GET", "/v1/me/commissions"): rule("401 ok ok ok ok ok"),
    ("GET", "/v1/merchants/{merchant_id}/commissions"): rule("401 404 404 ok 404 ok"),
    # auto-fill budgets: a merchant's by its staff (and operators), the platform's by operators
    ("GET", "/v1/merchants/{merchant_id}/fill-budget"): rule("401 404 404 ok 404 ok"),
    ("PUT", "/v1/merchants/{merchant_id}/fill-budget"): rule("401 404 404 ok 404 ok", _FILL_BUDGET),
    ("GET", "/v1/merchants/{merchant_id}/filled-teams"): rule("401 404 404 ok 404 ok"),
    ("GET", "/v1/ops/fill-budget"): rule("401 403 403 403 403 ok"),
    ("PUT", "/v1/ops/fill-budget"): rule("401 403 403 403 403 ok", _FILL_BUDGET),
    ("GET", "/v1/ops/filled-teams"): rule("401 403 403 403 403 ok"),
    ("POST", "/v1/payouts/{payout_id}/status"): rule(
        "401 403 403 403 403 404", {"status": "sent"}, payout_id="po_none"
    ),
    ("GET", "/v1/ops/reconciliation"): rule(
        "401 403 403 403 403 ok", query="provider=sandbox&date=2026-01-01"
    ),
    ("GET", "/v1/ops/reconciliation/findings"): rule("401 403 403 403 403 ok"),
    ("POST", "/v1/ops/reconciliation/findings/{finding_id}"): rule(
        "401 403 403 403 403 404",
        {"state": "explained", "note": "timing"},
        finding_id="rcf_none",
    ),
    ("GET", "/v1/merchants/{merchant_id}/teams"): rule("401 404 404 ok 404 ok"),
    ("GET", "/v1/merchants/{merchant_id}/dashboard"): rule("401 404 404 ok 404 ok"),
    ("GET", "/v1/merchants/{merchant_id}/orders"): rule("401 404 404 ok 404 ok"),
    ("GET", "/v1/merchants/{merchant_id}/refunds"): rule("401 404 404 ok 404 ok"),
    ("GET", "/v1/refunds"): rule("401 403 403 403 403 ok"),
    ("GET", "/v1/users"): rule("401 403 403 403 403 ok"),
    ("POST", "/v1/audit/runs"): rule("401 403 403 403 403 ok"),
    ("GET", "/v1/audit/runs"): rule("401 403 403 403 403 ok"),
    ("GET", "/v1/ops/ledger/check"): rule("401 403 403 403 403 ok"),
    # Every payment ends: the operators' queue of payments (payments/queue_api.py).
    ("GET", "/v1/operator/payments/queue"): rule("401 403 403 403 403 ok"),
    ("GET", "/v1/operator/payments/{payment_id}"): rule("401 403 403 403 403 ok"),
    ("POST", "/v1/operator/payments/{payment_id}/actions"): rule(
        "401 403 403 403 403 ok", {"action": "retry"}
    ),
    # Every refund after success ends: the operators' queue of refunds; nothing seeded is a
    # refund, so the operator's lookup finds none (404) and changes nothing.
    ("GET", "/v1/operator/refunds/queue"): rule("401 403 403 403 403 ok"),
    ("GET", "/v1/operator/refunds/{refund_id}"): rule(
        "401 403 403 403 403 404", refund_id="rfd_unknown"
    ),
    ("POST", "/v1/operator/refunds/{refund_id}/actions"): rule(
        "401 403 403 403 403 404", {"action": "retry"}, refund_id="rfd_unknown"
    ),
    # sharing: anyone signed in may share a team or deal; a share is its maker's to delete
    ("POST", "/v1/teams/{team_id}/shares"): rule("401 ok ok ok ok ok", _SHARE),
    ("POST", "/v1/deals/{deal_id}/shares"): rule("401 ok ok ok ok ok", _SHARE),
    ("GET", "/v1/me/shares"): rule("401 ok ok ok ok ok"),
    ("DELETE", "/v1/me/shares/{share_id}"): rule("401 ok 404 404 404 404"),
    ("GET", "/s/{code}"): rule("ok ok ok ok ok ok"),
    ("GET", "/v1/share-tokens"): rule("ok ok ok ok ok ok", query=_pasted_token),
    ("GET", "/v1/share-tokens/{token}"): rule("ok ok ok ok ok ok", token="share_token"),
    ("GET", "/v1/teams/{team_id}/poster.png"): rule("ok ok ok ok ok ok"),
    ("GET", "/v1/deals/{deal_id}/poster.png"): rule("ok ok ok ok ok ok"),
    ("GET", "/v1/me/invites"): rule("401 ok ok ok ok ok"),
    ("GET", "/v1/ops/invite-tree"): rule("401 403 403 403 403 ok", query=_shoppers_tree),
    # the partner API answers app access tokens only (people's tokens are not apps'); an app's
    # deep links are public, like share links
    ("PUT", "/v1/partner/offers/{external_id}"): rule(
        "401 403 403 403 403 403", lambda _: offer_body(), external_id="screening-1"
    ),
    ("DELETE", "/v1/partner/offers/{external_id}"): rule(
        "401 403 403 403 403 403", external_id="screening-1"
    ),
    ("GET", "/v1/partner/offers"): rule("401 403 403 403 403 403"),
    ("POST", "/v1/partner/images"): rule("401 403 403 403 403 403"),
    ("GET", "/v1/partner/deals"): rule("401 403 403 403 403 403"),
    ("GET", "/v1/partner/deals/{deal_id}/teams"): rule("401 403 403 403 403 403"),
    ("GET", "/a/{app_id}/deals/{deal_id}"): rule("ok ok ok ok ok ok", app_id="app_partner"),
    ("GET", "/a/{app_id}/teams/{team_id}"): rule("ok ok ok ok ok ok", app_id="app_partner"),
    # growth figures: staff see their own merchant's, operators everyone's
    ("GET", "/v1/growth/funnel"): rule("401 403 403 ok ok ok"),
    ("GET", "/v1/growth/k-factor"): rule("401 403 403 ok ok ok"),
    ("GET", "/v1/growth/channels"): rule("401 403 403 ok ok ok"),
    ("GET", "/v1/growth/export.csv"): rule("401 403 403 ok ok ok"),
    ("GET", "/v1/growth/cross-vertical"): rule("401 403 403 ok ok ok"),
    # fulfilment: the address book and a seat's delivery are the shopper's; shipping is the
    # merchant's staff's (and operators'), refused to everyone else as not found
    ("GET", "/v1/me/addresses"): rule("401 ok ok ok ok ok"),
    ("POST", "/v1/me/addresses"): rule("401 ok ok ok ok ok", US_ADDRESS),
    ("PATCH", "/v1/me/addresses/{address_id}"): rule("401 ok 404 404 404 404", {"line2": "Fl 2"}),
    ("DELETE", "/v1/me/addresses/{address_id}"): rule("401 ok 404 404 404 404"),
    ("POST", "/v1/seats/{seat_id}/address"): rule("401 ok 404 404 404 404", _CHOSEN_ADDRESS),
    ("GET", "/v1/seats/{seat_id}/fulfilment"): rule("401 ok 404 404 404 404"),
    ("POST", "/v1/seats/{seat_id}/shipment"): rule("401 404 404 ok 404 ok", _SHIPMENT),
    ("POST", "/v1/seats/{seat_id}/receipt"): rule("401 ok 404 404 404 404"),
    # Vouchers: the shopper's own; the counter is the merchant's staff (or an operator).
    ("GET", "/v1/me/vouchers"): rule("401 ok ok ok ok ok"),
    # A lottery's public record (the world's deal has none).
    ("GET", "/v1/deals/{deal_id}/lottery"): rule("404 404 404 404 404 404"),
    ("GET", "/v1/me/vouchers/{voucher_id}"): rule("401 ok 404 404 404 404"),
    ("GET", "/v1/me/vouchers/{voucher_id}/qr.svg"): rule("401 ok 404 404 404 404"),
    ("POST", "/v1/vouchers/{voucher_id}/refund"): rule("401 ok 404 404 404 404"),
    ("POST", "/v1/vouchers/lookup"): rule("401 403 403 ok 403 ok", _VOUCHER_CODE),
    ("POST", "/v1/vouchers/redeem"): rule("401 403 403 ok 403 ok", _VOUCHER_CODE),
    ("POST", "/v1/vouchers/{voucher_id}/undo"): rule("401 404 404 ok 404 ok"),
    ("GET", "/v1/merchants/{merchant_id}/vouchers"): rule("401 403 403 ok 403 ok"),
    # Pickup points: anyone signed in applies; operators decide; a point's own routes are its
    # leader's (none of the seeded callers leads the unknown point asked for here).
    ("POST", "/v1/pickup-points"): rule("401 ok ok ok ok ok", _POINT_APPLICATION),
    ("GET", "/v1/pickup-points"): rule("ok ok ok ok ok ok"),
    ("GET", "/v1/me/pickup-points"): rule("401 ok ok ok ok ok"),
    ("POST", "/v1/pickup-points/{point_id}/decision"): rule(
        "401 403 403 403 403 404", {"approve": True}, point_id="pp_unknown"
    ),
    ("GET", "/v1/pickup-points/{point_id}/orders"): rule(
        "401 404 404 404 404 404", point_id="pp_unknown"
    ),
    ("POST", "/v1/pickup-points/{point_id}/arrivals"): rule(
        "401 404 404 404 404 404", {"deal_id": "deal_unknown"}, point_id="pp_unknown"
    ),
    ("POST", "/v1/seats/{seat_id}/pickup"): rule(
        "401 ok 404 404 404 404", {"pickup_point_id": "pp_unknown"}
    ),
    ("GET", "/v1/seats/{seat_id}/pickup"): rule("401 404 404 404 404 404"),
    ("POST", "/v1/pickups/handover"): rule("401 404 404 404 404 404", {"code": "ZZZZZ-ZZZZZ"}),
    ("GET", "/v1/me/pickup-earnings"): rule("401 ok ok ok ok ok"),
    # Bargains: a deal's terms are its merchant's to set (readable with the deal; the seeded
    # deal has none); anyone signed in opens one; a bargain is read by its link, cut by friends
    # and bought by its owner (none of the callers owns the unknown bargain asked for here).
    ("PUT", "/v1/deals/{deal_id}/bargain"): rule("401 403 403 ok 403 ok", _BARGAIN_TERMS),
    ("GET", "/v1/deals/{deal_id}/bargain"): rule("404 404 404 404 404 404"),
    ("DELETE", "/v1/deals/{deal_id}/bargain"): rule("401 403 403 ok 403 ok"),
    ("POST", "/v1/deals/{deal_id}/bargains"): rule("401 ok ok ok ok ok"),
    ("GET", "/v1/bargains/{bargain_id}"): rule(
        "404 404 404 404 404 404", bargain_id="bargain_unknown"
    ),
    ("GET", "/v1/me/bargains"): rule("401 ok ok ok ok ok"),
    # Coupons: a shopper's own list; applying one is its seat's shopper's, and a coupon nobody
    # holds is not found even for them.
    ("GET", "/v1/me/coupons"): rule("401 ok ok ok ok ok"),
    ("POST", "/v1/seats/{seat_id}/coupon"): rule(
        "401 404 404 404 404 404", {"coupon_id": "cpn_unknown"}
    ),
    ("POST", "/v1/bargains/{bargain_id}/cuts"): rule(
        "401 404 404 404 404 404", bargain_id="bargain_unknown"
    ),
    ("POST", "/v1/bargains/{bargain_id}/purchase"): rule(
        "401 404 404 404 404 404", bargain_id="bargain_unknown"
    ),
    ("GET", "/v1/merchants/{merchant_id}/shipments"): rule("401 404 404 ok 404 ok"),
    ("POST", "/v1/merchants/{merchant_id}/shipments/bulk"): rule(
        "401 404 404 ok 404 ok", _BULK_SHIPMENTS
    ),
    # shopper pages
    ("GET", "/login"): rule("ok ok ok ok ok ok"),
    ("POST", "/login"): rule("ok ok ok ok ok ok", _shoppers_login_page),
    ("GET", "/signup"): rule("ok ok ok ok ok ok"),
    ("POST", "/signup"): rule("ok ok ok ok ok ok", _SIGNUP_PAGE),
    ("POST", "/logout"): rule("ok ok ok ok ok ok"),
    ("GET", "/account"): rule("login ok ok ok ok ok"),
    ("POST", "/account"): rule("login ok ok ok ok ok", _ACCOUNT_PAGE),
    ("POST", "/language"): rule("ok ok ok ok ok ok", {"locale": "en", "next": "/"}),
    ("GET", "/"): rule("ok ok ok ok ok ok"),
    # the aggregated feed: anyone's slate; a card's link logs the click and opens the item
    ("GET", "/feed/go/{impression_id}/{position}/{item_id}"): rule(
        "ok ok ok ok ok ok",
        impression_id="imp_01JD0000000000000000000000",
        position="0",
        item_id="deal_01JD0000000000000000000000",
    ),
    ("GET", "/deals/{deal_id}"): rule("ok ok ok ok ok ok"),
    ("POST", "/deals/{deal_id}/teams"): rule("login ok ok ok ok ok"),
    ("POST", "/deals/{deal_id}/solo"): rule("login ok ok ok ok ok"),
    ("GET", "/teams/{team_id}"): rule("ok ok ok ok ok ok"),
    ("POST", "/teams/{team_id}/join"): rule("login ok ok ok ok ok"),
    ("POST", "/teams/{team_id}/shares"): rule("login ok ok ok ok ok", _SHARE),
    ("POST", "/deals/{deal_id}/shares"): rule("login ok ok ok ok ok", _SHARE),
    ("POST", "/seats/{seat_id}/pay"): rule("login ok 404 404 404 404", _SANDBOX),
    ("GET", "/payments/{payment_id}/return"): rule("login ok ok ok ok ok"),
    ("POST", "/seats/{seat_id}/cancel"): rule("login ok 404 404 404 404"),
    # The coupon form: the seat's shopper only (a coupon nobody holds sends them back to their
    # team's page, which says so).
    ("POST", "/seats/{seat_id}/coupon"): rule(
        "login ok 404 404 404 404", {"coupon_id": "cpn_unknown"}
    ),
    ("GET", "/orders"): rule("login ok ok ok ok ok"),
    ("GET", "/notifications"): rule("login ok ok ok ok ok"),
    ("GET", "/continue"): rule("login ok ok ok ok ok"),
    ("POST", "/seats/{seat_id}/pay-link"): rule("login ok 404 404 404 404"),
    ("GET", "/pay/{token}"): rule("ok ok ok ok ok ok"),
    ("POST", "/pay/{token}"): rule("login ok ok ok ok ok", _SANDBOX),
    ("GET", "/me/shares"): rule("login ok ok ok ok ok"),
    ("POST", "/me/shares/{share_id}/delete"): rule("login ok 404 404 404 404"),
    ("GET", "/me/addresses"): rule("login ok ok ok ok ok"),
    ("GET", "/me/addresses/new"): rule("login ok ok ok ok ok"),
    ("POST", "/me/addresses"): rule("login ok ok ok ok ok", US_ADDRESS),
    ("GET", "/me/addresses/{address_id}"): rule("login ok 404 404 404 404"),
    ("POST", "/me/addresses/{address_id}"): rule("login ok 404 404 404 404", US_ADDRESS),
    ("POST", "/me/addresses/{address_id}/delete"): rule("login ok 404 404 404 404"),
    ("POST", "/me/addresses/{address_id}/default"): rule("login ok 404 404 404 404"),
    ("POST", "/seats/{seat_id}/address"): rule("login ok 404 404 404 404", _CHOSEN_ADDRESS),
    ("POST", "/seats/{seat_id}/pickup"): rule(
        "login ok 404 404 404 404", {"pickup_point_id": "pp_unknown"}
    ),
    ("GET", "/pickup-points"): rule("login ok ok ok ok ok"),
    ("POST", "/pickup-points"): rule("login ok ok ok ok ok", _POINT_APPLICATION),
    ("GET", "/pickup-points/{point_id}"): rule("login 404 404 404 404 404", point_id="pp_unknown"),
    ("POST", "/pickup-points/{point_id}/arrivals"): rule(
        "login ok ok ok ok ok", {"deal_id": "deal_unknown"}, point_id="pp_unknown"
    ),
    ("POST", "/pickup-points/{point_id}/handover"): rule(
        "login ok ok ok ok ok", {"code": "ZZZZZ-ZZZZZ"}, point_id="pp_unknown"
    ),
    ("POST", "/seats/{seat_id}/received"): rule("login ok 404 404 404 404"),
    ("GET", "/bargains"): rule("login ok ok ok ok ok"),
    ("GET", "/bargains/{bargain_id}"): rule(
        "404 404 404 404 404 404", bargain_id="bargain_unknown"
    ),
    ("POST", "/deals/{deal_id}/bargains"): rule("login ok ok ok ok ok"),
    ("POST", "/bargains/{bargain_id}/cuts"): rule(
        "login 404 404 404 404 404", bargain_id="bargain_unknown"
    ),
    ("POST", "/bargains/{bargain_id}/purchase"): rule(
        "login 404 404 404 404 404", bargain_id="bargain_unknown"
    ),
    # consoles: a merchant's to its staff (and operators), the operator's to operators
    ("GET", "/console"): rule("login 403 403 ok ok ok"),
    ("GET", "/console/merchants/{merchant_id}"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/growth"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/deals"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/deals/new"): rule("login 403 403 ok 403 ok"),
    ("POST", "/console/merchants/{merchant_id}/deals"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/deals/{deal_id}"): rule("login 403 403 ok 403 ok"),
    ("POST", "/console/merchants/{merchant_id}/deals/{deal_id}"): rule(
        "login 403 403 ok 403 ok", {"title": "Renamed"}
    ),
    ("POST", "/console/merchants/{merchant_id}/deals/{deal_id}/{action}"): rule(
        "login 403 403 ok 403 ok"
    ),
    ("GET", "/console/merchants/{merchant_id}/deals/{deal_id}/bargain"): rule(
        "login 403 403 ok 403 ok"
    ),
    ("POST", "/console/merchants/{merchant_id}/deals/{deal_id}/bargain"): rule(
        "login 403 403 ok 403 ok", {"floor": "10.00", "helpers": "5", "hours": "24"}
    ),
    ("POST", "/console/merchants/{merchant_id}/deals/{deal_id}/bargain/remove"): rule(
        "login 403 403 ok 403 ok"
    ),
    ("POST", "/console/merchants/{merchant_id}/deals/{deal_id}/images"): rule(
        "login 403 403 ok 403 ok"
    ),
    ("POST", "/console/merchants/{merchant_id}/deals/{deal_id}/images/{image_id}/move"): rule(
        "login 403 403 ok 403 ok", {"step": "-1"}
    ),
    ("POST", "/console/merchants/{merchant_id}/deals/{deal_id}/images/{image_id}/remove"): rule(
        "login 403 403 ok 403 ok"
    ),
    ("GET", "/console/merchants/{merchant_id}/teams"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/teams/{team_id}"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/orders"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/refunds"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/settlements"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/shipping"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/shipping.csv"): rule("login 403 403 ok 403 ok"),
    ("POST", "/console/merchants/{merchant_id}/seats/{seat_id}/shipment"): rule(
        "login 403 403 ok 403 ok", _SHIPMENT
    ),
    ("POST", "/console/merchants/{merchant_id}/shipping/upload"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/seats/{seat_id}"): rule("login 403 403 ok 403 ok"),
    ("POST", "/console/merchants/{merchant_id}/seats/{seat_id}/refunds"): rule(
        "login 403 403 ok 403 ok", {"amount": "1.00", "reason": "damaged"}
    ),
    ("GET", "/console/merchants/{merchant_id}/disputes"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/vouchers"): rule("login 403 403 ok 403 ok"),
    ("POST", "/console/merchants/{merchant_id}/vouchers/lookup"): rule(
        "login 403 403 ok 403 ok", _VOUCHER_CODE
    ),
    ("POST", "/console/merchants/{merchant_id}/vouchers/redeem"): rule(
        "login 403 403 ok 403 ok", _VOUCHER_CODE
    ),
    ("POST", "/console/merchants/{merchant_id}/vouchers/{voucher_id}/undo"): rule(
        "login 403 403 ok 403 ok"
    ),
    ("POST", "/vouchers/{voucher_id}/refund"): rule("login ok 404 404 404 404"),
    ("GET", "/console/operator"): rule("login 403 403 403 403 ok"),
    ("GET", "/console/operator/growth"): rule("login 403 403 403 403 ok"),
    ("GET", "/console/operator/feed/rules"): rule("login 403 403 403 403 ok"),
    ("POST", "/console/operator/feed/rules"): rule(
        "login 403 403 403 403 ok",
        {
            "exploration": "0.2",
            "arm_name_0": "linucb",
            "arm_kind_0": "linucb",
            "arm_share_0": "1",
            "version": "0",
        },
    ),
    ("GET", "/console/operator/merchants"): rule("login 403 403 403 403 ok"),
    ("POST", "/console/operator/merchants/{merchant_id}/{action}"): rule(
        "login 403 403 403 403 ok", action="suspend"
    ),
    ("GET", "/console/operator/deals"): rule("login 403 403 403 403 ok"),
    ("POST", "/console/operator/deals/{deal_id}/{action}"): rule("login 403 403 403 403 ok"),
    ("GET", "/console/operator/refunds"): rule("login 403 403 403 403 ok"),
    ("GET", "/console/operator/users"): rule("login 403 403 403 403 ok"),
    ("POST", "/console/operator/users/{user_id}/{action}"): rule(
        "login 403 403 403 403 ok", action="disable"
    ),
    ("GET", "/console/operator/audit"): rule("login 403 403 403 403 ok"),
    ("POST", "/console/operator/audit"): rule("login 403 403 403 403 ok"),
    ("GET", "/console/operator/reconciliation"): rule("login 403 403 403 403 ok"),
    # the feed's lab: the latest simulation and offline evaluation, for operators (no
    # simulation has been run here, so there is no chart yet)
    ("GET", "/console/operator/feed/lab"): rule("login 403 403 403 403 ok"),
    ("GET", "/console/operator/feed/lab/chart.png"): rule("login 403 403 403 403 404"),
    ("POST", "/console/operator/reconciliation/findings/{finding_id}"): rule(
        "login 403 403 403 403 404",
        {"state": "fixed", "note": "refunded by hand"},
        finding_id="rcf_none",
    ),
    # the open platform: any signed-in user may register an app; an app is its developer's
    # (operators see and review every one, but its secrets are the developer's alone)
    ("POST", "/v1/apps"): rule("401 ok ok ok ok ok", _app_manifest),
    ("GET", "/v1/apps"): rule("401 ok ok ok ok ok"),
    ("GET", "/v1/apps/{app_id}"): rule("401 ok 404 404 404 ok"),
    ("POST", "/v1/apps/{app_id}/approve"): rule("401 403 403 403 403 ok"),
    ("POST", "/v1/apps/{app_id}/suspend"): rule("401 403 403 403 403 ok"),
    ("POST", "/v1/apps/{app_id}/secrets"): rule("401 ok 404 404 404 403"),
    ("DELETE", "/v1/apps/{app_id}/secrets/{secret_id}"): rule("401 ok 404 404 404 403"),
    # app routes take an app's access token: every user's token is refused
    ("GET", "/v1/partner/me"): rule("401 403 403 403 403 403"),
    # OAuth: the client authenticates itself (nobody here is a client); the consent page is
    # for whoever is signed in
    ("POST", "/oauth/token"): rule("ok ok ok ok ok ok"),
    ("POST", "/oauth/revoke"): rule("401 401 401 401 401 401"),
    ("GET", "/.well-known/oauth-authorization-server"): rule("ok ok ok ok ok ok"),
    ("GET", "/oauth/authorize"): rule("login ok ok ok ok ok"),
    ("POST", "/oauth/authorize"): rule("login ok ok ok ok ok"),
    ("GET", "/developers/docs"): rule("ok ok ok ok ok ok"),
    ("GET", "/console/developer"): rule("login ok ok ok ok ok"),
    ("POST", "/console/developer/apps"): rule("login ok ok ok ok ok"),
    ("GET", "/console/developer/apps/{app_id}"): rule("login ok 404 404 404 403"),
    ("POST", "/console/developer/apps/{app_id}/secrets"): rule("login ok 404 404 404 403"),
    ("GET", "/console/operator/apps"): rule("login 403 403 403 403 ok"),
    ("POST", "/console/operator/apps/{app_id}/{action}"): rule(
        "login 403 403 403 403 ok", action="approve"
    ),
    # the developer console: anyone signed in, who sees only the apps they own
    ("GET", "/console/developer/webhooks"): rule("login ok ok ok ok ok"),
    # webhook endpoints: an app's own, through its access token (a person's token is none)
    ("POST", "/v1/webhook_endpoints"): rule("401 403 403 403 403 403", _WEBHOOK_ENDPOINT),
    ("GET", "/v1/webhook_endpoints"): rule("401 403 403 403 403 403"),
    ("GET", "/v1/webhook_endpoints/{endpoint_id}"): rule(
        "401 403 403 403 403 403", endpoint_id="whe_any"
    ),
    ("PATCH", "/v1/webhook_endpoints/{endpoint_id}"): rule(
        "401 403 403 403 403 403", {"enabled": False}, endpoint_id="whe_any"
    ),
    ("DELETE", "/v1/webhook_endpoints/{endpoint_id}"): rule(
        "401 403 403 403 403 403", endpoint_id="whe_any"
    ),
    ("GET", "/v1/webhook_endpoints/{endpoint_id}/deliveries"): rule(
        "401 403 403 403 403 403", endpoint_id="whe_any"
    ),
    ("POST", "/v1/webhook_endpoints/{endpoint_id}/deliveries/{delivery_id}/replay"): rule(
        "401 403 403 403 403 403", endpoint_id="whe_any", delivery_id="whd_any"
    ),
    ("POST", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret"): rule(
        "401 403 403 403 403 403", endpoint_id="whe_any"
    ),
    # Console oversight: the audit log, registering merchants, applications to sell.
    ("GET", "/v1/merchants/{merchant_id}/audit-log"): rule("401 404 404 ok 404 ok"),
    ("POST", "/console/operator/merchants"): rule("login 403 403 403 403 ok", _MERCHANT_PAGE),
    ("GET", "/sell"): rule("login ok ok ok ok ok"),
    ("POST", "/sell"): rule("login ok ok ok ok ok", _APPLICATION_PAGE),
    ("GET", "/console/operator/applications"): rule("login 403 403 403 403 ok"),
    ("GET", "/console/operator/pickup-points"): rule("login 403 403 403 403 ok"),
    ("POST", "/console/operator/pickup-points/{point_id}/{decision}"): rule(
        "login 403 403 403 403 404", point_id="pp_unknown", decision="approve"
    ),
    # A rejection without a reason: refused (422) for the operator before any lookup.
    ("POST", "/console/operator/applications/{application_id}/{decision}"): rule(
        "login 403 403 403 403 ok", application_id="apl_none", decision="reject"
    ),
    # Every payment ends: the console's payments queue; the seeded payment is not queued, so
    # the operator's retry is refused (409) after the lookup.
    ("GET", "/console/operator/payments"): rule("login 403 403 403 403 ok"),
    ("POST", "/console/operator/payments/{payment_id}/{action}"): rule(
        "login 403 403 403 403 ok", action="retry"
    ),
    ("GET", "/console/operator/refund-queue"): rule("login 403 403 403 403 ok"),
    ("POST", "/console/operator/refund-queue/{refund_id}/{action}"): rule(
        "login 403 403 403 403 404", refund_id="rfd_unknown", action="retry"
    ),
    # The shopper's wallet and commissions: each caller sees only their own. Nobody seeded
    # holds money, so a withdrawal is refused (422) after the caller was let in.
    ("GET", "/me/wallet"): rule("login ok ok ok ok ok"),
    ("POST", "/me/wallet/withdrawals"): rule("login ok ok ok ok ok", _WITHDRAWAL_PAGE),
    ("GET", "/me/commissions"): rule("login ok ok ok ok ok"),
    ("GET", "/console/merchants/{merchant_id}/commissions"): rule("login 403 403 ok 403 ok"),
    ("GET", "/console/operator/withdrawals"): rule("login 403 403 403 403 ok"),
    ("GET", "/console/merchants/{merchant_id}/fill-budget"): rule("login 403 403 ok 403 ok"),
    ("POST", "/console/merchants/{merchant_id}/fill-budget"): rule(
        "login 403 403 ok 403 ok", _FILL_BUDGET_PAGE
    ),
    ("GET", "/console/operator/fill-budget"): rule("login 403 403 403 403 ok"),
    ("POST", "/console/operator/fill-budget"): rule(
        "login 403 403 403 403 ok", _PLATFORM_BUDGET_PAGE
    ),
    ("POST", "/console/operator/withdrawals/{payout_id}/{to}"): rule(
        "login 403 403 403 403 404", payout_id="po_none", to="sent"
    ),
}


# ---------------------------------------------------------------------------- the route table


def route_table(app: FastAPI) -> Iterator[tuple[str, str]]:
    """Every (method, path) the application answers, HEAD aside (it follows GET)."""
    for route in iter_route_contexts(app.routes):
        path = route.path
        if not path or path in FRAMEWORK_PATHS or not route.methods:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            yield method, path


def is_page(path: str) -> bool:
    return not path.startswith("/v1/")


def snapshot(services: Services) -> dict[str, list[str]]:
    """Every row of every table, so that a refused call can be shown to have changed nothing."""

    def read(session: Any) -> dict[str, list[str]]:
        tables = {}
        for table in Base.metadata.sorted_tables:
            kept = [column for column in table.columns if column.name not in LAST_USE_COLUMNS]
            rows = session.execute(select(*kept))
            tables[table.name] = sorted(repr(tuple(row)) for row in rows)
        return tables

    return services.db.run_sync(read)


def changed_tables(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return [name for name in before if before[name] != after[name] and name not in BOOKKEEPING]


@dataclass
class Caller:
    """One caller: a bearer token for the API, a browser session for the pages."""

    name: str
    account: Account | None
    browser: TestClient
    csrf: str


def browser_of(app: FastAPI, name: str, world: World) -> Caller:
    account = world.accounts.get(name)
    browser = TestClient(app, raise_server_exceptions=False)
    if account is not None:
        answer = browser.post("/v1/sessions", json={"email": account.email, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
    page = browser.get("/account" if account else "/login", headers=HTML)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, f"no CSRF token on the page ({page.status_code})"
    return Caller(name, account, browser, found.group(1))


def call(caller: Caller, method: str, path: str, rule: Rule, world: World) -> Response:
    values = world.path_values()
    values.update({name: values.get(key, key) for name, key in rule.params.items()})
    query = rule.query(world) if callable(rule.query) else rule.query
    url = path.format(**values) + (f"?{query}" if query else "")
    body = rule.body(world) if callable(rule.body) else rule.body
    if is_page(path):
        data = None
        if method == "POST":
            data = {"csrf_token": caller.csrf, "form_key": f"{caller.name}-{path}", **(body or {})}
        page: Response = caller.browser.request(
            method, url, data=data, headers=HTML, follow_redirects=False
        )
        return page
    headers = caller.account.headers if caller.account else {}
    answer: Response = caller.browser.request(method, url, json=body, headers=headers)
    return answer


def verdict(expected: str, response: Response) -> str | None:
    """None when ``response`` is what the row says, else what went wrong."""
    status = response.status_code
    went_to_login = status in (302, 303) and response.headers.get("location", "").startswith(
        "/login"
    )
    if expected == "ok":
        if status >= 500 or status in (401, 403, 404) or went_to_login:
            return f"expected to be let in, got {status} {response.text[:200]}"
        return None
    if expected == "login":
        return None if went_to_login else f"expected a redirect to /login, got {status}"
    if status != int(expected):
        return f"expected {expected}, got {status} {response.text[:200]}"
    if not is_page(response.url.path) and response.headers["content-type"] != PROBLEM_JSON:
        return f"a refusal that is not a problem document: {response.headers['content-type']}"
    return None


# ---------------------------------------------------------------------------- the tests


def test_every_route_has_a_row(settings: Settings, services: Services) -> None:
    app = create_app(settings, services)
    routes = set(route_table(app))

    missing = sorted(routes - MATRIX.keys())
    stale = sorted(MATRIX.keys() - routes)

    assert not missing, "Add a row to MATRIX in tests/features/test_access.py for:\n" + "\n".join(
        f'    ("{method}", "{path}"): rule("<{" ".join(CALLERS)}>"),' for method, path in missing
    )
    assert not stale, f"MATRIX has rows for routes that no longer exist: {stale}"


def test_each_caller_gets_what_the_matrix_says_and_refusals_change_nothing(
    settings: Settings, services: Services
) -> None:
    wrong = walk_every_route(settings, services)

    assert not wrong, f"{len(wrong)} calls disagree with MATRIX:\n" + "\n".join(wrong)


# Told of each call as it is made (method, path, caller) and when it has been answered (None).
Watcher = Callable[[tuple[str, str, str] | None], None]


def walk_every_route(
    settings: Settings, services: Services, watch: Watcher | None = None
) -> list[str]:
    """Call every route of ``MATRIX`` as each caller on seeded data (a fresh world whenever an
    allowed call changed the last one); the calls that disagree with the matrix, one a line."""
    app = create_app(settings, services)
    wrong: list[str] = []
    with TestClient(app, raise_server_exceptions=False) as client:
        world: tuple[World, dict[str, Caller]] | None = None
        for (method, path), rule in MATRIX.items():
            if world is None:
                _empty_all_tables(services.db)
                seeded = seed_world(client, services)
                world = seeded, {name: browser_of(app, name, seeded) for name in CALLERS}
            seeded, callers = world
            start = snapshot(services)
            wrong += check_route(services, method, path, rule, seeded, callers, watch)
            if snapshot(services) != start:
                world = None
    return wrong


def check_route(
    services: Services,
    method: str,
    path: str,
    rule: Rule,
    world: World,
    callers: dict[str, Caller],
    watch: Watcher | None = None,
) -> list[str]:
    """Call ``path`` as each caller, refusals first (so that what an allowed call changes
    cannot hide them); what went wrong, one line per caller."""
    wrong = []
    order = sorted(CALLERS, key=lambda name: rule.outcomes[CALLERS.index(name)] == "ok")
    before = snapshot(services)
    for name in order:
        expected = rule.outcomes[CALLERS.index(name)]
        if watch is not None:
            watch((method, path, name))
        answer = call(callers[name], method, path, rule, world)
        if watch is not None:
            watch(None)
        problem = verdict(expected, answer)
        if problem is None and expected != "ok":
            after = snapshot(services)
            if changed := changed_tables(before, after):
                problem = f"refused, but changed {changed}"
            before = after
        if problem:
            wrong.append(f"{method} {path} as {name}: {problem}")
    return wrong


def test_another_merchants_draft_looks_like_it_does_not_exist(
    client: TestClient, services: Services
) -> None:
    theirs = create_merchant(services.db)
    draft = create_deal(services.db, theirs, live=False)
    staff = create_account(services, role=Role.MERCHANT, merchant=create_merchant(services.db))

    response = client.get(f"/v1/deals/{draft.id}", headers=staff.headers)

    assert response.status_code == 404
    assert response.json()["code"] == "deal_not_found"


def test_shoppers_cannot_create_deals_even_for_an_existing_merchant(
    client: TestClient, services: Services
) -> None:
    merchant = create_merchant(services.db)
    shopper = create_account(services)

    response = client.post("/v1/deals", json=deal_body(merchant.id), headers=shopper.headers)

    assert response.status_code == 403
    assert response.json()["code"] == "not_merchant_staff"
