"""What the audit expects of every journal kind and every account, written down as tables.

The audit recomputes from facts: it does not trust a journal's header, a payment's status or a
statement's figures, it re-derives each from the entries and from records kept elsewhere (the
payment rows, the provider's own records, the commission rate in force). These tables are what
it compares against. A new journal kind or account must be declared here, or the audit reports
every journal of that kind (and every balance of that account) as unknown.

Signs: an entry is a debit when positive and a credit when negative (see ``domain/ledger.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    DEBIT = "debit"  # the entry is positive
    CREDIT = "credit"  # the entry is negative
    EITHER = "either"


class Scope(StrEnum):
    """Which column of the journal names the owner of a scoped account (``family:owner``)."""

    NONE = "none"  # the account has no owner part
    MERCHANT = "merchant_id"
    USER = "user_id"
    PROVIDER = "provider"


class PaymentAmount(StrEnum):
    """How a journal's gross relates to the amount of the payment it names."""

    NONE = "none"  # not a payment's journal
    EQUAL = "equal"  # exactly what was paid
    AT_MOST = "at_most"  # a part of it (partial refunds, disputes)


class Column(StrEnum):
    """Where a journal counts on a merchant's settlement statement."""

    SALES = "sales"  # orders, gross, fees and net of the statement's own day
    PAYOUTS = "payouts"
    ADJUSTMENTS = "adjustments"  # everything else that moves the merchant's payable


@dataclass(frozen=True, slots=True)
class Leg:
    """One entry a journal kind may write: the account family, its side, whose it is."""

    family: str
    side: Side
    required: bool = True


@dataclass(frozen=True, slots=True)
class Shape:
    legs: tuple[Leg, ...]
    statuses: frozenset[str] = frozenset({"posted"})
    payment: PaymentAmount = PaymentAmount.NONE
    # The platform fee must be the merchant's commission, at the rate in force, on the gross.
    fee: bool = False
    statement: Column = Column.ADJUSTMENTS
    # A merchant with a journal of this kind may owe the platform (a lost dispute).
    may_overdraw_merchant: bool = False


def _legs(*legs: tuple[str, Side] | tuple[str, Side, bool]) -> tuple[Leg, ...]:
    return tuple(Leg(*leg) for leg in legs)


D, C = Side.DEBIT, Side.CREDIT
# Where a payment's money sits: the provider's clearing account, or the payer's wallet when the
# provider is the wallet itself (``domain/ledger.py``'s ``clearing``).
CLEARING = "clearing"

