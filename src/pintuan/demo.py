"""A demo catalogue: an operator, merchants in three markets, live deals in every vertical,
each with two pictures drawn here with Pillow (no image files are shipped or downloaded).

Running it again changes nothing that is already there, so ``make run`` can call it every time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta

from PIL import Image, ImageColor, ImageDraw, ImageFont
from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.accounts import service as accounts
from pintuan.accounts.models import User
from pintuan.bargains import service as bargains
from pintuan.deals import images as deal_images
from pintuan.deals import service as deals
from pintuan.deals.models import Deal
from pintuan.domain.autofill import AutoFill, FundedBy
from pintuan.domain.bargains import BargainTerms
from pintuan.domain.coupons import CouponTerms
from pintuan.domain.deals import Vertical
from pintuan.domain.ladder import Tier
from pintuan.domain.lifecycle import MerchantStatus
from pintuan.domain.media import MediaStore
from pintuan.domain.pickups import PickupTerms, PointApplication
from pintuan.domain.roles import Principal, Role
from pintuan.domain.vouchers import SettleOn, VoucherTerms
from pintuan.fills import service as fills
from pintuan.fulfilment import service as fulfilment
from pintuan.kit.money import Money
from pintuan.kit.rawsql import raw_tx
from pintuan.kit.time import utc_now
from pintuan.media.service import store_image
from pintuan.merchants import service as merchants
from pintuan.pickups import service as pickups

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
    # Collected at a pickup point instead of shipped (domain/pickups.py).
    pickup: PickupTerms | None = None
    # The group-buy mechanics (domain/ladder.py, domain/autofill.py, domain/bargains.py).
    ladder: tuple[Tier, ...] | None = None
    tipping_point: int | None = None
    auto_fill: AutoFill | None = None
    bargain: BargainTerms | None = None
    # A lottery (domain/lottery.py): winners per team, and the coupon the others get too.
    lottery_winners: int | None = None
    lottery_coupon: CouponTerms | None = None


DEMO_VOUCHER = VoucherTerms(
    valid_days=90,
    valid_until=None,
    locations=(),
    refund_anytime=True,
    settle_on=SettleOn.REDEMPTION,
)

DEMO_PICKUP = PickupTerms(commission_bps=800, unclaimed_days=3)
# A shopper who leads a pickup point, approved, where pickup deals' goods are collected.
DEMO_POINT = PointApplication(
    name="Jing'an Garden lobby",
    address="88 Yanping Road, Jing'an, Shanghai",
    opening_hours="Daily 08:00-21:00",
    capacity_per_day=60,
)
DEMO_LEADER = "amy@example.com"

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
        DemoDeal(
            "Fresh lychees, 2 kg (pickup)",
            Vertical.GOODS,
            9800,
            5900,
            3,
            200,
            "Picked this morning; collect them at a pickup point near you.",
            pickup=DEMO_PICKUP,
        ),
        DemoDeal(
            "Peking duck banquet (ladder)",
            Vertical.FOOD,
            58800,
            39800,
            2,
            200,
            "A whole roast duck carved at the table. The bigger the team, the lower the price.",
            ladder=(Tier(4, 34800), Tier(6, 29800)),
        ),
        DemoDeal(
            "Tea tasting for the neighbourhood (tips at 10)",
            Vertical.LOCAL,
            16800,
            9800,
            1,
            100,
            "Six teas of Yunnan with our tea master. Sells only if 10 are paid by the end; "
            "until then your payment is only held.",
            tipping_point=10,
        ),
        DemoDeal(
            "Hotpot for three (we fill a missing seat)",
            Vertical.FOOD,
            29800,
            19800,
            3,
            200,
            "Spicy and mild broths, beef, lamb and vegetables. If your team ends one seat "
            "short, we pay for it and you still get the group price.",
            auto_fill=AutoFill(1, FundedBy.MERCHANT),
        ),
        DemoDeal(
            "Silk scarf (bargain it down)",
            Vertical.GOODS,
            39900,
            29900,
            2,
            100,
            "Hand-rolled edges, Suzhou silk. Ask friends to cut its price before you buy.",
            bargain=BargainTerms(floor_amount=19900, helpers=5, hours=48),
        ),
        DemoDeal(
            "Mooncake gift box (lottery: 1 of 3 wins)",
            Vertical.GOODS,
            26800,
            9900,
            3,
            100,
            "Lotus paste and salted egg yolk. One member of each full team wins the box; the "
            "others get their money back in full and a 20.00 coupon for our shop.",
            lottery_winners=1,
            lottery_coupon=CouponTerms(2000, 30),
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


# Two colours per vertical, for a sky or a table and what stands on it.
PALETTES: dict[Vertical, tuple[str, str, str]] = {
    Vertical.FOOD: ("#f6d7a7", "#c8102e", "#fff8ec"),
    Vertical.MOVIES: ("#1d1f3a", "#f2c14e", "#e94f37"),
    Vertical.TRAVEL: ("#8fd3f4", "#1b6ca8", "#f9e79f"),
    Vertical.GOODS: ("#f3e6f5", "#6a3d9a", "#e8a33d"),
    Vertical.LOCAL: ("#e3f1e6", "#17683a", "#a85a00"),
}


def demo_picture(title: str, vertical: Vertical, variant: int) -> bytes:
    """A 1200 by 900 picture of a deal: a scene for its vertical and its title, as a PNG."""
    ground, main, accent = PALETTES[vertical]
    if variant:
        ground, accent = accent, ground
    image = Image.new("RGB", (1200, 900), ground)
    draw = ImageDraw.Draw(image)
    top, bottom = ImageColor.getrgb(ground), ImageColor.getrgb(main)
    for band in range(0, 900, 6):  # a soft vertical gradient towards the main colour
        mix = band / 2700
        colour = tuple(int(a * (1 - mix) + b * mix) for a, b in zip(top, bottom, strict=False))
        draw.rectangle((0, band, 1200, band + 6), fill=colour)
    if vertical == Vertical.FOOD:
        draw.ellipse((300, 260, 900, 860), fill="#ffffff", outline=main, width=18)
        for n in range(6):
            x, y = 420 + (n % 3) * 130, 430 + (n // 3) * 150
            draw.ellipse((x, y, x + 110, y + 100), fill=accent, outline=main, width=6)
    elif vertical == Vertical.MOVIES:
        draw.rectangle((120, 300, 1080, 700), fill="#111111")
        for x in range(150, 1060, 80):
            draw.rectangle((x, 320, x + 40, 350), fill=accent)
            draw.rectangle((x, 650, x + 40, 680), fill=accent)
        for n in range(4):
            draw.rectangle((170 + n * 230, 380, 370 + n * 230, 620), fill=main if n % 2 else accent)
    elif vertical == Vertical.TRAVEL:
        draw.ellipse((820, 90, 1020, 290), fill="#f9d71c")
        draw.polygon([(0, 620), (300, 380), (560, 620)], fill="#2e7d32")
        for y in range(620, 900, 60):
            draw.rectangle((0, y, 1200, y + 30), fill=main)
    elif vertical == Vertical.GOODS:
        draw.rectangle((330, 380, 870, 820), fill=main)
        draw.rectangle((300, 300, 900, 400), fill=main, outline=accent, width=10)
        draw.rectangle((570, 300, 630, 820), fill=accent)
    else:
        draw.polygon([(300, 500), (600, 260), (900, 500)], fill=accent)
        draw.rectangle((360, 500, 840, 820), fill=main)
        draw.rectangle((540, 640, 660, 820), fill=ground)
    # The title in a band at the foot, inside the centre square the thumbnail keeps.
    font = ImageFont.load_default(size=48)
    left, _, right, _ = draw.textbbox((0, 0), title, font=font)
    width = min(right - left, 820)
    draw.rounded_rectangle((560 - width // 2, 770, 640 + width // 2, 860), 20, fill=main)
    draw.text((600, 815), title, fill="#ffffff", font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@dataclass
class DemoReport:
    created: list[str]
    logins: list[tuple[str, str, str]]


def seed_demo(session: Session, password_hash: str, store: MediaStore | None = None) -> DemoReport:
    """Create what the demo needs and is not there yet; report what was created. With a media
    store, deals without pictures get two drawn ones."""
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
                    # Local services sell vouchers to redeem at the counter; goods ship.
                    voucher=None if item.vertical is Vertical.GOODS else DEMO_VOUCHER,
                    pickup=item.pickup,
                    ladder=item.ladder,
                    tipping_point=item.tipping_point,
                    auto_fill=item.auto_fill,
                    lottery_winners=item.lottery_winners,
                    lottery_coupon=item.lottery_coupon,
                    allow_solo=item.tipping_point is None,
                ),
            )
            deals.change_deal_status(session, staff[slug], deal.id, "publish")
            if item.bargain is not None:
                bargains.set_terms(
                    session, staff[slug], deal.id, item.bargain, merchant.currency, now
                )
            if item.auto_fill is not None:
                fills.set_limit(
                    session,
                    staff[slug],
                    merchant.id,
                    Money(10 * item.group_price, merchant.currency),
                )
            created.append(f"deal {item.title!r}")
        if store is None:
            continue
        for item in specs:
            deal = session.scalars(
                select(Deal).where(Deal.merchant_id == merchant.id, Deal.title == item.title)
            ).one()
            if deal.image_urls:
                continue
            for variant in (0, 1):
                picture = demo_picture(item.title, item.vertical, variant)
                ref = store_image(store, picture, max_bytes=len(picture), max_pixels=10**7)
                deal_images.add_deal_image(session, staff[slug], deal.id, ref)
            created.append(f"pictures of {item.title!r}")

    leader = users[DEMO_LEADER]
    tx = raw_tx(session)
    if not pickups.points_of_leader(tx, leader.id, None, 1):
        point = pickups.apply_for_point(tx, leader.id, DEMO_POINT, now)
        pickups.decide(tx, operator, point.id, True, "demo", now)
        created.append(f"pickup point {DEMO_POINT.name!r}")

    for email, typed in ADDRESSES.items():
        user = users[email]
        if not fulfilment.list_addresses(session, user.id):
            fulfilment.add_address(session, user.id, typed, now)
            created.append(f"address of {email}")

    logins = [(spec.email, DEMO_PASSWORD, spec.role.value) for spec in USERS]
    return DemoReport(created=created, logins=logins)
