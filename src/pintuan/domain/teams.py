"""Teams and seats: their states, and why a join is refused.

A team ends once (``forming → succeeded | failed``); a seat ends once
(``held → paid → confirmed``, ``held → released``, ``paid → refunded``). The storage layer enforces
each step with a conditional write; this module names the states and explains refusals.

A forming team always has a leader among its members. When the leader's seat ends (they leave,
or their hold lapses), the member who joined next leads; when the last member's seat ends, the
team fails at once (nobody is left to fill it) rather than being listed until its window closes.
The new leader keeps the price they joined at, never the leader price: that price rewards
starting a team, which they did not do, and their checkout may already be open, or paid, for
the amount they agreed to, which must not change under them (a payment for another amount than
asked is never applied).
A solo purchase (buying alone at the list price) is a team of one that nobody else may join.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pintuan.errors import AppError, Conflict, Forbidden, NotFound


class TeamStatus(StrEnum):
    FORMING = "forming"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class SeatStatus(StrEnum):
    HELD = "held"
    PAID = "paid"
    CONFIRMED = "confirmed"
    RELEASED = "released"
    REFUNDED = "refunded"


LIVE_SEATS = (SeatStatus.HELD, SeatStatus.PAID, SeatStatus.CONFIRMED)


@dataclass(frozen=True, slots=True)
class DealState:
    status: str
    stock: int
    committed: int
    starts_at: datetime
    ends_at: datetime
    merchant_suspended: bool = False
    allow_solo: bool = False


@dataclass(frozen=True, slots=True)
class TeamState:
    status: str
    team_size: int
    taken: int
    expires_at: datetime
    solo: bool = False


def deal_refusal(deal: DealState | None, now: datetime) -> AppError:
    """Why a deal gave no unit of stock."""
    if deal is None:
        return NotFound("No such deal.", code="deal_not_found")
    # A suspended merchant's or a moderated deal is simply not open: shoppers are told no more.
    if deal.status != "live" or deal.merchant_suspended or not deal.starts_at <= now < deal.ends_at:
        if deal.status == "live" and not deal.merchant_suspended and now < deal.starts_at:
            return Conflict(
                f"This deal opens at {deal.starts_at.isoformat()}; try again then.",
                code="deal_not_started",
                extra={"starts_at": deal.starts_at.isoformat()},
            )
        return Conflict("This deal is not open for teams right now.", code="deal_not_live")
    return sold_out()


def sold_out() -> AppError:
    return Conflict("This deal is sold out.", code="sold_out")


def team_closed() -> AppError:
    return Conflict("This team has closed; start a new one.", code="team_closed")


def team_full() -> AppError:
    return Conflict("This team is full; join another or start one.", code="team_full")


def team_refusal(team: TeamState | None, now: datetime) -> AppError:
    """Why a team gave no place."""
    if team is None:
        return NotFound("No such team.", code="team_not_found")
    if team.status != TeamStatus.FORMING or team.expires_at <= now:
        return team_closed()
    if team.solo:
        return Conflict(
            "This is somebody's solo purchase, a team of one; join another or start one.",
            code="team_full",
        )
    return team_full()


def solo_refusal(deal: DealState | None, now: datetime) -> AppError:
    """Why a deal sold no unit to a shopper buying alone."""
    if deal is not None and deal.status == "live" and not deal.allow_solo:
        return Conflict(
            "This deal is sold in teams only; start or join a team instead.",
            code="solo_not_allowed",
        )
    return deal_refusal(deal, now)


def limit_refusal(limit: int) -> AppError:
    return Conflict(
        f"You already hold {limit} seat{'s' if limit != 1 else ''} of this deal, its limit.",
        code="limit_reached",
    )


def already_member() -> AppError:
    return Conflict("You already have a seat in this team.", code="already_member")


def not_new_shopper() -> AppError:
    return Forbidden(
        "This team is for new shoppers only: you have bought through Pintuan before.",
        code="not_eligible",
    )


def seat_price(group_price: int, leader_price: int | None, *, is_leader: bool) -> int:
    """What a seat costs: the leader's price when the deal has one, else the group price."""
    return leader_price if is_leader and leader_price is not None else group_price


def almost_full(team_size: int, taken: int) -> bool:
    """Whether a team may be called almost full: one seat left, or at most a fifth of a large
    team's seats."""
    left = team_size - taken
    return 0 < left <= max(1, team_size // 5)
