"""Typed builders of test data: each says what it makes and returns it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from httpx import Response

from pintuan.accounts import service as accounts
from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.domain.autofill import AutoFill
from pintuan.domain.coupons import CouponTerms
from pintuan.domain.deals import Vertical
from pintuan.domain.ladder import Tier
from pintuan.domain.rewards import LeaderReward
from pintuan.domain.roles import Principal, Role
from pintuan.domain.vouchers import VoucherTerms, new_code
from pintuan.kit.db import Database
from pintuan.kit.ids import new_id
from pintuan.kit.money import Money
from pintuan.kit.time import utc_now
from pintuan.merchants import service as merchants
from pintuan.merchants.models import Merchant
from pintuan.notifications.models import Notification
from pintuan.services import Services
from pintuan.teams.models import Seat
from pintuan.vouchers.models import Voucher
from tests.media_pictures import picture

PASSWORD = "correct horse battery"
US_ADDRESS = {
    "recipient": "Ann Lee",
    "phone": "+1 415 555 0100",
    "country": "US",
    "line1": "1 Market St",
    "city": "San Francisco",
    "region": "CA",
    "postcode": "94105",
}
_counter = itertools.count(1)


@dataclass(frozen=True)
class Account:
    user_id: str
    email: str
    token: str
    principal: Principal

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def create_account(
    services: Services,
    *,
    role: Role = Role.SHOPPER,
    merchant: Merchant | None = None,
    email: str | None = None,
    name: str | None = None,
) -> Account:
    """A user with a fresh API token; ``merchant`` makes them its staff."""
    n = next(_counter)
    email = email or f"user{n}@example.com"
    password_hash = services.passwords.hash(PASSWORD)

    def work(session: Any) -> Account:
        user = accounts.create_user(
            session,
            email=email,
            password_hash=password_hash,
            display_name=name or f"User {n}",
            role=Role.SHOPPER if role is Role.MERCHANT else role,
        )
        if merchant is not None:
            merchants.attach_staff(session, merchant.id, user)
        issued = accounts.issue_api_token(session, user.id, "tests")
        principal = accounts.principal_for_user(session, user.id)
        assert principal is not None
        return Account(user.id, user.email, issued.secret, principal)

    return services.db.run_sync(work)


def create_merchant(
    db: Database,
    *,
    currency: str = "USD",
    country: str = "US",
    time_zone: str = "America/New_York",
    approved: bool = True,
    slug: str | None = None,
) -> Merchant:
    operator = Principal("usr_system", Role.OPERATOR, "System", "en", "UTC", frozenset())
    slug = slug or f"merchant-{next(_counter)}"

    def work(session: Any) -> Merchant:
        merchant = merchants.create_merchant(
            session,
            operator,
            merchants.NewMerchant(
                name=slug.title(),
                slug=slug,
                country=country,
                currency=currency,
                time_zone=time_zone,
            ),
        )
        if approved:
            merchant = merchants.change_merchant_status(session, operator, merchant.id, "approve")
        return merchant

    return db.run_sync(work)


def create_deal(
    db: Database,
    merchant: Merchant,
    *,
    live: bool = True,
    team_size: int = 3,
    stock: int = 100,
    per_user_limit: int = 1,
    list_price: int = 2000,
    group_price: int = 1500,
    title: str = "Dumplings for three",
    vertical: Vertical = Vertical.FOOD,
    new_shoppers_only: bool = False,
    leader_price: int | None = None,
    allow_solo: bool = True,
    voucher: VoucherTerms | None = None,
    starts_at: datetime | None = None,
    flash_sale: bool = False,
    leader_reward: LeaderReward | None = None,
    lottery_winners: int | None = None,
    lottery_coupon: CouponTerms | None = None,
    referral_commission_bps: int = 0,
    ladder: tuple[Tier, ...] | None = None,
    tipping_point: int | None = None,
    ends_at: datetime | None = None,
    auto_fill: AutoFill | None = None,
) -> Deal:
    staff = Principal("usr_system", Role.MERCHANT, "Staff", "en", "UTC", frozenset({merchant.id}))
    now = utc_now()
    draft = deals.DealDraft(
        merchant_id=merchant.id,
        title=title,
        description="",
        vertical=vertical,
        list_price=Money(list_price, merchant.currency),
        group_price=Money(group_price, merchant.currency),
        team_size=team_size,
        stock=stock,
        per_user_limit=per_user_limit,
        starts_at=starts_at or now,
        ends_at=ends_at or now + timedelta(days=7),
        new_shoppers_only=new_shoppers_only,
        leader_price=Money(leader_price, merchant.currency) if leader_price is not None else None,
        allow_solo=allow_solo,
        voucher=voucher,
        flash_sale=flash_sale,
        leader_reward=leader_reward,
        lottery_winners=lottery_winners,
        lottery_coupon=lottery_coupon,
        referral_commission_bps=referral_commission_bps,
        ladder=ladder,
        tipping_point=tipping_point,
        auto_fill=auto_fill,
    )

    def work(session: Any) -> Deal:
        deal = deals.create_deal(session, staff, draft)
        if live:
            deal = deals.change_deal_status(session, staff, deal.id, "publish")
        return deal

    return db.run_sync(work)


def deal_body(merchant_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid ``POST /v1/deals`` body in USD; override any field."""
    now = utc_now()
    body: dict[str, Any] = {
        "merchant_id": merchant_id,
        "title": "Hotpot for four",
        "description": "All you can eat, weekdays.",
        "vertical": "food",
        "list_price": {"amount": 8800, "currency": "USD"},
        "group_price": {"amount": 5900, "currency": "USD"},
        "team_size": 4,
        "stock": 50,
        "per_user_limit": 2,
        "starts_at": now.isoformat().replace("+00:00", "Z"),
        "ends_at": (now + timedelta(days=14)).isoformat().replace("+00:00", "Z"),
    }
    body.update(overrides)
    return body


