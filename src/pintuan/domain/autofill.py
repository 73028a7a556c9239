"""Honest auto-fill: when a team's window ends one or two paid seats short, a budget may pay for
the missing seats, and the team succeeds with them shown as what they are.

The malls' "virtual member" switch invents members so that a failed team looks full. Pintuan
says what happened: the seats are *filled by* the merchant or by Pintuan, never shown as people,
and each fill is counted against a budget with a limit set by whoever funds it:

* **the merchant** (``funded_by = merchant``): the merchant sells to the real members at the
  group price though fewer came. No money moves (there is nobody to pay for the missing seats),
  so no journal is written; the merchant's budget counts the group price of each seat it filled,
  and refuses a fill past its limit.
* **the platform** (``funded_by = platform``): Pintuan pays the merchant the group price of each
  missing seat, from its own pocket (a ``fill_subsidy`` journal from ``platform_subsidy`` to the
  merchant's payable, keyed by the team), within the platform's budget in that currency.

A fill is decided once, when the window ends (the sweep, or a late payment that finds the window
closed), in the transaction that ends the team: the budget's row is updated only while what it
has used plus the fill stays within its limit, so teams ending at the same time never take more
than the limit between them. A team without a budget, or past it, fails as any team.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pintuan.domain.deals import FieldProblem

MAX_FILLED_SEATS = 2
PLATFORM_PAYER = "platform"  # the payer key of the platform's budgets (else a merchant's id)


class FundedBy(StrEnum):
    MERCHANT = "merchant"
    PLATFORM = "platform"


@dataclass(frozen=True, slots=True)
class AutoFill:
    seats: int  # at most this many missing seats are filled
    funded_by: FundedBy

    def payer(self, merchant_id: str) -> str:
        """Whose budget pays: the merchant's own, or the platform's."""
        return merchant_id if self.funded_by is FundedBy.MERCHANT else PLATFORM_PAYER


def fill_cost(missing: int, group_price: int) -> int:
    """What filling ``missing`` seats counts against a budget: their group price."""
    return missing * group_price


def auto_fill_problems(fill: AutoFill, team_size: int) -> list[FieldProblem]:
    if not 1 <= fill.seats <= MAX_FILLED_SEATS:
        return [FieldProblem("auto_fill.seats", f"must be 1 to {MAX_FILLED_SEATS}")]
    if fill.seats >= team_size:
        return [
            FieldProblem(
                "auto_fill.seats", "must be fewer than the team's size: a team needs a member"
            )
        ]
    return []