# Every journal kind and the entries it writes. The header ``amount`` of every journal is the sum
# of its debits (its gross); a journal balances to zero per currency.
SHAPES: dict[str, Shape] = {
    "authorize": Shape(
        _legs((CLEARING, D), ("shopper_funds_held", C)),
        statuses=frozenset({"pending", "posted", "voided"}),
        payment=PaymentAmount.EQUAL,
    ),
    "charge": Shape(_legs((CLEARING, D), ("shopper_funds_held", C)), payment=PaymentAmount.EQUAL),
    "earn": Shape(
        _legs(
            ("shopper_funds_held", D),
            ("merchant_payable", C, False),  # absent when the fee takes everything
            ("platform_fees", C, False),  # absent at a zero commission
        ),
        payment=PaymentAmount.EQUAL,
        fee=True,
        statement=Column.SALES,
    ),
    "owe_back": Shape(
        _legs(("shopper_funds_held", D), ("refunds_payable", C)), payment=PaymentAmount.EQUAL
    ),
    "refund": Shape(_legs(("refunds_payable", D), (CLEARING, C)), payment=PaymentAmount.EQUAL),
    "wallet_refund": Shape(
        _legs(("refunds_payable", D), ("wallet", C)), payment=PaymentAmount.EQUAL
    ),
    "topup": Shape(_legs((CLEARING, D), ("wallet", C)), payment=PaymentAmount.EQUAL),
    "payout": Shape(_legs(("merchant_payable", D), ("platform_bank", C)), statement=Column.PAYOUTS),
    "payout_return": Shape(_legs(("platform_bank", D), ("merchant_payable", C))),
    # Every payment ends (payments/endings.py): the platform pays for a seat whose money never
    # came, as an earn would have; a refund the provider confirmed comes back to us.
    "write_off": Shape(
        _legs(
            ("platform_subsidy", D),
            ("merchant_payable", C, False),
            ("platform_fees", C, False),
        ),
        payment=PaymentAmount.EQUAL,
        fee=True,
        statement=Column.SALES,
    ),
    "refund_reversed": Shape(
        _legs((CLEARING, D), ("refunds_payable", C)), payment=PaymentAmount.EQUAL
    ),
    # Refunds after success (payments/refunds.py), several per payment, each a part of it: taken
    # back from the merchant (who may owe it when already paid out) and the fee in proportion.
    "refund_owed": Shape(
        _legs(
            ("merchant_payable", D, False),
            ("platform_fees", D, False),
            ("refunds_payable", C),
        ),
        payment=PaymentAmount.AT_MOST,
        may_overdraw_merchant=True,
    ),
    "refund_paid": Shape(
        _legs(("refunds_payable", D), (CLEARING, C)), payment=PaymentAmount.AT_MOST
    ),
    "refund_wallet": Shape(
        _legs(("refunds_payable", D), ("wallet", C)), payment=PaymentAmount.AT_MOST
    ),
    "refund_returned": Shape(
        _legs((CLEARING, D), ("refunds_payable", C)), payment=PaymentAmount.AT_MOST
    ),
    # Disputes: the provider takes the money, then gives it back (won) or it is borne by the
    # merchant that earned the payment, or the platform when none did (lost).
    "dispute_opened": Shape(_legs(("disputed", D), (CLEARING, C)), payment=PaymentAmount.AT_MOST),
    "dispute_won": Shape(_legs((CLEARING, D), ("disputed", C)), payment=PaymentAmount.AT_MOST),
    "dispute_lost": Shape(
        _legs(
            ("merchant_payable", D, False),
            ("disputes_lost", D, False),
            ("disputed", C),
        ),
        payment=PaymentAmount.AT_MOST,
        may_overdraw_merchant=True,
    ),
    # Vouchers that settle on redemption (vouchers/service.py): the merchant's part of an earned
    # seat waits while its voucher is unredeemed, and moves back to the payable when it is
    # redeemed or refunded (a refund then takes it back from the payable as any refund does).
    "voucher_deferred": Shape(
        _legs(("merchant_payable", D), ("merchant_unredeemed", C)),
        payment=PaymentAmount.AT_MOST,
    ),
    "voucher_released": Shape(
        _legs(("merchant_unredeemed", D), ("merchant_payable", C)),
        payment=PaymentAmount.AT_MOST,
    ),
    # Pickup points: a leader's commission on an order handed over, from the merchant's payable
    # (which may already have been paid out) to the leader's wallet, as hand-overs paid it
    # before commissions froze (now a commission of kind ``pickup``, below).
    "pickup_commission": Shape(
        _legs(("merchant_payable", D), ("wallet", C)),
        may_overdraw_merchant=True,
    ),
}

# Honest auto-fill (domain/autofill.py): the platform's own pocket pays the merchant the group
# price of a filled team's missing seats.
SHAPES["fill_subsidy"] = Shape(_legs(("platform_subsidy", D), ("merchant_payable", C)))

# Commissions, a sharer's or a pickup leader's (ledger/commissions.py): from the merchant's
# payable (which may already have been paid out) into the earner's frozen account; back to the
# merchant by refunds before the release, or on to the earner's wallet at it.
SHAPES["commission_frozen"] = Shape(
    _legs(("merchant_payable", D), ("commissions_frozen", C)),
    payment=PaymentAmount.AT_MOST,
    may_overdraw_merchant=True,
)
SHAPES["commission_back"] = Shape(
    _legs(("commissions_frozen", D), ("merchant_payable", C)), payment=PaymentAmount.AT_MOST
)
SHAPES["commission_paid"] = Shape(
    _legs(("commissions_frozen", D), ("wallet", C)), payment=PaymentAmount.AT_MOST
)
# A shopper's withdrawal from their wallet, sent from the platform's bank, and its return.
SHAPES["withdrawal"] = Shape(_legs(("wallet", D), ("platform_bank", C)))
SHAPES["withdrawal_return"] = Shape(_legs(("platform_bank", D), ("wallet", C)))

# Whose each scoped account is: the entry's ``family:owner`` must name the journal's owner.
SCOPES: dict[str, Scope] = {
    "provider_clearing": Scope.PROVIDER,
    "merchant_payable": Scope.MERCHANT,
    "merchant_unredeemed": Scope.MERCHANT,
    "wallet": Scope.USER,
    "commissions_frozen": Scope.USER,
}


