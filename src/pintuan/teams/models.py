"""Teams, their seats, and each shopper's count of seats per deal."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.kit.orm import Base, UtcDateTime

LIVE_SEAT_STATUSES = ("held", "paid", "confirmed")
_LIVE = "status IN ('held', 'paid', 'confirmed')"


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"))
    leader_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16))
    team_size: Mapped[int] = mapped_column(Integer)
    # Live seats (held + paid + confirmed) and paid ones; moved only by conditional updates.
    taken: Mapped[int] = mapped_column(Integer)
    paid: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # A solo purchase (buying alone at the list price): a team of one that nobody else may join
    # and no list shows as forming.
    solo: Mapped[bool] = mapped_column(Boolean, default=False)
    # While a worker holds this team to fail it (``kit.claims``); another takes it after.
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # A succeeded team of a deal that rewards its leader, until the worker paid the reward
    # (``payments/rewards.py``).
    leader_reward_due: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # A succeeded lottery team whose losers the worker has not refunded in full yet
    # (``payments/lottery.py``).
    lottery_refunds_due: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # A ladder deal's team (``domain/ladder.py``): ``team_size`` is its top tier, and it succeeds
    # at its window's end with at least ``min_size`` paid seats (the first tier); None: a team
    # that needs every seat. At success, the price of the tier reached, and whether its members
    # are owed the difference to what they paid (``payments/ladder.py``).
    min_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ladder_price: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ladder_refunds_due: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # Seats an auto-fill paid for when the window ended (``domain/autofill.py``), and whose
    # budget: "merchant" or "platform". 0 and None: none.
    filled_seats: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    filled_by: Mapped[str | None] = mapped_column(String(10), nullable=True)

    __table_args__ = (
        CheckConstraint("status IN ('forming', 'succeeded', 'failed')", name="status"),
        CheckConstraint("taken >= 0 AND taken <= team_size", name="taken_within_size"),
        CheckConstraint("paid >= 0 AND paid <= taken", name="paid_within_taken"),
        CheckConstraint("min_size IS NULL OR min_size BETWEEN 1 AND team_size", name="min_size"),
        CheckConstraint(
            "filled_seats BETWEEN 0 AND 2 AND (filled_seats = 0) = (filled_by IS NULL)",
            name="filled_seats",
        ),
        # The sweep finds windows that have closed; the deal page finds teams to join.
        Index(
            "ix_teams_forming_expires_at",
            "expires_at",
            sqlite_where=text("status = 'forming'"),
            postgresql_where=text("status = 'forming'"),
        ),
        # The worker's sweep finds the leaders it owes a reward.
        Index(
            "ix_teams_leader_reward_due",
            "id",
            sqlite_where=text("leader_reward_due"),
            postgresql_where=text("leader_reward_due"),
        ),
        Index(
            "ix_teams_lottery_refunds_due",
            "id",
            sqlite_where=text("lottery_refunds_due"),
            postgresql_where=text("lottery_refunds_due"),
        ),
        Index(
            "ix_teams_ladder_refunds_due",
            "id",
            sqlite_where=text("ladder_refunds_due"),
            postgresql_where=text("ladder_refunds_due"),
        ),
        # Not on `taken`: every join moves it, and an index on it would be rewritten each time.
        Index("ix_teams_deal_id_status", "deal_id", "status"),
    )


class Seat(Base):
    __tablename__ = "seats"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16))
    is_leader: Mapped[bool] = mapped_column(Boolean)
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # Set while the seat is held: when it is released unless paid.
    hold_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # While a worker holds this seat to release it (``kit.claims``); another takes it after.
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # A confirmed seat whose money never came, that its shopper is asked to pay again: until
    # when they may (payments/endings.py, ``charge_again``).
    repay_by: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # A lottery team's draw (``domain/lottery.py``): True won, False refunded; None: no lottery.
    lottery_won: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # The coupon that took money off this seat's price (``domain/coupons.py``); None: none.
    coupon_id: Mapped[str | None] = mapped_column(String(40), nullable=True)

    __table_args__ = (
        CheckConstraint(
            "status IN ('held', 'paid', 'confirmed', 'released', 'refunded')", name="status"
        ),
        # One live seat per shopper per team; a released seat does not block joining again.
        Index(
            "uq_seats_team_id_user_id_live",
            "team_id",
            "user_id",
            unique=True,
            sqlite_where=text(_LIVE),
            postgresql_where=text(_LIVE),
        ),
        Index(
            "ix_seats_held_hold_expires_at",
            "hold_expires_at",
            sqlite_where=text("status = 'held'"),
            postgresql_where=text("status = 'held'"),
        ),
        Index(
            "ix_seats_repay_by",
            "repay_by",
            sqlite_where=text("repay_by IS NOT NULL"),
            postgresql_where=text("repay_by IS NOT NULL"),
        ),
        Index("ix_seats_team_id", "team_id"),
        Index("ix_seats_user_id_id", "user_id", "id"),
        # A coupon is on one live seat at most.
        Index(
            "uq_seats_coupon_id_live",
            "coupon_id",
            unique=True,
            sqlite_where=text(f"coupon_id IS NOT NULL AND {_LIVE}"),
            postgresql_where=text(f"coupon_id IS NOT NULL AND {_LIVE}"),
        ),
    )


class DealShopperCount(Base):
    """Live seats one shopper holds on one deal, for the per-user limit."""

    __tablename__ = "deal_shopper_counts"

    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("count >= 0", name="count_not_negative"),)
