"""Request and response bodies of the deals API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from pintuan.deals.models import Deal
from pintuan.deals.service import (
    DealDraft,
    auto_fill_of,
    ladder_of,
    leader_reward_of,
    lottery_coupon_of,
)
from pintuan.domain.autofill import MAX_FILLED_SEATS, AutoFill, FundedBy
from pintuan.domain.commissions import MAX_REFERRAL_BPS
from pintuan.domain.coupons import MAX_VALID_DAYS as MAX_COUPON_DAYS
from pintuan.domain.coupons import CouponTerms
from pintuan.domain.deals import Vertical
from pintuan.domain.ladder import MAX_TIERS, MAX_TIPPING_POINT, Tier
from pintuan.domain.pickups import MAX_COMMISSION_BPS, MAX_UNCLAIMED_DAYS, PickupTerms
from pintuan.domain.rewards import LeaderReward, RewardKind
from pintuan.domain.vouchers import MAX_LOCATIONS, MAX_VALID_DAYS, SettleOn, VoucherTerms
from pintuan.errors import field_error
from pintuan.kit.schemas import MoneyIn, MoneyOut, StrictModel, UtcInstant

Title = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=10000)]
ImageUrl = Annotated[str, Field(pattern=r"^/media/[0-9a-f]{32}-large\.webp$", max_length=60)]
ImageUrls = Annotated[
    list[ImageUrl],
    Field(
        max_length=12,
        description="Pictures in the order shown, as this site serves them: addresses that "
        "POST /v1/deals/{deal_id}/images returned (upload there; other sites' addresses are "
        "refused, since pages show only their own origin's pictures).",
    ),
]
# Partners' offers and most deals: teams of 2 to 100. A deal with a tipping point may sell in
# teams of one (a plain group purchase): DealTeamSize, checked against its tipping point.
TeamSize = Annotated[int, Field(ge=2, le=100)]
DealTeamSize = Annotated[
    int, Field(ge=1, le=100, description="Seats per team; 1 only with a tipping point")
]
TeamWindow = Annotated[int, Field(ge=5, le=10080)]
Stock = Annotated[int, Field(ge=1, le=10_000_000)]
PerUserLimit = Annotated[int, Field(ge=1, le=1000)]


Location = Annotated[str, Field(min_length=1, max_length=200)]


class VoucherTermsIn(StrictModel):
    """A local-services deal's vouchers: each successful seat gets one to redeem at the counter.
    Give exactly one of ``valid_days`` and ``valid_until``."""

    valid_days: int | None = Field(
        default=None, ge=1, le=MAX_VALID_DAYS, description="Valid for this many days after success"
    )
    valid_until: UtcInstant | None = Field(
        default=None, description="Valid until this instant (after the deal's end)"
    )
    locations: list[Location] = Field(
        default_factory=list,
        max_length=MAX_LOCATIONS,
        description="The shops where it may be redeemed; none: any of the merchant's",
    )
    refund_anytime: bool = Field(
        default=True, description="Shoppers may refund an unused voucher at any time"
    )
    settle_on: SettleOn = Field(
        default=SettleOn.REDEMPTION,
        description="When the merchant is paid: on redemption (the default) or on success",
    )

    def to_terms(self) -> VoucherTerms:
        return VoucherTerms(
            valid_days=self.valid_days,
            valid_until=self.valid_until,
            locations=tuple(" ".join(loc.split()) for loc in self.locations),
            refund_anytime=self.refund_anytime,
            settle_on=self.settle_on,
        )


class VoucherTermsOut(BaseModel):
    valid_days: int | None
    valid_until: datetime | None
    locations: list[str]
    refund_anytime: bool
    settle_on: SettleOn

    @classmethod
    def of(cls, terms: VoucherTerms) -> VoucherTermsOut:
        return cls(
            valid_days=terms.valid_days,
            valid_until=terms.valid_until,
            locations=list(terms.locations),
            refund_anytime=terms.refund_anytime,
            settle_on=terms.settle_on,
        )


class LeaderRewardIn(StrictModel):
    """What the leader of each successful team gets back, funded by the merchant: ``fixed``
    (``amount`` in minor units), ``percent`` (``basis_points`` of what they paid) or ``free``
    (their whole seat). Paid after success as a refund of the leader's seat."""

    kind: RewardKind
    amount: int | None = Field(default=None, ge=1, le=10**12)
    basis_points: int | None = Field(default=None, ge=1, le=10_000)

    def to_reward(self) -> LeaderReward:
        value = self.amount if self.kind is RewardKind.FIXED else self.basis_points
        if self.kind is RewardKind.FIXED and self.basis_points is not None:
            raise field_error("leader_reward.basis_points", "is for a percent reward")
        if self.kind is RewardKind.PERCENT and self.amount is not None:
            raise field_error("leader_reward.amount", "is for a fixed reward")
        if self.kind is RewardKind.FREE and (self.amount or self.basis_points):
            raise field_error("leader_reward", "a free seat takes no amount")
        return LeaderReward(self.kind, value)


