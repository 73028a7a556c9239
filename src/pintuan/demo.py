"""A demo catalogue: an operator, merchants in three markets, live deals in every vertical.

Running it again changes nothing that is already there, so ``make run`` can call it every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.accounts import service as accounts
from pintuan.accounts.models import User
from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.domain.deals import Vertical
from pintuan.domain.lifecycle import MerchantStatus
from pintuan.domain.roles import Principal, Role
from pintuan.fulfilment import service as fulfilment
from pintuan.kit.money import Money
from pintuan.kit.time import utc_now
from pintuan.merchants import service as merchants

DEMO_PASSWORD = "pintuan-demo"  # noqa: S105 - printed for the demo, refused outside dev


@dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    role: Role
    locale: str
    time_zone: str
    merchant_slug: str | None = None


# Each demo shopper's address, in the country of the shop selling goods near them.
ADDRESSES: dict[str, dict[str, str]] = {
    "amy@example.com": {
        "recipient": "林艾米",
        "phone": "+86 138 0013 8000",
        "country": "CN",
        "region": "上海市",
        "city": "上海市",
        "district": "静安区",
        "line1": "南京西路 1266 号 12 楼",
        "postcode": "200040",
    },
    "budi@example.com": {
        "recipient": "Budi Santoso",
        "phone": "+62 812 3456 7890",
        "country": "ID",
        "region": "DKI Jakarta",
        "city": "Jakarta Pusat",
        "line1": "Jl. M.H. Thamrin No. 1",
        "postcode": "10310",
    },
    "lena@example.com": {
        "recipient": "Lena Vogel",
        "phone": "+49 30 1234567",
        "country": "DE",
        "city": "Berlin",
        "line1": "Unter den Linden 77",
        "postcode": "10117",
    },
}


@dataclass(frozen=True)
class DemoDeal:
    title: str
    vertical: Vertical
    list_price: int
    group_price: int
    team_size: int
    stock: int
    description: str


MERCHANTS = [
    ("jade-garden", "Jade Garden Kitchen", "CN", "CNY", "Asia/Shanghai"),
    ("nusantara-trips", "Nusantara Trips", "ID", "IDR", "Asia/Jakarta"),
    ("kiez-kino", "Kiez Kino & Kram", "DE", "EUR", "Europe/Berlin"),
]

USERS = [
    DemoUser("operator@example.com", "Olivia Operator", Role.OPERATOR, "en", "UTC"),
    DemoUser(
        "chen@example.com", "陈店长", Role.MERCHANT, "zh-Hans", "Asia/Shanghai", "jade-garden"
    ),
    DemoUser(
        "sari@example.com", "Sari Wijaya", Role.MERCHANT, "en", "Asia/Jakarta", "nusantara-trips"
    ),
    DemoUser(
        "jonas@example.com", "Jonas Becker", Role.MERCHANT, "en", "Europe/Berlin", "kiez-kino"
    ),
    DemoUser("amy@example.com", "Amy Lin", Role.SHOPPER, "zh-Hans", "Asia/Shanghai"),
    DemoUser("budi@example.com", "Budi Santoso", Role.SHOPPER, "en", "Asia/Jakarta"),
    DemoUser("lena@example.com", "Lena Vogel", Role.SHOPPER, "en", "Europe/Berlin"),
]

DEALS: dict[str, list[DemoDeal]] = {
    "jade-garden": [
        DemoDeal(
            "Xiaolongbao feast for two",
            Vertical.FOOD,
            16800,
            9900,
            3,
            200,
            "Two baskets of soup dumplings, scallion noodles and jasmine tea.",
        ),
        DemoDeal(
            "Hand-pulled noodle lunch set",
            Vertical.FOOD,
            5800,
            3900,
            2,
            500,
            "Beef noodle soup, a cold side and a drink, weekdays 11:00-14:00.",
        ),
        DemoDeal(
            "Dim sum cooking class",
            Vertical.LOCAL,
            39900,
            26900,
            5,
            60,
            "Two hours with our chef: fold, steam and eat your own har gow.",
        ),
        DemoDeal(
            "Mooncake gift box",
            Vertical.GOODS,
            26800,
            16800,
            4,
            300,
            "Eight lotus-seed and red-bean mooncakes in a lacquered box.",
        ),
    ],
    "nusantara-trips": [
        DemoDeal(
            "Thousand Islands day trip",
            Vertical.TRAVEL,
            1_250_000_00,
            899_000_00,
            4,
            80,
            "Speedboat from Marina Ancol, snorkelling gear and lunch on Pulau Pari.",
        ),
        DemoDeal(
            "Bogor Botanical Garden tour",
            Vertical.TRAVEL,
            450_000_00,
            299_000_00,
            3,
            120,
            "Guided morning walk, entrance and a Sundanese lunch.",
        ),
        DemoDeal(
            "Batik workshop",
            Vertical.LOCAL,
            350_000_00,
            225_000_00,
            5,
            50,
            "Draw and dye your own batik cloth in a Kemang studio.",
        ),
        DemoDeal(
            "Nasi padang catering box",
            Vertical.FOOD,
            85_000_00,
            59_000_00,
            2,
            400,
            "Rendang, gulai and sambal hijau for an office lunch.",
        ),
    ],
    "kiez-kino": [
        DemoDeal(
            "Cinema night: two tickets",
            Vertical.MOVIES,
            2400,
            1590,
            2,
            300,
            "Any evening screening, two seats, popcorn to share.",
        ),
        DemoDeal(
            "Open-air film festival pass",
            Vertical.MOVIES,
            6500,
            4500,
            5,
            150,
            "Five summer screenings in the courtyard.",
        ),
        DemoDeal(
            "Kreuzberg street food walk",
            Vertical.FOOD,
            4900,
            3400,
            4,
            100,
            "Three hours, seven tastings, one local guide.",
        ),
        DemoDeal(
            "Film poster print set",
            Vertical.GOODS,
            3900,
            2600,
            3,
            250,
            "Three A2 risograph prints of Berlin cinema classics.",
        ),
        DemoDeal(
            "Spreewald canoe day",
            Vertical.TRAVEL,
            8900,
            6400,
            3,
            60,
            "Train from Berlin, canoe hire and a map of the canals.",
        ),
    ],
}


@dataclass
class DemoReport:
    created: list[str]
    logins: list[tuple[str, str, str]]


def seed_demo(session: Session, password_hash: str) -> DemoReport:
    """Create what the demo needs and is not there yet; report what was created."""
    created: list[str] = []
    users: dict[str, User] = {}
    for spec in USERS:
        user = accounts.find_user_by_email(session, spec.email)
        if user is None:
            user = accounts.create_user(
                session,
                email=spec.email,
                password_hash=password_hash,
                display_name=spec.name,
                role=spec.role,
                locale=spec.locale,
                time_zone=spec.time_zone,
            )
            created.append(f"user {spec.email}")
        users[spec.email] = user
    operator = accounts.principal_for_user(session, users[USERS[0].email].id)
    assert operator is not None

    for slug, name, country, currency, time_zone in MERCHANTS:
        merchant = merchants.find_merchant_by_slug(session, slug)
        if merchant is None:
            merchant = merchants.create_merchant(
                session,
                operator,
                merchants.NewMerchant(
                    name=name,
                    slug=slug,
                    country=country,
                    currency=currency,
                    time_zone=time_zone,
                    commission_bps=500,
                ),
            )
            created.append(f"merchant {slug}")
        if merchant.status != MerchantStatus.APPROVED:
            merchants.change_merchant_status(session, operator, merchant.id, "approve")

    staff: dict[str, Principal] = {}
    for spec in USERS:
        if spec.merchant_slug:
            merchant = merchants.find_merchant_by_slug(session, spec.merchant_slug)
            assert merchant is not None
            merchants.attach_staff(session, merchant.id, users[spec.email])
            principal = accounts.principal_for_user(session, users[spec.email].id)
            assert principal is not None
            staff[spec.merchant_slug] = principal

    now = utc_now()
    for slug, specs in DEALS.items():
        merchant = merchants.find_merchant_by_slug(session, slug)
        assert merchant is not None
        existing = set(session.scalars(select(Deal.title).where(Deal.merchant_id == merchant.id)))
        for item in specs:
            if item.title in existing:
                continue
            deal = deals.create_deal(
                session,
                staff[slug],
                deals.DealDraft(
                    merchant_id=merchant.id,
                    title=item.title,
                    description=item.description,
                    vertical=item.vertical,
                    list_price=Money(item.list_price, merchant.currency),
                    group_price=Money(item.group_price, merchant.currency),
                    team_size=item.team_size,
                    stock=item.stock,
                    per_user_limit=2,
                    starts_at=now,
                    ends_at=now + timedelta(days=60),
                ),
            )
            deals.change_deal_status(session, staff[slug], deal.id, "publish")
            created.append(f"deal {item.title!r}")

    for email, typed in ADDRESSES.items():
        user = users[email]
        if not fulfilment.list_addresses(session, user.id):
            fulfilment.add_address(session, user.id, typed, now)
            created.append(f"address of {email}")

    logins = [(spec.email, DEMO_PASSWORD, spec.role.value) for spec in USERS]
    return DemoReport(created=created, logins=logins)
