"""Vouchers of local services: what a shopper shows at the counter instead of a parcel.

A deal in the food, movies, travel or local-services vertical may issue vouchers (its
``voucher`` terms). When its team succeeds, each confirmed seat gets one voucher with a short
code, a validity window and the shop locations where it is valid::

    issued ──staff redeem──▶ redeemed ──undo (within the window)──▶ issued
      │
      ├──shopper refunds (if the deal allows)──▶ refunded
      └──the worker at expiry─────────────────▶ expired (refunded in full)

Every transition is one conditional write on the voucher's status, so two redeemers of one
code, or a redemption racing a refund or the expiry, end in exactly one state: the money
follows the winner.

Money (``settle_on``): a voucher deal settles on redemption by default. The seat's money is
earned at success as every seat's is, but the merchant's part waits in
``merchant_unredeemed:<merchant>`` until the voucher is redeemed, when it moves to the
merchant's payable; a refund or the expiry gives it back to the payer from there. A deal may
settle on success instead, as goods do: the merchant's part is payable at once, and a refund
takes it back from the payable as any refund after success does.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pintuan.domain.deals import FieldProblem

VOUCHER_VERTICALS = frozenset({"food", "movies", "travel", "local"})
MAX_LOCATIONS = 20
MAX_VALID_DAYS = 3650

# Crockford's base32: no I, L, O or U, so a code read aloud or typed is hard to get wrong.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TYPED_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
CODE_LENGTH = 10  # 50 random bits
_CODE = re.compile(rf"^[{_ALPHABET}]{{{CODE_LENGTH}}}$")


class VoucherStatus(StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"
    REFUNDED = "refunded"
    EXPIRED = "expired"


class SettleOn(StrEnum):
    REDEMPTION = "redemption"
    SUCCESS = "success"


class RedeemedVia(StrEnum):
    CONSOLE = "console"
    API = "api"
    APP = "app"


def new_code() -> str:
    """A new voucher code: ten characters of Crockford base32 (shown as ``XXXXX-XXXXX``)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(typed: str) -> str | None:
    """A code as typed or scanned (any case, spaces or dashes, O for 0, I or L for 1) in its
    stored form, or None when it cannot be a code at all."""
    code = re.sub(r"[\s-]", "", typed).upper().translate(_TYPED_AS)
    return code if _CODE.match(code) else None


def show_code(code: str) -> str:
    """How a code is printed for people: two groups of five."""
    return f"{code[:5]}-{code[5:]}"


@dataclass(frozen=True, slots=True)
class VoucherTerms:
    """A deal's voucher terms: valid for ``valid_days`` after the team's success, or until the
    fixed instant ``valid_until``; at ``locations`` (none listed: wherever the merchant is)."""

    valid_days: int | None
    valid_until: datetime | None
    locations: tuple[str, ...]
    refund_anytime: bool
    settle_on: SettleOn

    def expires_at(self, succeeded_at: datetime) -> datetime:
        if self.valid_until is not None:
            return self.valid_until
        assert self.valid_days is not None
        return succeeded_at + timedelta(days=self.valid_days)

    def as_json(self) -> dict[str, object]:
        return {
            "valid_days": self.valid_days,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "locations": list(self.locations),
            "refund_anytime": self.refund_anytime,
            "settle_on": self.settle_on.value,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> VoucherTerms:
        until = data.get("valid_until")
        days = data.get("valid_days")
        locations = data.get("locations") or []
        assert isinstance(locations, list)
        return cls(
            valid_days=int(str(days)) if days is not None else None,
            valid_until=datetime.fromisoformat(str(until)) if until else None,
            locations=tuple(str(x) for x in locations),
            refund_anytime=bool(data.get("refund_anytime", True)),
            settle_on=SettleOn(str(data.get("settle_on", SettleOn.REDEMPTION.value))),
        )


def voucher_terms_problems(
    terms: VoucherTerms, vertical: str, deal_ends_at: datetime
) -> list[FieldProblem]:
    """What is wrong with a deal's voucher terms, each naming its field."""
    problems: list[FieldProblem] = []
    if vertical not in VOUCHER_VERTICALS:
        problems.append(
            FieldProblem(
                "voucher", "vouchers are for food, movies, travel and local services, not goods"
            )
        )
    if (terms.valid_days is None) == (terms.valid_until is None):
        problems.append(FieldProblem("voucher", "give exactly one of valid_days and valid_until"))
    if terms.valid_days is not None and not 1 <= terms.valid_days <= MAX_VALID_DAYS:
        problems.append(FieldProblem("voucher.valid_days", f"must be 1 to {MAX_VALID_DAYS}"))
    if terms.valid_until is not None and terms.valid_until <= deal_ends_at:
        problems.append(
            FieldProblem(
                "voucher.valid_until", "must be after the deal's end, so every team's vouchers last"
            )
        )
    if len(terms.locations) > MAX_LOCATIONS:
        problems.append(FieldProblem("voucher.locations", f"at most {MAX_LOCATIONS}"))
    if any(not loc.strip() or len(loc) > 200 for loc in terms.locations):
        problems.append(FieldProblem("voucher.locations", "each is 1 to 200 characters"))
    return problems


def undo_open(redeemed_at: datetime, undo_minutes: int, now: datetime) -> bool:
    """Whether a redemption may still be undone (a mistake at the counter)."""
    return now < redeemed_at + timedelta(minutes=undo_minutes)