class LeaderRewardOut(BaseModel):
    kind: RewardKind
    amount: int | None
    basis_points: int | None

    @classmethod
    def of(cls, reward: LeaderReward) -> LeaderRewardOut:
        return cls(
            kind=reward.kind,
            amount=reward.value if reward.kind is RewardKind.FIXED else None,
            basis_points=reward.value if reward.kind is RewardKind.PERCENT else None,
        )


class LotteryCouponIn(StrictModel):
    """A coupon for each seat the draw did not pick, on top of its full refund: ``amount`` off
    one later seat at this merchant, valid ``valid_days`` days."""

    amount: MoneyIn
    valid_days: int = Field(default=30, ge=1, le=MAX_COUPON_DAYS)

    def to_terms(self) -> CouponTerms:
        return CouponTerms(self.amount.amount, self.valid_days)


class LotteryIn(StrictModel):
    """A lottery team: after success ``winners`` seats are drawn verifiably; the others are
    refunded in full, and get a coupon too when ``coupon`` says so (see
    ``GET /v1/deals/{id}/lottery``)."""

    winners: int = Field(ge=1, le=99, description="Seats drawn per team, fewer than its size")
    coupon: LotteryCouponIn | None = None


class CouponTermsOut(BaseModel):
    amount: MoneyOut
    valid_days: int

    @classmethod
    def of(cls, terms: CouponTerms, currency: str) -> CouponTermsOut:
        return cls(amount=MoneyOut.of(terms.amount, currency), valid_days=terms.valid_days)


class LotteryOut(BaseModel):
    winners: int
    commitment: str | None = Field(description="sha256 of the seed, published at go-live")
    revealed_at: datetime | None
    coupon: CouponTermsOut | None = Field(description="what each seat not drawn gets as well")


class PickupTermsIn(StrictModel):
    """A pickup deal of goods: each shopper collects their order at a pickup point they choose
    (``POST /v1/seats/{seat_id}/pickup``); the point's leader earns ``commission_bps`` of what
    each order handed over paid, from the merchant; orders not collected ``unclaimed_days``
    after their goods arrived are refunded in full."""

    commission_bps: int = Field(ge=0, le=MAX_COMMISSION_BPS, description="The leader's share")
    unclaimed_days: int = Field(ge=1, le=MAX_UNCLAIMED_DAYS)

    def to_terms(self) -> PickupTerms:
        return PickupTerms(self.commission_bps, self.unclaimed_days)


class PickupTermsOut(BaseModel):
    commission_bps: int
    unclaimed_days: int


class LadderTierIn(StrictModel):
    """A ladder's tier beyond the first: a team that reaches ``size`` members pays ``price``
    each (the difference is refunded after success)."""

    size: int = Field(ge=2, le=100)
    price: MoneyIn


class LadderTierOut(BaseModel):
    size: int
    price: MoneyOut


