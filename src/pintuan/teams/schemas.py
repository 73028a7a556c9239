"""Response bodies of the teams API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pintuan.domain.ladder import LadderProgress, Tier
from pintuan.domain.teams import TeamStatus
from pintuan.kit.schemas import MoneyOut
from pintuan.teams.models import Seat
from pintuan.teams.reads import Member, MySeat, TeamView
from pintuan.teams.service import SeatView, TeamStart


class SeatOut(BaseModel):
    id: str
    team_id: str
    deal_id: str
    status: str
    is_leader: bool
    price: MoneyOut
    hold_expires_at: datetime | None
    created_at: datetime
    coupon_id: str | None = Field(
        default=None, description="The coupon taken off its price (POST /v1/seats/{id}/coupon)"
    )

    @classmethod
    def of(cls, seat: SeatView | Seat) -> SeatOut:
        return cls(
            id=seat.id,
            team_id=seat.team_id,
            deal_id=seat.deal_id,
            status=seat.status,
            is_leader=seat.is_leader,
            price=MoneyOut.of(seat.price_amount, seat.currency),
            hold_expires_at=seat.hold_expires_at,
            created_at=seat.created_at,
            coupon_id=seat.coupon_id,
        )


class MemberOut(BaseModel):
    display_name: str
    is_leader: bool
    paid: bool
    joined_at: datetime
    pay_by: datetime | None = Field(
        description="Until when an unpaid member's seat is held for their payment"
    )

    @classmethod
    def of(cls, member: Member) -> MemberOut:
        return cls(
            display_name=member.display_name,
            is_leader=member.is_leader,
            paid=member.paid,
            joined_at=member.joined_at,
            pay_by=member.pay_by,
        )


class TierOut(BaseModel):
    size: int
    price: MoneyOut

    @classmethod
    def of(cls, tier: Tier, currency: str) -> TierOut:
        return cls(size=tier.size, price=MoneyOut.of(tier.price, currency))


class LadderOut(BaseModel):
    """A ladder team's progress: every tier (the first is the deal's team size and group
    price), the one its paid seats reached, and the next with how many more members it needs."""

    tiers: list[TierOut]
    reached: TierOut | None = Field(description="The tier secured by paid seats")
    next: TierOut | None = Field(description="The next tier while the team forms")
    more_needed: int = Field(description="Members still needed for the next tier")
    secured: bool = Field(description="The first tier is paid: the team can no longer fail")

    @classmethod
    def of(cls, ladder: LadderProgress, currency: str) -> LadderOut:
        return cls(
            tiers=[TierOut.of(t, currency) for t in ladder.tiers],
            reached=TierOut.of(ladder.reached, currency) if ladder.reached else None,
            next=TierOut.of(ladder.next, currency) if ladder.next else None,
            more_needed=ladder.more_needed,
            secured=ladder.secured,
        )


class TeamOut(BaseModel):
    id: str
    deal_id: str
    status: str
    solo: bool = Field(description="A solo purchase: a team of one that nobody else may join")
    team_size: int
    seats_taken: int
    seats_paid: int
    seats_left: int
    expires_at: datetime
    created_at: datetime
    ended_at: datetime | None
    leader: MemberOut | None = Field(
        description="Who leads the team now: when a leader leaves, the next member by join order"
    )
    members: list[MemberOut]
    ladder: LadderOut | None = Field(default=None, description="A ladder team's tiers")
    filled_seats: int = Field(
        default=0, description="Seats a budget paid for when the window ended (not members)"
    )
    filled_by: str | None = Field(default=None, description="merchant or platform")

    @classmethod
    def of(cls, team: TeamView) -> TeamOut:
        return cls(
            id=team.id,
            deal_id=team.deal_id,
            status=team.status,
            solo=team.solo,
            team_size=team.team_size,
            seats_taken=team.taken,
            seats_paid=team.paid,
            seats_left=team.team_size - team.taken,
            expires_at=team.expires_at,
            created_at=team.created_at,
            ended_at=team.ended_at,
            leader=MemberOut.of(team.leader) if team.leader else None,
            members=[MemberOut.of(m) for m in team.members],
            ladder=LadderOut.of(team.ladder, team.currency) if team.ladder else None,
            filled_seats=team.filled_seats,
            filled_by=team.filled_by,
        )

    @classmethod
    def started(cls, start: TeamStart, leader_name: str) -> TeamOut:
        paid = start.seat.status == "paid"  # a free leader seat is paid as it is taken
        leader = MemberOut(
            display_name=leader_name,
            is_leader=True,
            paid=paid,
            joined_at=start.created_at,
            pay_by=start.seat.hold_expires_at,
        )
        return cls(
            id=start.team_id,
            deal_id=start.deal_id,
            status=TeamStatus.FORMING.value,
            solo=start.solo,
            team_size=start.team_size,
            seats_taken=1,
            seats_paid=1 if paid else 0,
            seats_left=start.team_size - 1,
            expires_at=start.expires_at,
            created_at=start.created_at,
            ended_at=None,
            leader=leader,
            members=[leader],
        )


class StartedTeamOut(BaseModel):
    team: TeamOut
    seat: SeatOut


class JoinedOut(BaseModel):
    seat: SeatOut


class TeamList(BaseModel):
    data: list[TeamOut]


class MySeatOut(SeatOut):
    team_status: str
    team_expires_at: datetime
    deal_title: str

    @classmethod
    def mine(cls, mine: MySeat) -> MySeatOut:
        return cls(
            **SeatOut.of(mine.seat).model_dump(),
            team_status=mine.team_status,
            team_expires_at=mine.team_expires_at,
            deal_title=mine.deal_title,
        )
