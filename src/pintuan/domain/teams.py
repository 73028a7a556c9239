"""Teams and seats: their states, and why a join is refused.

A team ends once (``forming → succeeded | failed``); a seat ends once
(``held → paid → confirmed``, ``held → released``, ``paid → refunded``). The storage layer enforces
each step with a conditional write; this module names the states and explains refusals.
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


@dataclass(frozen=True, slots=True)
class TeamState:
    status: str
    team_size: int
    taken: int
    expires_at: datetime


def deal_refusal(deal: DealState | None, now: datetime) -> AppError:
    """Why a deal gave no unit of stock."""
    if deal is None:
        return NotFound("No such deal.", code="deal_not_found")
    # A suspended merchant's or a moderated deal is simply not open: shoppers are told no more.
    if deal.status != "live" or deal.merchant_suspended or not deal.starts_at <= now < deal.ends_at:
        return Conflict("This deal is not open for teams right now.", code="deal_not_live")
    return Conflict("This deal is sold out.", code="sold_out")


def team_refusal(team: TeamState | None, now: datetime) -> AppError:
    """Why a team gave no place."""
    if team is None:
        return NotFound("No such team.", code="team_not_found")
    if team.status != TeamStatus.FORMING or team.expires_at <= now:
        return Conflict("This team has closed; start a new one.", code="team_closed")
    return Conflict("This team is full; join another or start one.", code="team_full")


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