def _tiers(tiers: list[LadderTierIn] | None, field: str) -> tuple[Tier, ...] | None:
    if tiers is None:
        return None
    found = []
    for index, tier in enumerate(tiers):
        money = tier.price.to_money()
        found.append(Tier(tier.size, money.amount))
        if index and money.currency != tiers[0].price.currency:
            raise field_error(f"{field}[{index}].price.currency", "all tiers in one currency")
    return tuple(found)


Ladder = Annotated[
    list[LadderTierIn],
    Field(
        max_length=MAX_TIERS,
        description="A ladder team (阶梯团): tiers beyond the first (team_size at group_price), "
        "larger and cheaper; a team fills up to the last tier, succeeds from the first, and "
        "everyone pays the tier reached",
    ),
]
TippingPoint = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_TIPPING_POINT,
        description="The deal sells only if this many seats of full, paid teams are reached by "
        "its end; until then payments are held (a team size of 1 makes it a plain group "
        "purchase)",
    ),
]


class AutoFillIn(StrictModel):
    """Honest auto-fill: a team whose window ends at most ``seats`` paid seats short succeeds
    with them filled by the merchant's or the platform's budget (``PUT
    /v1/merchants/{id}/fill-budget``, ``PUT /v1/ops/fill-budget``), shown as filled by them,
    never as members; without enough budget it fails as any team."""

    seats: int = Field(ge=1, le=MAX_FILLED_SEATS)
    funded_by: FundedBy

    def to_fill(self) -> AutoFill:
        return AutoFill(self.seats, self.funded_by)


class AutoFillOut(BaseModel):
    seats: int
    funded_by: FundedBy


ReferralBps = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_REFERRAL_BPS,
        description="What the shopper whose share brought a seat earns of what it paid, in "
        "basis points (one level only; frozen until the order can no longer be refunded)",
    ),
]


class DealIn(StrictModel):
    merchant_id: Annotated[str, Field(min_length=1, max_length=40)]
    title: Title
    description: Description = ""
    vertical: Vertical
    image_urls: ImageUrls = []
    list_price: MoneyIn
    group_price: MoneyIn
    leader_price: MoneyIn | None = None
    new_shoppers_only: bool = False
    allow_solo: bool = Field(
        True, description="Shoppers may also buy alone at the list price (a team of one)."
    )
    # Before team_size: a team of one is checked against it (``_one_needs_a_tipping_point``).
    tipping_point: TippingPoint | None = None
    team_size: DealTeamSize
    team_window_minutes: TeamWindow = 1440
    stock: Stock
    per_user_limit: PerUserLimit = 1
    starts_at: UtcInstant
    ends_at: UtcInstant
    voucher: VoucherTermsIn | None = Field(
        default=None, description="Vouchers for the food, movies, travel and local verticals"
    )
    flash_sale: bool = Field(
        default=False,
        description="A flash sale: opens at starts_at (its page counts down), one per shopper "
        "(per_user_limit must be 1)",
    )
    leader_reward: LeaderRewardIn | None = Field(
        default=None, description="Reward the leader of each successful team"
    )
    lottery: LotteryIn | None = None
    pickup: PickupTermsIn | None = Field(
        default=None, description="Collected at pickup points (goods only; no vouchers)"
    )
    referral_commission_bps: ReferralBps = 0
    ladder: Ladder | None = None
    auto_fill: AutoFillIn | None = None

    @field_validator("team_size")
    @classmethod
    def _one_needs_a_tipping_point(cls, size: int, info: ValidationInfo) -> int:
        if size == 1 and info.data.get("tipping_point") is None:
            raise ValueError("a team of one needs a tipping point (at least 2 otherwise)")
        return size

    def to_draft(self) -> DealDraft:
        """The new deal as the service takes it (the API and the console's form both send
        theirs through here)."""
        return DealDraft(
            merchant_id=self.merchant_id,
            title=self.title,
            description=self.description,
            vertical=self.vertical,
            image_urls=list(self.image_urls),
            list_price=self.list_price.to_money(),
            group_price=self.group_price.to_money(),
            leader_price=self.leader_price.to_money() if self.leader_price else None,
            new_shoppers_only=self.new_shoppers_only,
            allow_solo=self.allow_solo,
            team_size=self.team_size,
            team_window_minutes=self.team_window_minutes,
            stock=self.stock,
            per_user_limit=self.per_user_limit,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            voucher=self.voucher.to_terms() if self.voucher else None,
            flash_sale=self.flash_sale,
            leader_reward=self.leader_reward.to_reward() if self.leader_reward else None,
            lottery_winners=self.lottery.winners if self.lottery else None,
            lottery_coupon=self._lottery_coupon_in_currency(),
            pickup=self.pickup.to_terms() if self.pickup else None,
            referral_commission_bps=self.referral_commission_bps,
            ladder=self._ladder_in_currency(),
            tipping_point=self.tipping_point,
            auto_fill=self.auto_fill.to_fill() if self.auto_fill else None,
        )

    def _lottery_coupon_in_currency(self) -> CouponTerms | None:
        coupon = self.lottery.coupon if self.lottery else None
        if coupon is None:
            return None
        if coupon.amount.currency != self.group_price.currency:
            raise field_error(
                "lottery.coupon.amount.currency", "must be the group price's currency"
            )
        return coupon.to_terms()

    def _ladder_in_currency(self) -> tuple[Tier, ...] | None:
        if self.ladder and self.ladder[0].price.currency != self.group_price.currency:
            raise field_error("ladder[0].price.currency", "must be the group price's currency")
        return _tiers(self.ladder, "ladder")


