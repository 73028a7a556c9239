"""Deals: one group-buy offer of one merchant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime


class Deal(Base):
    __tablename__ = "deals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    vertical: Mapped[str] = mapped_column(String(16))
    image_urls: Mapped[list[str]] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    list_price_amount: Mapped[int] = mapped_column(BigInteger)
    group_price_amount: Mapped[int] = mapped_column(BigInteger)
    # What the team's leader pays, when the deal rewards starting a team.
    leader_price_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Members other than the leader must have no earlier successful order.
    new_shoppers_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # A shopper may buy alone at the list price: a team of one that succeeds on payment.
    allow_solo: Mapped[bool] = mapped_column(Boolean, default=False)
    team_size: Mapped[int] = mapped_column(Integer)
    team_window_minutes: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)
    # Units held, paid or confirmed; moved only by conditional updates (see DESIGN.md).
    committed: Mapped[int] = mapped_column(Integer, default=0)
    per_user_limit: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16))
    # A copy of "the merchant is suspended", kept on the deal row so that the join's own
    # conditional write refuses it (see merchants/service.py, which keeps it in step).
    merchant_suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # An offer an outside app published (see ``pintuan.partners``): which app, and the app's
    # own id for it, unique per app and merchant so that publishing again updates it.
    app_id: Mapped[str | None] = mapped_column(ForeignKey("apps.id"), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    category: Mapped[str | None] = mapped_column(String(60), nullable=True)
    # Where the service is used (a cinema, a restaurant) and when what is bought is valid (a
    # screening's time, a voucher's dates), as far as the offer says.
    location_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    location_address: Mapped[str | None] = mapped_column(String(500), nullable=True)
    location_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    location_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # A local-services deal's voucher terms (``domain.vouchers.VoucherTerms.as_json``): its
    # successful seats get vouchers to redeem at the counter. None: nothing to redeem.
    voucher: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    # A flash sale (秒杀): it opens at ``starts_at`` (its page counts down to it) and sells one
    # unit to each shopper, through the same conditional writes as every join.
    flash_sale: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # What the leader of each successful team gets back (``domain/rewards.py``): fixed, percent
    # or free, with its amount or basis points. None: no reward.
    leader_reward_kind: Mapped[str | None] = mapped_column(String(8), nullable=True)
    leader_reward_value: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # A lottery deal (``domain/lottery.py``): how many seats of each successful team win; the
    # secret seed drawn when it first goes live, its published commitment, and when the seed
    # was revealed (after the deal ended with no team still forming).
    lottery_winners: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lottery_seed: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lottery_commitment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lottery_revealed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # What each seat a draw did not pick gets besides its full refund (``domain/coupons.py``):
    # a coupon of this amount, valid this many days. Both None: no coupon.
    lottery_coupon_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lottery_coupon_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A pickup deal (``domain/pickups.py``): shoppers collect the goods at a pickup point they
    # choose, whose leader earns ``pickup_commission_bps`` of each seat handed over; orders not
    # collected ``pickup_unclaimed_days`` after arrival are refunded. Both None: not a pickup deal.
    pickup_commission_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pickup_unclaimed_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Referral commissions (``domain/commissions.py``): what a seat's sharer earns of what it
    # paid, in basis points; 0 pays none.
    referral_commission_bps: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0")
    )
    # A ladder deal (``domain/ladder.py``): its tiers beyond the first (``team_size`` at the
    # group price), as ``[[size, price], ...]``; its teams fill up to the last tier's size.
    ladder: Mapped[list[list[int]] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    # A deal with a tipping point (``domain/ladder.py``): it sells only if this many seats of
    # full, paid teams are reached by its end; when they were (None: not yet, or never).
    tipping_point: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tipped_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Honest auto-fill (``domain/autofill.py``): a team whose window ends at most this many paid
    # seats short succeeds with them filled by the merchant's or the platform's budget. Both
    # None: no auto-fill.
    auto_fill_seats: Mapped[int | None] = mapped_column(Integer, nullable=True)
    auto_fill_funded_by: Mapped[str | None] = mapped_column(String(10), nullable=True)

    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'live', 'paused', 'ended', 'moderated')", name="status"
        ),
        CheckConstraint(
            "vertical IN ('goods', 'food', 'movies', 'travel', 'local')", name="vertical"
        ),
        CheckConstraint("group_price_amount > 0", name="group_price_positive"),
        CheckConstraint("group_price_amount < list_price_amount", name="group_below_list"),
        CheckConstraint(
            "leader_price_amount IS NULL OR leader_price_amount BETWEEN 0 AND group_price_amount",
            name="leader_price",
        ),
        CheckConstraint(
            "team_size BETWEEN 2 AND 100 OR (team_size = 1 AND tipping_point IS NOT NULL)",
            name="team_size",
        ),
        CheckConstraint("tipping_point IS NULL OR tipping_point >= 1", name="tipping_point"),
        CheckConstraint("tipped_at IS NULL OR tipping_point IS NOT NULL", name="tipped"),
        CheckConstraint(
            "(auto_fill_seats IS NULL) = (auto_fill_funded_by IS NULL) AND "
            "(auto_fill_seats IS NULL OR (auto_fill_seats BETWEEN 1 AND 2 "
            "AND auto_fill_seats < team_size AND auto_fill_funded_by IN ('merchant', 'platform')))",
            name="auto_fill",
        ),
        CheckConstraint("team_window_minutes BETWEEN 5 AND 10080", name="team_window"),
        CheckConstraint("committed >= 0 AND committed <= stock", name="committed_within_stock"),
        CheckConstraint("per_user_limit >= 1", name="per_user_limit"),
        CheckConstraint("NOT flash_sale OR per_user_limit = 1", name="flash_sale_one_each"),
        CheckConstraint(
            "leader_reward_kind IS NULL OR leader_reward_kind IN ('fixed', 'percent', 'free')",
            name="leader_reward_kind",
        ),
        CheckConstraint(
            "lottery_winners IS NULL OR lottery_winners BETWEEN 1 AND team_size - 1",
            name="lottery_winners",
        ),
        CheckConstraint(
            "(lottery_coupon_amount IS NULL) = (lottery_coupon_days IS NULL) AND "
            "(lottery_coupon_amount IS NULL OR (lottery_winners IS NOT NULL "
            "AND lottery_coupon_amount BETWEEN 1 AND group_price_amount - 1 "
            "AND lottery_coupon_days BETWEEN 1 AND 365))",
            name="lottery_coupon",
        ),
        CheckConstraint(
            "(pickup_commission_bps IS NULL) = (pickup_unclaimed_days IS NULL) AND "
            "(pickup_commission_bps IS NULL OR (pickup_commission_bps BETWEEN 0 AND 3000 "
            "AND pickup_unclaimed_days BETWEEN 1 AND 30))",
            name="pickup_terms",
        ),
        CheckConstraint(
            "referral_commission_bps BETWEEN 0 AND 3000", name="referral_commission_bps"
        ),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("(app_id IS NULL) = (external_id IS NULL)", name="offer_of_app"),
        CheckConstraint(
            "valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from",
            name="valid_until_after_from",
        ),
        UniqueConstraint("app_id", "merchant_id", "external_id"),
        Index("ix_deals_status_id", "status", "id"),
        Index("ix_deals_merchant_id_id", "merchant_id", "id"),
        Index("ix_deals_vertical_status_id", "vertical", "status", "id"),
        # The worker ends deals whose end has passed.
        Index(
            "ix_deals_open_ends_at",
            "ends_at",
            sqlite_where=text("status IN ('live', 'paused')"),
            postgresql_where=text("status IN ('live', 'paused')"),
        ),
    )
