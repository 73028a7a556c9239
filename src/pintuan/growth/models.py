"""Daily roll-ups of growth figures, written by the worker once per past day."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pintuan.domain.traffic import CHANNEL_LENGTH
from pintuan.kit.orm import Base, UtcDateTime


class GrowthDaily(Base):
    """Counts of one UTC day for one deal, channel, country and cohort week.

    Share metrics (shares … successes) are keyed by the share's channel, the visitor's country
    (the sharer's for ``shares``) and the week the share was made. Orders from any source
    (``buyers``) and team outcomes have no channel or country (both ``""``); their cohort week
    is the week of the payment, respectively of the team's start.
    """

    __tablename__ = "growth_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    deal_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(CHANNEL_LENGTH), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    cohort_week: Mapped[date] = mapped_column(Date, primary_key=True)
    shares: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    starts: Mapped[int] = mapped_column(Integer, default=0)
    joins: Mapped[int] = mapped_column(Integer, default=0)
    paid: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[int] = mapped_column(Integer, default=0)
    buyers: Mapped[int] = mapped_column(Integer, default=0)
    teams_succeeded: Mapped[int] = mapped_column(Integer, default=0)
    teams_failed: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_growth_daily_deal_id_cohort_week", "deal_id", "cohort_week"),)


class GrowthSample(Base):
    """One duration behind a median: a viral cycle (``cycle``) or a team's time to fill
    (``fill``), in whole seconds (rounded). Medians do not add up across days, so the samples
    are kept."""

    __tablename__ = "growth_samples"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(8))
    deal_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(CHANNEL_LENGTH))
    country: Mapped[str] = mapped_column(String(2))
    cohort_week: Mapped[date] = mapped_column(Date)
    seconds: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("kind IN ('cycle', 'fill')", name="kind"),
        CheckConstraint("seconds >= 0", name="seconds_not_negative"),
        Index("ix_growth_samples_day", "day"),
        Index("ix_growth_samples_deal_id_cohort_week", "deal_id", "cohort_week"),
    )


class GrowthRollup(Base):
    """A day that has been rolled up, and when."""

    __tablename__ = "growth_rollups"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    rolled_at: Mapped[datetime] = mapped_column(UtcDateTime())