class DealPatch(StrictModel):
    """Only the fields sent change; ``null`` is not a value for any of them."""

    title: Title | None = None
    description: Description | None = None
    vertical: Vertical | None = None
    image_urls: ImageUrls | None = None
    list_price: MoneyIn | None = None
    group_price: MoneyIn | None = None
    leader_price: MoneyIn | None = None
    new_shoppers_only: bool | None = None
    allow_solo: bool | None = None
    team_size: DealTeamSize | None = None
    team_window_minutes: TeamWindow | None = None
    stock: Stock | None = None
    per_user_limit: PerUserLimit | None = None
    starts_at: UtcInstant | None = None
    ends_at: UtcInstant | None = None
    voucher: VoucherTermsIn | None = Field(
        default=None, description="New voucher terms; null issues no vouchers (drafts only)"
    )
    flash_sale: bool | None = None
    leader_reward: LeaderRewardIn | None = Field(
        default=None, description="A new reward for leaders; null: none (drafts only)"
    )
    lottery: LotteryIn | None = Field(default=None, description="null: no lottery (drafts only)")
    pickup: PickupTermsIn | None = Field(
        default=None, description="null: not a pickup deal (drafts only)"
    )
    referral_commission_bps: ReferralBps | None = None
    ladder: Ladder | None = Field(default=None, description="null: no ladder (drafts only)")
    tipping_point: TippingPoint | None = Field(
        default=None, description="null: no tipping point (drafts only)"
    )
    auto_fill: AutoFillIn | None = Field(default=None, description="null: none (drafts only)")

    def to_changes(self) -> dict[str, Any]:
        """The fields sent, in the shapes ``update_deal`` takes (prices as Money, addresses as
        text); refuses a ``null`` (which would otherwise read as "remove"), but for ``voucher``,
        where it means exactly that."""
        changes: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "voucher":
                changes[name] = value.to_terms() if value is not None else None
                continue
            if name == "leader_reward":
                changes[name] = value.to_reward() if value is not None else None
                continue
            if name == "lottery":
                changes["lottery_winners"] = value.winners if value is not None else None
                coupon = value.coupon if value is not None else None
                changes["lottery_coupon"] = coupon.to_terms() if coupon is not None else None
                if coupon is not None:  # checked against the deal's currency by update_deal
                    changes["lottery_coupon_currency"] = coupon.amount.currency
                continue
            if name == "pickup":
                changes[name] = value.to_terms() if value is not None else None
                continue
            if name == "ladder":
                changes[name] = _tiers(value, "ladder")
                if value:  # checked against the deal's currency by update_deal
                    changes["ladder_currency"] = value[0].price.currency
                continue
            if name == "tipping_point":
                changes[name] = value
                continue
            if name == "auto_fill":
                changes[name] = value.to_fill() if value is not None else None
                continue
            if value is None:
                raise field_error(name, "cannot be null; leave the field out to keep it")
            if name in ("list_price", "group_price", "leader_price"):
                value = value.to_money()
            elif name == "image_urls":
                value = list(value)
            changes[name] = value
        return changes