def create_notification(db: Database, user_id: str, *, kind: str = "team_succeeded") -> str:
    """An unread notification for ``user_id``, as the outbox dispatch writes them; its id."""
    notification_id = new_id("ntf")

    def work(session: Any) -> None:
        session.add(
            Notification(
                id=notification_id,
                user_id=user_id,
                kind=kind,
                data={"subject_id": "team_test"},
                created_at=utc_now(),
            )
        )

    db.run_sync(work)
    return notification_id


@dataclass
class World:
    """Data that belongs to ``shopper`` and to ``staff``'s merchant, and the accounts of
    ``shopper``, ``other_shopper``, ``staff``, ``other_staff`` (another merchant's) and
    ``operator``."""

    accounts: dict[str, Account]
    merchant_id: str
    other_merchant_id: str
    deal_id: str
    team_id: str
    seat_id: str
    payment_id: str
    checkout_ref: str
    share_id: str
    share_code: str
    share_token: str
    pay_link_token: str
    notification_id: str
    token_id: str
    # An app the shopper registered (pending), and its client secret.
    app_id: str = ""
    app_secret_id: str = ""
    # A picture of the deal (its key), uploaded by the staff.
    image_id: str = ""
    address_id: str = ""
    # A voucher of the shopper's seat (as if its team had succeeded), and its code.
    voucher_id: str = ""
    voucher_code: str = ""

    def path_values(self) -> dict[str, str]:
        return {
            "merchant_id": self.merchant_id,
            "deal_id": self.deal_id,
            "team_id": self.team_id,
            "seat_id": self.seat_id,
            "payment_id": self.payment_id,
            "ref": self.checkout_ref,
            "share_id": self.share_id,
            "code": self.share_code,
            "token": self.pay_link_token,
            "share_token": self.share_token,
            "notification_id": self.notification_id,
            "token_id": self.token_id,
            "image_id": self.image_id,
            "name": f"{self.image_id}-thumb.webp",
            "address_id": self.address_id,
            "provider_name": "sandbox",
            "choice": "pay",
            "outcome": "succeed",
            "action": "pause",
            # Whom operators act on: the staff member (removed from staff, disabled, enabled).
            "user_id": self.accounts["staff"].user_id,
            "app_id": self.app_id,
            "secret_id": self.app_secret_id,
            "voucher_id": self.voucher_id,
        }


