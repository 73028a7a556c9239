"""Reading referral commissions: a sharer's own, with their totals, and a merchant's. (A pickup
point leader's commissions are read with their pickups, ``pickups/service.py``.)

The money of a commission (frozen, released, clawed back) moves in ``ledger.commissions``, by
the worker and by refunds; nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.commissions.models import Commission
from pintuan.deals.models import Deal
from pintuan.domain.commissions import CommissionKind, CommissionStatus
from pintuan.domain.roles import Principal
from pintuan.errors import NotFound
from pintuan.kit.pagination import decode_cursor


@dataclass(frozen=True, slots=True)
class CommissionRow:
    commission: Commission
    deal_title: str

    @property
    def id(self) -> str:
        return self.commission.id


@dataclass(frozen=True, slots=True)
class Totals:
    """Per currency: what waits (frozen, less what refunds took), what reached the wallet and
    what refunds took back."""

    frozen: dict[str, int]
    released: dict[str, int]
    clawed_back: dict[str, int]


def _page(
    session: Session,
    where: list[object],
    status: CommissionStatus | None,
    cursor: str | None,
    limit: int,
) -> list[CommissionRow]:
    query = (
        select(Commission, Deal.title)
        .join(Deal, Deal.id == Commission.deal_id)
        .where(Commission.kind == CommissionKind.REFERRAL.value, *where)  # type: ignore[arg-type]
        .order_by(Commission.id.desc())
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(Commission.status == status.value)
    if cursor is not None:
        query = query.where(Commission.id < decode_cursor(cursor))
    return [CommissionRow(c, title) for c, title in session.execute(query).all()]


def list_of_sharer(
    session: Session,
    user_id: str,
    *,
    status: CommissionStatus | None,
    cursor: str | None,
    limit: int,
) -> list[CommissionRow]:
    """The shopper's commissions on orders their shares brought, newest first."""
    return _page(session, [Commission.sharer_id == user_id], status, cursor, limit)


def list_of_merchant(
    session: Session,
    principal: Principal,
    merchant_id: str,
    *,
    status: CommissionStatus | None,
    cursor: str | None,
    limit: int,
) -> list[CommissionRow]:
    """The commissions a merchant pays its shoppers' shares, newest first (its staff and
    operators)."""
    if not principal.can_manage(merchant_id):
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    return _page(session, [Commission.merchant_id == merchant_id], status, cursor, limit)


def totals_of_sharer(session: Session, user_id: str) -> Totals:
    frozen: dict[str, int] = defaultdict(int)
    released: dict[str, int] = defaultdict(int)
    clawed: dict[str, int] = defaultdict(int)
    rows = session.execute(
        select(
            Commission.status,
            Commission.currency,
            func.sum(Commission.amount - Commission.clawed_back),
            func.sum(Commission.clawed_back),
        )
        .where(Commission.sharer_id == user_id, Commission.kind == CommissionKind.REFERRAL.value)
        .group_by(Commission.status, Commission.currency)
    ).all()
    for status, currency, kept, taken in rows:
        clawed[currency] += int(taken or 0)
        if status == CommissionStatus.FROZEN:
            frozen[currency] += int(kept or 0)
        elif status == CommissionStatus.RELEASED:
            released[currency] += int(kept or 0)
    return Totals(dict(frozen), dict(released), {c: a for c, a in clawed.items() if a})