class DealOut(BaseModel):
    id: str
    merchant_id: str
    title: str
    description: str
    vertical: str
    image_urls: list[str]
    list_price: MoneyOut
    group_price: MoneyOut
    leader_price: MoneyOut | None
    new_shoppers_only: bool
    allow_solo: bool
    team_size: int
    team_window_minutes: int
    stock: int
    committed: int
    per_user_limit: int
    starts_at: datetime
    ends_at: datetime
    status: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    voucher: VoucherTermsOut | None
    flash_sale: bool
    leader_reward: LeaderRewardOut | None
    lottery: LotteryOut | None
    pickup: PickupTermsOut | None
    referral_commission_bps: int
    ladder: list[LadderTierOut] | None
    tipping_point: int | None
    tipped_at: datetime | None
    auto_fill: AutoFillOut | None

    @classmethod
    def of(cls, deal: Deal) -> DealOut:
        return cls(
            id=deal.id,
            merchant_id=deal.merchant_id,
            title=deal.title,
            description=deal.description,
            vertical=deal.vertical,
            image_urls=deal.image_urls,
            list_price=MoneyOut.of(deal.list_price_amount, deal.currency),
            group_price=MoneyOut.of(deal.group_price_amount, deal.currency),
            leader_price=MoneyOut.of(deal.leader_price_amount, deal.currency)
            if deal.leader_price_amount is not None
            else None,
            new_shoppers_only=deal.new_shoppers_only,
            allow_solo=deal.allow_solo,
            team_size=deal.team_size,
            team_window_minutes=deal.team_window_minutes,
            stock=deal.stock,
            committed=deal.committed,
            per_user_limit=deal.per_user_limit,
            starts_at=deal.starts_at,
            ends_at=deal.ends_at,
            status=deal.status,
            created_at=deal.created_at,
            updated_at=deal.updated_at,
            published_at=deal.published_at,
            voucher=VoucherTermsOut.of(VoucherTerms.from_json(deal.voucher))
            if deal.voucher
            else None,
            flash_sale=deal.flash_sale,
            pickup=PickupTermsOut(
                commission_bps=deal.pickup_commission_bps,
                unclaimed_days=deal.pickup_unclaimed_days,
            )
            if deal.pickup_commission_bps is not None and deal.pickup_unclaimed_days is not None
            else None,
            lottery=LotteryOut(
                winners=deal.lottery_winners,
                commitment=deal.lottery_commitment,
                revealed_at=deal.lottery_revealed_at,
                coupon=CouponTermsOut.of(coupon, deal.currency)
                if (coupon := lottery_coupon_of(deal))
                else None,
            )
            if deal.lottery_winners is not None
            else None,
            leader_reward=LeaderRewardOut.of(reward)
            if (reward := leader_reward_of(deal))
            else None,
            referral_commission_bps=deal.referral_commission_bps,
            ladder=[
                LadderTierOut(size=t.size, price=MoneyOut.of(t.price, deal.currency)) for t in tiers
            ]
            if (tiers := ladder_of(deal)) is not None
            else None,
            tipping_point=deal.tipping_point,
            tipped_at=deal.tipped_at,
            auto_fill=AutoFillOut(seats=fill.seats, funded_by=fill.funded_by)
            if (fill := auto_fill_of(deal))
            else None,
        )
