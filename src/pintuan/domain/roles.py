"""Who may do what: roles and the principal an authenticated request acts as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    SHOPPER = "shopper"
    MERCHANT = "merchant"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: Role
    display_name: str
    locale: str
    time_zone: str
    merchant_ids: frozenset[str]

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    def is_staff_of(self, merchant_id: str) -> bool:
        return merchant_id in self.merchant_ids

    def can_manage(self, merchant_id: str) -> bool:
        """Operators manage every merchant; staff only their own."""
        return self.is_operator or self.is_staff_of(merchant_id)
