"""Rules a deal's terms must satisfy, whatever way they arrive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pintuan.kit.money import Money, exponent, max_amount


class Vertical(StrEnum):
    GOODS = "goods"
    FOOD = "food"
    MOVIES = "movies"
    TRAVEL = "travel"
    LOCAL = "local"


class DealSort(StrEnum):
    """The orders a list of deals can be read in."""

    NEWEST = "newest"
    ENDING_SOON = "ending_soon"  # the nearest end first
    DISCOUNT = "discount"  # the largest share off the list price first
    POPULAR = "popular"  # the most units taken (held, paid or confirmed) first


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class DealTerms:
    list_price: Money
    group_price: Money
    starts_at: datetime
    ends_at: datetime
    stock: int
    committed: int = 0
    leader_price: Money | None = None


def check_deal_terms(terms: DealTerms, merchant_currency: str) -> list[FieldProblem]:
    """Every way ``terms`` break the rules, each naming its field; empty when they are valid."""
    problems: list[FieldProblem] = []
    for field, price in (("list_price", terms.list_price), ("group_price", terms.group_price)):
        if price.currency != merchant_currency:
            problems.append(
                FieldProblem(
                    f"{field}.currency",
                    f"must be the merchant's currency {merchant_currency}, not {price.currency}",
                )
            )
        if not 1 <= price.amount <= max_amount(price.currency):
            problems.append(
                FieldProblem(
                    f"{field}.amount",
                    f"must be between 1 and {max_amount(price.currency)} minor units of "
                    f"{price.currency} ({exponent(price.currency)} decimals)",
                )
            )
    if (
        terms.group_price.currency == terms.list_price.currency
        and terms.group_price.amount >= terms.list_price.amount
    ):
        problems.append(FieldProblem("group_price.amount", "must be below the list price"))
    leader = terms.leader_price
    if leader is not None and (
        leader.currency != terms.group_price.currency
        or not 0 <= leader.amount <= terms.group_price.amount
    ):
        problems.append(
            FieldProblem(
                "leader_price",
                "must be in the deal's currency and between 0 and the group price",
            )
        )
    if terms.ends_at <= terms.starts_at:
        problems.append(FieldProblem("ends_at", "must be after starts_at"))
    if terms.stock < terms.committed:
        problems.append(
            FieldProblem("stock", f"cannot go below the {terms.committed} units already committed")
        )
    return problems