def app_manifest() -> dict[str, Any]:
    """A valid app manifest (``POST /v1/apps``), with a loopback redirect URI (dev and test)."""
    return {
        "name": "Cinema Partner",
        "homepage": "https://cinema.example.com",
        "redirect_uris": ["http://127.0.0.1:9/callback"],
        "scopes": ["offers:read", "offers:write", "profile"],
    }


def seed_world(client: TestClient, services: Services) -> World:
    """A merchant with a live deal and staff, another merchant with staff, an operator, and a
    shopper who started a team, opened a payment, a share and a pay link, and has a
    notification and an address; every id and secret in the ``World``."""
    mine = create_merchant(services.db)
    theirs = create_merchant(services.db)
    accounts = {
        "shopper": create_account(services),
        "other_shopper": create_account(services),
        "staff": create_account(services, role=Role.MERCHANT, merchant=mine),
        "other_staff": create_account(services, role=Role.MERCHANT, merchant=theirs),
        "operator": create_account(services, role=Role.OPERATOR),
    }
    deal = create_deal(services.db, mine, live=True)
    shopper = accounts["shopper"].headers

    def made(response: Response) -> dict[str, Any]:
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    started = made(client.post(f"/v1/deals/{deal.id}/teams", headers=shopper))
    team_id, seat_id = started["team"]["id"], started["seat"]["id"]
    payment = made(
        client.post(f"/v1/seats/{seat_id}/payments", json={"provider": "sandbox"}, headers=shopper)
    )
    share = made(
        client.post(f"/v1/teams/{team_id}/shares", json={"channel": "wechat"}, headers=shopper)
    )
    pay_link = made(client.post(f"/v1/seats/{seat_id}/pay-links", headers=shopper))
    tokens = client.get("/v1/me/tokens", headers=shopper).json()["data"]
    app = made(client.post("/v1/apps", json=app_manifest(), headers=shopper))
    image = made(
        client.post(
            f"/v1/deals/{deal.id}/images",
            files={"file": ("deal.png", picture("teal", (64, 48), "PNG"), "image/png")},
            headers=accounts["staff"].headers,
        )
    )
    address = made(client.post("/v1/me/addresses", json=US_ADDRESS, headers=shopper))
    voucher_id, voucher_code = _seed_voucher(services.db, accounts["shopper"], mine.id, seat_id)
    return World(
        accounts=accounts,
        merchant_id=mine.id,
        other_merchant_id=theirs.id,
        deal_id=deal.id,
        team_id=team_id,
        seat_id=seat_id,
        payment_id=payment["id"],
        checkout_ref=urlsplit(payment["next_action"]["url"]).path.rsplit("/", 1)[-1],
        share_id=share["id"],
        share_code=share["code"],
        share_token=share["token"],
        pay_link_token=pay_link["token"],
        notification_id=create_notification(services.db, accounts["shopper"].user_id),
        token_id=tokens[0]["id"],
        app_id=app["id"],
        app_secret_id=app["secrets"][0]["id"],
        image_id=image["data"][0]["id"],
        address_id=address["id"],
        voucher_id=voucher_id,
        voucher_code=voucher_code,
    )


def _seed_voucher(
    db: Database, shopper: Account, merchant_id: str, seat_id: str
) -> tuple[str, str]:
    """A voucher row for the shopper's seat, as its team's success would issue (the world's
    team is still forming: only who may see and touch a voucher is tested with it)."""
    voucher_id, code = new_id("vch"), new_code()

    def work(session: Any) -> None:
        seat = session.get(Seat, seat_id)
        now = utc_now()
        session.add(
            Voucher(
                id=voucher_id,
                seat_id=seat_id,
                team_id=seat.team_id,
                deal_id=seat.deal_id,
                merchant_id=merchant_id,
                user_id=shopper.user_id,
                code=code,
                status="issued",
                settle_on="redemption",
                refund_anytime=True,
                locations=[],
                valid_from=now,
                expires_at=now + timedelta(days=30),
                moves=0,
                created_at=now,
                updated_at=now,
            )
        )

    db.run_sync(work)
    return voucher_id, code