class Allowed(StrEnum):
    NOT_NEGATIVE = "not_negative"  # on its normal side, never below zero
    ANY = "any"


@dataclass(frozen=True, slots=True)
class AccountRule:
    normal: Side  # the side a healthy balance sits on
    allowed: Allowed
    why: str


# Every account family, the side its balance sits on and the sign it may have there.
ACCOUNTS: dict[str, AccountRule] = {
    "provider_clearing": AccountRule(
        D, Allowed.NOT_NEGATIVE, "a provider never gives back more than it took for us"
    ),
    "shopper_funds_held": AccountRule(
        C, Allowed.NOT_NEGATIVE, "a seat's money is earned or owed back once, never more"
    ),
    "refunds_payable": AccountRule(C, Allowed.NOT_NEGATIVE, "only money owed back is returned"),
    "merchant_payable": AccountRule(
        C, Allowed.NOT_NEGATIVE, "payouts never exceed what is owed, unless a dispute was lost"
    ),
    "merchant_unredeemed": AccountRule(
        C, Allowed.NOT_NEGATIVE, "a voucher's money is released once, never more than waited"
    ),
    "wallet": AccountRule(C, Allowed.NOT_NEGATIVE, "a wallet is never overdrawn"),
    "commissions_frozen": AccountRule(
        C, Allowed.NOT_NEGATIVE, "a commission is taken back or paid once, never more than froze"
    ),
    "platform_fees": AccountRule(C, Allowed.NOT_NEGATIVE, "fees given back never exceed fees"),
    "platform_subsidy": AccountRule(D, Allowed.NOT_NEGATIVE, "the platform only pays in"),
    "disputed": AccountRule(
        D, Allowed.NOT_NEGATIVE, "a dispute is decided for no more than the provider took"
    ),
    "disputes_lost": AccountRule(D, Allowed.NOT_NEGATIVE, "the platform only bears losses"),
    "platform_bank": AccountRule(
        D, Allowed.ANY, "sweeps from providers are not recorded, so payouts run it negative"
    ),
}


def family(account: str) -> str:
    return account.split(":", 1)[0]


def owner(account: str) -> str | None:
    parts = account.split(":", 1)
    return parts[1] if len(parts) == 2 else None


def on_normal_side(rule: AccountRule, debit_minus_credit: int) -> int:
    return debit_minus_credit if rule.normal is Side.DEBIT else -debit_minus_credit


def shape_breaches(
    kind: str,
    status: str,
    header: int,
    entries: list[tuple[str, int]],
    owners: dict[str, str | None],
) -> list[str]:
    """What is wrong with one journal against its kind's shape: unknown kind or account, a leg
    on the wrong side or missing, an account of someone else, a header that is not the gross."""
    shape = SHAPES.get(kind)
    if shape is None:
        return [f"kind {kind!r} has no declared shape"]
    found: list[str] = []
    if status not in shape.statuses:
        found.append(f"a {kind} journal may not be {status}")
    legs = {leg.family: leg for leg in shape.legs}
    seen: set[str] = set()
    for account, amount in entries:
        leg = legs.get(family(account))
        if leg is None and family(account) in ("provider_clearing", "wallet"):
            leg = legs.get(CLEARING)
        if leg is None:
            found.append(f"{account} is not an account a {kind} journal writes")
            continue
        seen.add(leg.family)
        if (leg.side is Side.DEBIT and amount < 0) or (leg.side is Side.CREDIT and amount > 0):
            found.append(f"{account} is on the wrong side ({amount}) for a {kind} journal")
        scope = SCOPES.get(family(account))
        if scope is not None and owner(account) != owners.get(scope.value):
            found.append(f"{account} is not the journal's {scope.value}")
        if leg.family == CLEARING and (family(account) == "wallet") != (
            owners.get("provider") == "wallet"
        ):
            found.append(f"{account} is not where a {owners.get('provider')} payment sits")
    for leg in shape.legs:
        if leg.required and leg.family not in seen:
            found.append(f"no {leg.family} entry")
    gross = sum(amount for _, amount in entries if amount > 0)
    if gross != header:
        found.append(f"says {header} but its entries move {gross}")
    return found
