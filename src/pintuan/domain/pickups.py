"""Pickup points and their team leaders (社区团购 / 团长): goods collected at a neighbour's door
instead of delivered to each shopper's.

A shopper applies to lead a pickup point (an address, opening hours, how many orders a day it
takes); operators decide::

    pending ──approve──▶ approved ──suspend──▶ suspended ──approve──▶ approved
       └──────reject───▶ rejected

A deal of goods may be a pickup deal (its ``PickupTerms``): after joining, each shopper chooses
an approved point for their seat, which gets a pickup with a short code. Each pickup::

    waiting ──goods arrive──▶ arrived ──leader hands over (by the code)──▶ handed_over
       │                         │
       └──── unclaimed at its claim-due instant (the worker) ──▶ refunded (in full)
    waiting ── its seat ended before success (the team failed, the shopper left) ──▶ cancelled

Every transition is one conditional write on the pickup's status, so two hand-overs of one code,
or a hand-over racing the unclaimed refund, end in exactly one state: the money follows the
winner. A hand-over pays the point's leader ``commission_bps`` of what the seat's payment keeps,
from the merchant's payable to the leader's wallet; a refund gives the payer everything back and
pays no commission.

A point's day is the calendar day at the point (its time zone) on which an order chose it; a
point takes at most ``capacity_per_day`` live orders a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pintuan.domain.deals import FieldProblem

MAX_COMMISSION_BPS = 3000
MAX_UNCLAIMED_DAYS = 30
MAX_CAPACITY = 10_000
PICKUP_VERTICALS = frozenset({"goods"})


class PointStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class PickupStatus(StrEnum):
    WAITING = "waiting"
    ARRIVED = "arrived"
    HANDED_OVER = "handed_over"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


# A pickup still to be collected: the goods are coming or are at the point.
OPEN_PICKUPS = (PickupStatus.WAITING, PickupStatus.ARRIVED)


def decided_status(current: PointStatus, approve: bool) -> PointStatus | None:
    """What an operator's decision makes of a point, or None when it cannot be taken now:
    a pending point is approved or rejected, an approved one suspended, a suspended one
    approved again; a rejected one stays rejected (its leader applies anew)."""
    if current is PointStatus.PENDING:
        return PointStatus.APPROVED if approve else PointStatus.REJECTED
    if current is PointStatus.APPROVED and not approve:
        return PointStatus.SUSPENDED
    if current is PointStatus.SUSPENDED and approve:
        return PointStatus.APPROVED
    return None


@dataclass(frozen=True, slots=True)
class PickupTerms:
    """A pickup deal's terms: the leader's commission, in basis points of what each seat
    paid, and the days an order waits at the point after its goods arrived."""

    commission_bps: int
    unclaimed_days: int

    def claim_due(self, since: datetime) -> datetime:
        """When an order not collected by then is refunded: ``unclaimed_days`` after its
        goods arrived (or, while they have not, after the deal's end)."""
        return since + timedelta(days=self.unclaimed_days)


def pickup_terms_problems(
    terms: PickupTerms, vertical: str, has_voucher: bool
) -> list[FieldProblem]:
    """What is wrong with a deal's pickup terms, each naming its field."""
    problems: list[FieldProblem] = []
    if vertical not in PICKUP_VERTICALS:
        problems.append(FieldProblem("pickup", "pickup points hand over goods; use a goods deal"))
    if has_voucher:
        problems.append(
            FieldProblem("pickup", "a deal is either collected at a pickup point or a voucher")
        )
    if not 0 <= terms.commission_bps <= MAX_COMMISSION_BPS:
        problems.append(FieldProblem("pickup.commission_bps", f"must be 0 to {MAX_COMMISSION_BPS}"))
    if not 1 <= terms.unclaimed_days <= MAX_UNCLAIMED_DAYS:
        problems.append(FieldProblem("pickup.unclaimed_days", f"must be 1 to {MAX_UNCLAIMED_DAYS}"))
    return problems


@dataclass(frozen=True, slots=True)
class PointApplication:
    """What a shopper asks to run: a point's name, address, opening hours and daily capacity."""

    name: str
    address: str
    opening_hours: str
    capacity_per_day: int


def application_problems(application: PointApplication) -> list[FieldProblem]:
    """What is wrong with an application to lead a pickup point, each naming its field."""
    problems: list[FieldProblem] = []
    for field, value, most in (
        ("name", application.name, 100),
        ("address", application.address, 500),
        ("opening_hours", application.opening_hours, 200),
    ):
        if not value.strip():
            problems.append(FieldProblem(field, "must not be empty"))
        elif len(value) > most:
            problems.append(FieldProblem(field, f"at most {most} characters"))
    if not 1 <= application.capacity_per_day <= MAX_CAPACITY:
        problems.append(FieldProblem("capacity_per_day", f"must be 1 to {MAX_CAPACITY}"))
    return problems
