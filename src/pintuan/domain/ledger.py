"""The double-entry rules: which accounts exist and which entries each money movement writes.

Every amount is in minor units of one currency. An entry is a debit when positive and a credit
when negative, so a journal balances when its entries sum to zero in each currency. Asset
accounts (money at a provider) normally carry a debit balance; liabilities (money we owe
shoppers and merchants) and income carry a credit balance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

# Money a payment provider holds for us (or has authorised), per provider.
PROVIDER_CLEARING = "provider_clearing:{provider}"
# Money shoppers paid for seats whose team has not succeeded yet.
SHOPPER_FUNDS_HELD = "shopper_funds_held"
# Money owed back to shoppers until the provider confirms the void or refund.
REFUNDS_PAYABLE = "refunds_payable"
# What we owe a merchant for its successful teams, less fees and payouts.
MERCHANT_PAYABLE = "merchant_payable:{merchant_id}"
# A merchant's part of its vouchers' money not yet redeemed (deals that settle on redemption).
MERCHANT_UNREDEEMED = "merchant_unredeemed:{merchant_id}"
# The platform's commission.
PLATFORM_FEES = "platform_fees"
# What the platform pays out of its own pocket (auto-filled seats, promotions).
PLATFORM_SUBSIDY = "platform_subsidy"
# A shopper's stored balance.
WALLET = "wallet:{user_id}"
# Referral commissions owed to a sharer but frozen until their orders can no longer be refunded.
COMMISSIONS_FROZEN = "commissions_frozen:{user_id}"
# The platform's bank account, which merchant payouts leave from. (Sweeps of provider balances
# into it are not recorded yet, so it runs negative by what has been paid out.)
PLATFORM_BANK = "platform_bank"
# Money a provider took back from us for a dispute (chargeback) not yet decided.
DISPUTED = "disputed"
# Disputes lost on payments no merchant earned: the platform bears them.
DISPUTES_LOST = "disputes_lost"

BASIS_POINTS = 10_000


class AccountKind(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    INCOME = "income"
    EXPENSE = "expense"


_KINDS = {
    "provider_clearing": AccountKind.ASSET,
    "platform_bank": AccountKind.ASSET,
    "shopper_funds_held": AccountKind.LIABILITY,
    "refunds_payable": AccountKind.LIABILITY,
    "merchant_payable": AccountKind.LIABILITY,
    "merchant_unredeemed": AccountKind.LIABILITY,
    "wallet": AccountKind.LIABILITY,
    "commissions_frozen": AccountKind.LIABILITY,
    "platform_fees": AccountKind.INCOME,
    "platform_subsidy": AccountKind.EXPENSE,
    "disputed": AccountKind.ASSET,
    "disputes_lost": AccountKind.EXPENSE,
}


def account_kind(account: str) -> AccountKind:
    return _KINDS[account.split(":", 1)[0]]


def normal_balance(account: str, debit_minus_credit: int) -> int:
    """An account's balance on its normal side: assets and expenses as debits, the rest as
    credits, so a healthy balance reads positive."""
    if account_kind(account) in (AccountKind.ASSET, AccountKind.EXPENSE):
        return debit_minus_credit
    return -debit_minus_credit


class JournalKind(StrEnum):
    AUTHORIZE = "authorize"  # two-phase: pending until captured (posted) or voided
    CHARGE = "charge"  # money taken at once
    EARN = "earn"  # a successful team's money becomes the merchant's, less the fee
    OWE_BACK = "owe_back"  # a charge that must go back to its payer
    REFUND = "refund"  # the provider returned it
    WALLET_REFUND = "wallet_refund"  # it went back into the payer's wallet instead
    TOPUP = "topup"  # money paid into a wallet
    PAYOUT = "payout"  # money sent to a merchant
    # Every payment ends (payments/endings.py):
    WRITE_OFF = "write_off"  # the platform pays the merchant for a seat whose money never came
    REFUND_REVERSED = "refund_reversed"  # a refund the provider confirmed came back after all
    # Refunds after success and disputes: many per payment, keyed by their own ids.
    REFUND_OWED = "refund_owed"  # taken back from the merchant and the fee, owed to the payer
    REFUND_PAID = "refund_paid"  # the provider returned it
    REFUND_WALLET = "refund_wallet"  # it went into the payer's wallet instead
    REFUND_RETURNED = "refund_returned"  # paid, then its money came back: owed to the payer again
    # Owed again after it came back, and paid by the provider in another refund (one of the
    # whole payment made in its dashboard).
    REFUND_REPAID = "refund_repaid"
    DISPUTE_OPENED = "dispute_opened"  # the provider took the disputed money
    DISPUTE_WON = "dispute_won"  # it came back
    DISPUTE_LOST = "dispute_lost"  # it is gone: the merchant (or the platform) bears it
    PAYOUT_RETURN = "payout_return"  # a payout that failed or came back: owed to it again
    # Vouchers that settle on redemption (vouchers/service.py), keyed by the voucher's moves:
    VOUCHER_DEFERRED = "voucher_deferred"  # the merchant's part waits for the redemption
    VOUCHER_RELEASED = "voucher_released"  # redeemed (payable) or refunded (given back)
    # Pickup points: the leader's commission on an order handed over, paid into the wallet at
    # once, keyed ``<seat id>:pickup_commission``. Written before commissions froze; no longer
    # (a leader's commission is now a commission of kind ``pickup``), audited where it stands.
    PICKUP_COMMISSION = "pickup_commission"
    # Commissions, a sharer's or a pickup leader's (ledger/commissions.py), keyed by the
    # commission's moves:
    COMMISSION_FROZEN = "commission_frozen"  # the merchant's part owed to the earner, frozen
    COMMISSION_PAID = "commission_paid"  # the order can no longer be refunded: to the wallet
    COMMISSION_BACK = "commission_back"  # a refund took (part of) it back to the merchant
    # Withdrawals from a wallet (ledger/payouts.py), payouts to a shopper:
    WITHDRAWAL = "withdrawal"
    WITHDRAWAL_RETURN = "withdrawal_return"  # it failed or came back: in the wallet again
    # Honest auto-fill (domain/autofill.py): the platform pays a filled team's missing seats,
    # keyed ``<team id>:fill_subsidy``.
    FILL_SUBSIDY = "fill_subsidy"


class JournalStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"


@dataclass(frozen=True, slots=True)
class Entry:
    account: str
    amount: int  # debit positive, credit negative


def fee_for(amount: int, commission_bps: int) -> int:
    """The platform's commission on ``amount``, rounded half up to a whole minor unit."""
    if amount < 0 or not 0 <= commission_bps <= BASIS_POINTS:
        raise ValueError("amount must be >= 0 and commission within 0..10000 basis points")
    return (amount * commission_bps + BASIS_POINTS // 2) // BASIS_POINTS


def clearing(provider: str, user_id: str) -> str:
    """Where a provider's money sits; paying from the wallet takes it from the payer's wallet."""
    if provider == "wallet":
        return WALLET.format(user_id=user_id)
    return PROVIDER_CLEARING.format(provider=provider)


def money_in(provider: str, user_id: str, amount: int) -> list[Entry]:
    """A shopper's payment for a seat (an authorisation or a charge)."""
    return [Entry(clearing(provider, user_id), amount), Entry(SHOPPER_FUNDS_HELD, -amount)]


def earn(merchant_id: str, amount: int, fee: int) -> list[Entry]:
    return [
        Entry(SHOPPER_FUNDS_HELD, amount),
        Entry(MERCHANT_PAYABLE.format(merchant_id=merchant_id), -(amount - fee)),
        Entry(PLATFORM_FEES, -fee),
    ]


def owe_back(amount: int) -> list[Entry]:
    return [Entry(SHOPPER_FUNDS_HELD, amount), Entry(REFUNDS_PAYABLE, -amount)]


def refund(provider: str, user_id: str, amount: int) -> list[Entry]:
    return [Entry(REFUNDS_PAYABLE, amount), Entry(clearing(provider, user_id), -amount)]


def wallet_refund(user_id: str, amount: int) -> list[Entry]:
    return [Entry(REFUNDS_PAYABLE, amount), Entry(WALLET.format(user_id=user_id), -amount)]


def topup(provider: str, user_id: str, amount: int) -> list[Entry]:
    return [
        Entry(PROVIDER_CLEARING.format(provider=provider), amount),
        Entry(WALLET.format(user_id=user_id), -amount),
    ]


def payout(merchant_id: str, amount: int) -> list[Entry]:
    return [
        Entry(MERCHANT_PAYABLE.format(merchant_id=merchant_id), amount),
        Entry(PLATFORM_BANK, -amount),
    ]


def write_off(merchant_id: str, amount: int, fee: int) -> list[Entry]:
    """An operator writes off a seat's payment that never arrived (its hold lapsed or could not
    be captured): the platform's own pocket pays the merchant what the seat would have earned."""
    return [
        Entry(PLATFORM_SUBSIDY, amount),
        Entry(MERCHANT_PAYABLE.format(merchant_id=merchant_id), -(amount - fee)),
        Entry(PLATFORM_FEES, -fee),
    ]


def refund_reversed(provider: str, user_id: str, amount: int) -> list[Entry]:
    """A refund came back to the provider's balance (Stripe's ``refund_failure``): the money is
    ours again and owed to its payer once more."""
    return [Entry(clearing(provider, user_id), amount), Entry(REFUNDS_PAYABLE, -amount)]


def refund_owed(merchant_id: str, merchant_part: int, fee_part: int) -> list[Entry]:
    """A refund after success: taken back from the merchant's payable and the platform's fee."""
    return [
        Entry(MERCHANT_PAYABLE.format(merchant_id=merchant_id), merchant_part),
        Entry(PLATFORM_FEES, fee_part),
        Entry(REFUNDS_PAYABLE, -(merchant_part + fee_part)),
    ]


def voucher_deferred(merchant_id: str, amount: int) -> list[Entry]:
    """A voucher's money was earned before it was redeemed: the merchant's part waits."""
    return [
        Entry(MERCHANT_PAYABLE.format(merchant_id=merchant_id), amount),
        Entry(MERCHANT_UNREDEEMED.format(merchant_id=merchant_id), -amount),
    ]


def voucher_released(merchant_id: str, amount: int) -> list[Entry]:
    """A voucher was redeemed (or is being refunded): the merchant's part is payable again,
    where a redemption leaves it and a refund takes it back from."""
    return [
        Entry(MERCHANT_UNREDEEMED.format(merchant_id=merchant_id), amount),
        Entry(MERCHANT_PAYABLE.format(merchant_id=merchant_id), -amount),
    ]


def commission_frozen(merchant_id: str, user_id: str, amount: int) -> list[Entry]:
    """A commission on a sale (a sharer's share brought it, or a pickup point's leader handed it
    over), paid by the merchant, frozen."""
    return [
        Entry(MERCHANT_PAYABLE.format(merchant_id=merchant_id), amount),
        Entry(COMMISSIONS_FROZEN.format(user_id=user_id), -amount),
    ]


def commission_paid(user_id: str, amount: int) -> list[Entry]:
    return [
        Entry(COMMISSIONS_FROZEN.format(user_id=user_id), amount),
        Entry(WALLET.format(user_id=user_id), -amount),
    ]


def commission_back(merchant_id: str, user_id: str, amount: int) -> list[Entry]:
    """The order was refunded while the commission was frozen: the merchant has it back."""
    return [
        Entry(COMMISSIONS_FROZEN.format(user_id=user_id), amount),
        Entry(MERCHANT_PAYABLE.format(merchant_id=merchant_id), -amount),
    ]


def withdrawal(user_id: str, amount: int) -> list[Entry]:
    """Money leaves a wallet for the shopper's own account, from the platform's bank."""
    return [Entry(WALLET.format(user_id=user_id), amount), Entry(PLATFORM_BANK, -amount)]


def withdrawal_return(user_id: str, amount: int) -> list[Entry]:
    return [Entry(PLATFORM_BANK, amount), Entry(WALLET.format(user_id=user_id), -amount)]


def pickup_commission(merchant_id: str, leader_id: str, amount: int) -> list[Entry]:
    """A pickup point's leader handed an order over: their commission, paid by the merchant,
    goes to their wallet (how hand-overs paid before commissions froze: kept to read and audit
    those journals)."""
    return [
        Entry(MERCHANT_PAYABLE.format(merchant_id=merchant_id), amount),
        Entry(WALLET.format(user_id=leader_id), -amount),
    ]


def fill_subsidy(merchant_id: str, amount: int) -> list[Entry]:
    """The platform's budget filled a team's missing seats (domain/autofill.py): its own pocket
    pays the merchant their group price."""
    return [
        Entry(PLATFORM_SUBSIDY, amount),
        Entry(MERCHANT_PAYABLE.format(merchant_id=merchant_id), -amount),
    ]


def dispute_opened(provider: str, user_id: str, amount: int) -> list[Entry]:
    return [Entry(DISPUTED, amount), Entry(clearing(provider, user_id), -amount)]


def dispute_won(provider: str, user_id: str, amount: int) -> list[Entry]:
    return [Entry(clearing(provider, user_id), amount), Entry(DISPUTED, -amount)]


def dispute_lost(merchant_id: str | None, amount: int) -> list[Entry]:
    """A lost dispute is borne by the merchant that earned the payment (its payable may go
    negative), or by the platform when no merchant earned it."""
    bearer = MERCHANT_PAYABLE.format(merchant_id=merchant_id) if merchant_id else DISPUTES_LOST
    return [Entry(bearer, amount), Entry(DISPUTED, -amount)]


def payout_return(merchant_id: str, amount: int) -> list[Entry]:
    return [
        Entry(PLATFORM_BANK, amount),
        Entry(MERCHANT_PAYABLE.format(merchant_id=merchant_id), -amount),
    ]


def unbalanced(entries: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The currencies whose (currency, amount) entries do not sum to zero, with their sums."""
    sums: dict[str, int] = defaultdict(int)
    for currency, amount in entries:
        sums[currency] += amount
    return {currency: total for currency, total in sums.items() if total != 0}


def require_balanced(entries: Sequence[Entry]) -> None:
    if sum(e.amount for e in entries) != 0:
        raise ValueError(f"journal does not balance: {entries}")
