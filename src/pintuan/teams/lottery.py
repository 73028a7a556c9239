"""The draw of a lottery team, in the transaction in which it succeeds (``mark_seat_paid``):
its confirmed seats are marked won or lost (``domain/lottery.py``), the team owes its losers
their refunds (paid by the worker, ``payments/lottery.py``), and each loser gets the deal's
coupon when it gives one (``domain/coupons.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pintuan.domain.coupons import CouponSource, CouponTerms
from pintuan.domain.lottery import draw
from pintuan.domain.teams import SeatStatus
from pintuan.errors import NotFound
from pintuan.kit.ids import new_id
from pintuan.kit.rawsql import RawTx, Sql

MARK_WON = Sql("UPDATE seats SET lottery_won = TRUE WHERE id IN_LIST(:ids)")
MARK_LOST = Sql(
    """
    UPDATE seats SET lottery_won = FALSE
    WHERE team_id = :team_id AND status = :confirmed AND lottery_won IS NULL
""",
    confirmed=SeatStatus.CONFIRMED,
)
OWE_LOSERS = Sql("UPDATE teams SET lottery_refunds_due = TRUE WHERE id = :team_id")
ISSUE_COUPON = Sql(
    """
    INSERT INTO coupons (id, owner_id, merchant_id, amount, currency, source, source_seat_id,
        issued_at, expires_at)
    SELECT :id, s.user_id, :merchant_id, :amount, s.currency, :lottery, s.id, :now, :expires_at
    FROM seats s WHERE s.id = :seat_id
""",
    lottery=CouponSource.LOTTERY,
)


@dataclass(frozen=True, slots=True)
class Consolation:
    """The coupon a lottery deal gives each seat not drawn, from its merchant."""

    merchant_id: str
    terms: CouponTerms


def draw_team(
    tx: RawTx,
    team_id: str,
    winners: int,
    seed: str,
    seat_ids: Sequence[str],
    consolation: Consolation | None,
    now: datetime,
) -> frozenset[str]:
    """Draw the winners among a lottery team's confirmed ``seat_ids``; returns them."""
    won = draw(seed, team_id, seat_ids, winners)
    tx.execute(MARK_WON, {"ids": sorted(won)})
    tx.execute(MARK_LOST, {"team_id": team_id})
    tx.execute(OWE_LOSERS, {"team_id": team_id})
    if consolation is not None:
        tx.many(
            ISSUE_COUPON,
            [
                {
                    "id": new_id("cpn"),
                    "merchant_id": consolation.merchant_id,
                    "amount": consolation.terms.amount,
                    "now": tx.instant(now),
                    "expires_at": tx.instant(consolation.terms.expires(now)),
                    "seat_id": seat_id,
                }
                for seat_id in sorted(set(seat_ids) - won)
            ],
        )
    return won


# ---------------------------------------------------------------------------- the public record


@dataclass(frozen=True, slots=True)
class Draw:
    team_id: str
    seat_ids: list[str]  # every seat the team drew among
    winners: list[str]


@dataclass(frozen=True, slots=True)
class LotteryRecord:
    deal_id: str
    winners: int
    commitment: str | None
    seed: str | None  # only once revealed
    revealed_at: datetime | None
    draws: list[Draw]


DEAL = Sql("""
    SELECT id, lottery_winners, lottery_commitment, lottery_seed, lottery_revealed_at
    FROM deals WHERE id = :id AND status <> 'draft'
""")
DRAWN = Sql("""
    SELECT s.team_id, s.id, s.lottery_won FROM seats s JOIN teams t ON t.id = s.team_id
    WHERE t.deal_id = :deal_id AND t.status = 'succeeded' AND s.lottery_won IS NOT NULL
    ORDER BY s.team_id, s.id
""")


def lottery_record(tx: RawTx, deal_id: str) -> LotteryRecord:
    """What anyone may check of a lottery deal: its commitment, its seed once revealed, and
    each successful team's seats and winners."""
    found = tx.all(DEAL, {"id": deal_id})
    if not found or found[0][1] is None:
        raise NotFound(f"Deal {deal_id} has no lottery.", code="lottery_not_found")
    _, winners, published, seed, revealed = found[0]
    draws: dict[str, Draw] = {}
    for team_id, seat_id, won in tx.all(DRAWN, {"deal_id": deal_id}):
        team = draws.setdefault(team_id, Draw(team_id, [], []))
        team.seat_ids.append(seat_id)
        if won:
            team.winners.append(seat_id)
    revealed_at = tx.read_optional_instant(revealed)
    return LotteryRecord(
        deal_id=deal_id,
        winners=int(winners),
        commitment=published,
        seed=seed if revealed_at is not None else None,
        revealed_at=revealed_at,
        draws=list(draws.values()),
    )
