"""The audit of bargains, recomputed from facts: each bargain's price is its start less the sum
of its cuts' rows; it has no more cuts than helpers needed, numbered 1, 2, 3… without a gap,
its counter agreeing; each cut took exactly the amount the schedule derived from the bargain's
seed gives its position; and a purchased bargain's seat is its owner's, of its deal, priced at
the price the bargain had reached when it was bought."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.bargains.models import Bargain, BargainCut
from pintuan.domain.bargains import cut_schedule
from pintuan.teams.models import Seat

INVARIANT = "bargains add up"


def bargain_breaches(session: Session) -> list[str]:
    """Every way the bargains, their cuts and their purchases disagree."""
    cuts: dict[str, dict[int, int]] = defaultdict(dict)
    for bargain_id, position, amount in session.execute(
        select(BargainCut.bargain_id, BargainCut.position, BargainCut.amount)
    ):
        cuts[str(bargain_id)][int(position)] = int(amount)
    found: list[str] = []
    for b, seat_price, seat_user, seat_deal in session.execute(
        select(Bargain, Seat.price_amount, Seat.user_id, Seat.deal_id).outerjoin(
            Seat, Seat.id == Bargain.seat_id
        )
    ):
        made = cuts.pop(b.id, {})
        if sorted(made) != list(range(1, len(made) + 1)):
            found.append(f"bargain {b.id} has cuts at positions {sorted(made)}")
        if len(made) != b.cuts or len(made) > b.helpers_needed:
            found.append(
                f"bargain {b.id} counts {b.cuts} cuts of {b.helpers_needed}, has {len(made)}"
            )
        if b.price_amount != b.start_amount - sum(made.values()):
            found.append(
                f"bargain {b.id} is at {b.price_amount}, its start {b.start_amount} less its "
                f"cuts is {b.start_amount - sum(made.values())}"
            )
        total = b.start_amount - b.floor_amount
        if 1 <= b.helpers_needed <= total:
            schedule = cut_schedule(b.seed, total, b.helpers_needed)
            wrong = sorted(
                p
                for p, amount in made.items()
                if not 1 <= p <= len(schedule) or schedule[p - 1] != amount
            )
            if wrong:
                found.append(f"bargain {b.id} cut amounts off its schedule at positions {wrong}")
        else:
            found.append(f"bargain {b.id} cannot reach {b.floor_amount} in {b.helpers_needed}")
        if b.seat_id is not None and (
            seat_price != b.bought_price_amount or seat_user != b.owner_id or seat_deal != b.deal_id
        ):
            found.append(
                f"bargain {b.id} was bought at {b.bought_price_amount} by {b.owner_id} but its "
                f"seat {b.seat_id} is {seat_user}'s of {seat_deal} at {seat_price}"
            )
        if b.bought_price_amount is not None and not (
            b.floor_amount <= b.bought_price_amount <= b.start_amount
        ):
            found.append(f"bargain {b.id} was bought at {b.bought_price_amount}, out of range")
    for bargain_id in cuts:
        found.append(f"cuts of bargain {bargain_id}, which does not exist")
    return found
