"""The audit of the ledger: journals balance, every payment's money is journalled exactly as
its status says, refunds never exceed charges, merchants are owed what shoppers paid less fees
and payouts, and wallets hold what their accounts say.

Each rule is checked by two independent routes (the payments table and the journals written
beside it); an empty list of breaches is a pass.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.audit.fills import platform_fills
from pintuan.audit.pickups import pickup_breaches, pickup_commissions_paid
from pintuan.audit.refunds import AFTER_SUCCESS, check_refunds_and_disputes, taken_back
from pintuan.commissions.models import Commission
from pintuan.deals.models import Deal
from pintuan.domain import ledger as rules
from pintuan.domain.commissions import CommissionStatus, commission_on
from pintuan.domain.ledger import JournalKind
from pintuan.domain.refunds import DisputeStatus, RefundSource
from pintuan.ledger.models import Entry, Journal, Wallet
from pintuan.ledger.vouchers import VOUCHER_KINDS
from pintuan.payments.models import Payment
from pintuan.payments.refund_models import Dispute, Refund
from pintuan.teams.models import Seat
from pintuan.vouchers.models import Voucher

INVARIANT = "6 the ledger balances"

# The journals a payment must have in each state, as (kind, journal status) pairs.
_AUTHORIZED = (JournalKind.AUTHORIZE, "pending")
_CAPTURED = (JournalKind.AUTHORIZE, "posted")
_VOIDED = (JournalKind.AUTHORIZE, "voided")
_CHARGED = (JournalKind.CHARGE, "posted")
_EARNED = (JournalKind.EARN, "posted")
_OWED = (JournalKind.OWE_BACK, "posted")


# A charge whose refund failed is owed back still, with nothing owed to the provider.
_REFUND_FAILED = "refund_failed"
_TOTALS = ("authorized", "captured", "voided", "still_held", "charged", "refunded")
_AUTHORIZATION_OUTCOME = {"posted": "captured", "voided": "voided", "pending": "still_held"}


@dataclass(frozen=True, slots=True)
class LedgerBreach:
    invariant: str
    detail: str


@dataclass
class LedgerReport:
    breaches: list[LedgerBreach] = field(default_factory=list)
    # Per currency: authorised (captured, voided, still held), charged and refunded totals.
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    journals: int = 0

    def add(self, detail: str) -> None:
        self.breaches.append(LedgerBreach(INVARIANT, detail))


def check_ledger(session: Session) -> LedgerReport:
    """Every breach of the ledger's rules, with the totals it checked."""
    report = LedgerReport()
    report.journals = session.scalar(select(func.count()).select_from(Journal)) or 0
    _journals_balance(session, report)
    _payments_match_journals(session, report)
    _merchants_are_owed_what_was_paid(session, report)
    _wallets_match_accounts(session, report)
    _vouchers_hold_what_waits(session, report)
    _pickups_paid_their_leaders(session, report)
    _commissions_match_journals(session, report)
    _frozen_commissions_within_what_is_paid(session, report)
    check_refunds_and_disputes(session, report)
    return report


def _journals_balance(session: Session, report: LedgerReport) -> None:
    rows = session.execute(
        select(Entry.journal_id, Entry.currency, func.sum(Entry.amount))
        .group_by(Entry.journal_id, Entry.currency)
        .having(func.sum(Entry.amount) != 0)
    ).all()
    for journal_id, currency, total in rows:
        report.add(f"journal {journal_id} is off by {total} {currency}")
    mixed = session.execute(
        select(Journal.id, Entry.currency)
        .join(Entry, Entry.journal_id == Journal.id)
        .where(Entry.currency != Journal.currency)
    ).all()
    for journal_id, currency in mixed:
        report.add(f"journal {journal_id} has an entry in {currency}")
    empty = session.scalars(
        select(Journal.id).where(~select(Entry.id).where(Entry.journal_id == Journal.id).exists())
    ).all()
    for journal_id in empty:
        report.add(f"journal {journal_id} has no entries")


def _expected_journals(
    status: str, pending: str | None, purpose: str, seat_status: str | None
) -> set[tuple[JournalKind, str]]:
    if status == "expired":  # a hold that lapsed uncaptured (payments/endings.py)
        return {_VOIDED}
    if purpose == "topup":
        return {(JournalKind.TOPUP, "posted")} if status == "charged" else set()
    if status == "authorized":
        return {_AUTHORIZED}
    if status == "captured":
        return {_CAPTURED, _EARNED}
    if status == "voided":
        return {_VOIDED}
    if status == "charged":
        if pending == "refund" or pending == _REFUND_FAILED:
            return {_CHARGED, _OWED}
        return {_CHARGED, _EARNED} if seat_status == "confirmed" else {_CHARGED}
    if status == "refunded":
        return {_CHARGED, _OWED}  # plus a refund, to the provider or to the wallet
    return set()


_COMMISSION_KINDS = (
    JournalKind.COMMISSION_FROZEN.value,
    JournalKind.COMMISSION_PAID.value,
    JournalKind.COMMISSION_BACK.value,
)


def _payments_match_journals(session: Session, report: LedgerReport) -> None:
    journals: dict[str, dict[JournalKind, tuple[str, int]]] = defaultdict(dict)
    for payment_id, kind, status, amount in session.execute(
        select(Journal.payment_id, Journal.kind, Journal.status, Journal.amount).where(
            Journal.payment_id.is_not(None),
            Journal.kind.not_in(AFTER_SUCCESS + VOUCHER_KINDS + _COMMISSION_KINDS),
        )
    ):
        journals[str(payment_id)][JournalKind(kind)] = (status, amount)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_TOTALS, 0))
    payments = session.execute(
        select(
            Payment.id,
            Payment.status,
            Payment.pending_action,
            Payment.purpose,
            Payment.amount,
            Payment.currency,
            Seat.status,
            Payment.taken_amount,
            Payment.end_reason,
            Payment.resolution,
        ).outerjoin(Seat, Seat.id == Payment.seat_id)
    ).all()
    for (
        payment_id,
        status,
        pending,
        purpose,
        amount,
        currency,
        seat_status,
        taken,
        end_reason,
        resolution,
    ) in payments:
        have = journals.pop(payment_id, {})
        refunds = {
            k: have.pop(k) for k in (JournalKind.REFUND, JournalKind.WALLET_REFUND) if k in have
        }
        # Every payment ends (payments/endings.py): what the provider took when it was not
        # what we asked is what its journals move; a write-off is there exactly when an
        # operator chose it; a refund that came back is subtracted from what was refunded.
        amount = taken or amount
        written_off = have.pop(JournalKind.WRITE_OFF, None)
        if (written_off is not None) != (resolution == "write_off"):
            report.add(f"payment {payment_id} resolved {resolution}: write-off {written_off}")
        reversed_refund = have.pop(JournalKind.REFUND_REVERSED, ("", 0))[1]
        if reversed_refund and JournalKind.REFUND not in refunds:
            report.add(f"payment {payment_id} has a refund reversed but no refund")
        if end_reason == _REFUND_FAILED and pending is None and status == "charged":
            pending = _REFUND_FAILED
        if taken is not None:
            purpose = "seat"  # a top-up of another amount is money taken for nothing
        expected = _expected_journals(status, pending, purpose, seat_status)
        found = {(kind, state) for kind, (state, _) in have.items()}
        if found != expected:
            report.add(
                f"payment {payment_id} is {status} ({pending or 'nothing owed'}) but has "
                f"journals {sorted(f'{k.value}/{s}' for k, s in found)}, "
                f"expected {sorted(f'{k.value}/{s}' for k, s in expected)}"
            )
        for kind, (_, journal_amount) in have.items():
            if journal_amount != amount:
                report.add(f"payment {payment_id}: {kind.value} of {journal_amount}, paid {amount}")
        refunded = sum(a for _, a in refunds.values()) - reversed_refund
        charged = have.get(JournalKind.CHARGE, ("", 0))[1]
        if (status == "refunded") != bool(refunded) or refunded > charged:
            report.add(f"payment {payment_id} is {status}: refunded {refunded} of {charged}")
        money = totals[currency]
        if JournalKind.AUTHORIZE in have:
            state, authorized = have[JournalKind.AUTHORIZE]
            money["authorized"] += authorized
            money[_AUTHORIZATION_OUTCOME[state]] += authorized
        money["charged"] += charged
        money["refunded"] += refunded
    for payment_id in journals:
        report.add(f"journals name payment {payment_id}, which does not exist")
    for currency, money in sorted(totals.items()):
        decided = money["captured"] + money["voided"] + money["still_held"]
        if decided != money["authorized"]:
            report.add(f"{currency}: captured + voided + held {decided} != authorised")
        report.totals[currency] = money


def _account_balances(session: Session, prefix: str) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(Entry.account, Entry.currency, func.sum(Entry.amount))
        .join(Journal, Journal.id == Entry.journal_id)
        .where(Entry.account.like(f"{prefix}%"), Journal.status == "posted")
        .group_by(Entry.account, Entry.currency)
    ).all()
    return {(account, currency): int(total) for account, currency, total in rows}


def _merchants_are_owed_what_was_paid(session: Session, report: LedgerReport) -> None:
    """payable + fees + payouts = what shoppers paid for the merchant's successful seats."""
    paid: dict[tuple[str, str], int] = defaultdict(int)
    for merchant_id, currency, amount in session.execute(
        select(Deal.merchant_id, Payment.currency, func.sum(Payment.amount))
        .join(Seat, Seat.id == Payment.seat_id)
        .join(Deal, Deal.id == Seat.deal_id)
        .where(
            Seat.status == "confirmed",
            Payment.pending_action.is_(None),
            Payment.status.in_(("captured", "charged")),
            Payment.end_reason.is_(None),  # a charge whose refund failed is owed back, not paid
        )
        .group_by(Deal.merchant_id, Payment.currency)
    ):
        paid[(merchant_id, currency)] += int(amount)
    # A seat whose money never came and that an operator wrote off was paid by the platform.
    for merchant_id, currency, amount in session.execute(
        select(Deal.merchant_id, Payment.currency, func.sum(Payment.amount))
        .join(Seat, Seat.id == Payment.seat_id)
        .join(Deal, Deal.id == Seat.deal_id)
        .where(Seat.status == "confirmed", Payment.resolution == "write_off")
        .group_by(Deal.merchant_id, Payment.currency)
    ):
        paid[(merchant_id, currency)] += int(amount)
    # Teams the platform's budget filled: it paid their missing seats (audit/fills.py).
    for key, amount in platform_fills(session).items():
        paid[key] += amount
    for key, amount in taken_back(session).items():
        paid[key] -= amount
    accounted: dict[tuple[str, str], int] = defaultdict(int)
    # Owed to the merchant: payable now, or once its vouchers are redeemed.
    for prefix in ("merchant_payable:", "merchant_unredeemed:"):
        for (account, currency), total in _account_balances(session, prefix).items():
            accounted[(account.split(":", 1)[1], currency)] -= total
    for merchant, currency, total in session.execute(
        select(Journal.merchant_id, Entry.currency, func.sum(Entry.amount))
        .join(Entry, Entry.journal_id == Journal.id)
        .where(
            Journal.status == "posted",
            (
                Journal.kind.in_(
                    (
                        JournalKind.EARN.value,
                        JournalKind.WRITE_OFF.value,
                        JournalKind.REFUND_OWED.value,
                    )
                )
                & (Entry.account == rules.PLATFORM_FEES)
            )
            | (
                Journal.kind.in_((JournalKind.PAYOUT.value, JournalKind.PAYOUT_RETURN.value))
                & (Entry.account == rules.PLATFORM_BANK)
            )
            # What it pays its sharers (frozen, less what refunds took back) left its payable.
            | (
                Journal.kind.in_(
                    (JournalKind.COMMISSION_FROZEN.value, JournalKind.COMMISSION_BACK.value)
                )
                & Entry.account.startswith("commissions_frozen:")
            ),
        )
        .group_by(Journal.merchant_id, Entry.currency)
    ):
        accounted[(str(merchant), currency)] -= int(total)  # fees and payouts are credits
    # What it paid pickup points' leaders on orders handed over left its payable too.
    for key, amount in pickup_commissions_paid(session).items():
        accounted[key] += amount
    for key in sorted(set(paid) | set(accounted)):
        if paid.get(key, 0) != accounted.get(key, 0):
            merchant_id, currency = key
            report.add(
                f"merchant {merchant_id}: shoppers paid {paid.get(key, 0)} {currency} for "
                f"successful seats, but payable + fees + payouts = {accounted.get(key, 0)}"
            )


def _vouchers_hold_what_waits(session: Session, report: LedgerReport) -> None:
    """A voucher's money waits (``merchant_unredeemed``) only while it is unused and its deal
    settles on redemption, and never more than its merchant's part of what was paid; a used,
    refunded or expired voucher holds nothing back."""
    waiting: dict[str, int] = defaultdict(int)
    for seat_id, total in session.execute(
        select(Payment.seat_id, func.sum(Entry.amount))
        .join(Journal, Journal.payment_id == Payment.id)
        .join(Entry, Entry.journal_id == Journal.id)
        .where(
            Journal.kind.in_(VOUCHER_KINDS),
            Journal.status == "posted",
            Entry.account.startswith("merchant_unredeemed:"),
        )
        .group_by(Payment.seat_id)
    ):
        waiting[str(seat_id)] = -int(total)
    for voucher_id, seat_id, status, settle_on, price in session.execute(
        select(
            Voucher.id, Voucher.seat_id, Voucher.status, Voucher.settle_on, Seat.price_amount
        ).join(Seat, Seat.id == Voucher.seat_id)
    ):
        held = waiting.pop(seat_id, 0)
        may_wait = status == "issued" and settle_on == "redemption"
        if held < 0 or held > price or (held and not may_wait):
            report.add(
                f"voucher {voucher_id} is {status} (settles on {settle_on}) and holds back "
                f"{held} of a seat of {price}"
            )
    for seat_id, held in waiting.items():
        if held:
            report.add(f"seat {seat_id} has no voucher but holds back {held} for one")


def _commissions_match_journals(session: Session, report: LedgerReport) -> None:
    """Each commission's journals say what its row says: frozen once for its amount, taken
    back by what refunds and lost disputes took, paid (once, what was left) only when
    released; each earner's frozen account holds exactly their frozen commissions; and no
    refund decided here (asked for, or one of the platform's own: an uncollected pickup, a
    lottery's loser) came after a commission was released: its order's refund window had
    closed. Only a refund made in a provider's dashboard may come later; the merchant bears
    it."""
    moved: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for journal_id, kind, amount in session.execute(
        select(Journal.id, Journal.kind, Journal.amount).where(
            Journal.kind.in_(_COMMISSION_KINDS), Journal.status == "posted"
        )
    ):
        moved[str(journal_id).split(":", 1)[0]][str(kind)] += int(amount)
    frozen_of: dict[tuple[str, str], int] = defaultdict(int)
    for c in session.scalars(select(Commission)):
        kept = c.amount - c.clawed_back
        seen = moved.pop(c.id, {})
        want = {JournalKind.COMMISSION_FROZEN.value: c.amount}
        if c.clawed_back:
            want[JournalKind.COMMISSION_BACK.value] = c.clawed_back
        if c.status == CommissionStatus.RELEASED:
            want[JournalKind.COMMISSION_PAID.value] = kept
        elif c.status == CommissionStatus.FROZEN:
            frozen_of[(c.sharer_id, c.currency)] += kept
        if dict(seen) != want or (c.status == CommissionStatus.CLAWED_BACK and kept):
            report.add(f"commission {c.id} is {c.status} of {kept} but its journals say {seen}")
    for commission_id in moved:
        report.add(f"journals of commission {commission_id}, which does not exist")
    held = {
        (account.split(":", 1)[1], currency): -total
        for (account, currency), total in _account_balances(session, "commissions_frozen:").items()
    }
    for key in sorted(set(held) | set(frozen_of)):
        if held.get(key, 0) != frozen_of.get(key, 0):
            report.add(
                f"user {key[0]} has {frozen_of.get(key, 0)} {key[1]} of frozen commissions, "
                f"the ledger holds {held.get(key, 0)}"
            )
    for refund_id, commission_id in session.execute(
        select(Refund.id, Commission.id)
        .join(Commission, Commission.seat_id == Refund.seat_id)
        .where(
            Commission.status == CommissionStatus.RELEASED,
            Refund.source != RefundSource.PROVIDER.value,
            Refund.created_at > Commission.released_at,
        )
    ):
        report.add(f"refund {refund_id} was made after commission {commission_id} was released")


def _frozen_commissions_within_what_is_paid(session: Session, report: LedgerReport) -> None:
    """A frozen commission is never more than the commission, at its rate, on what its payment
    still pays (its amount less refunds and disputes lost): every refund and lost dispute
    shrinks it in the same transaction. (A released one may be: a refund made in a provider's
    dashboard after the release is the merchant's to bear.)"""
    lost = dict(
        session.execute(
            select(Dispute.payment_id, func.sum(Dispute.amount))
            .where(Dispute.status == DisputeStatus.LOST.value)
            .group_by(Dispute.payment_id)
        ).all()
    )
    for c, amount, refunded in session.execute(
        select(Commission, Payment.amount, Payment.refunded_amount)
        .join(Payment, Payment.id == Commission.payment_id)
        .where(Commission.status == CommissionStatus.FROZEN.value)
    ):
        left = max(int(amount) - int(refunded) - int(lost.get(c.payment_id) or 0), 0)
        most = commission_on(left, c.rate_bps)
        if c.amount - c.clawed_back > most:
            report.add(
                f"{c.kind} commission {c.id} keeps {c.amount - c.clawed_back} {c.currency}, "
                f"more than {most} on the {left} its payment still pays"
            )


def _pickups_paid_their_leaders(session: Session, report: LedgerReport) -> None:
    """Each order handed over at a pickup point paid its leader's commission once, at the
    deal's rate; nothing else did (``audit/pickups.py``)."""
    for detail in pickup_breaches(session):
        report.add(detail)


def _wallets_match_accounts(session: Session, report: LedgerReport) -> None:
    accounts = {
        (account.split(":", 1)[1], currency): -total
        for (account, currency), total in _account_balances(session, "wallet:").items()
    }
    wallets = {
        (user_id, currency): balance
        for user_id, currency, balance in session.execute(
            select(Wallet.user_id, Wallet.currency, Wallet.balance)
        )
    }
    for key in sorted(set(accounts) | set(wallets)):
        if accounts.get(key, 0) != wallets.get(key, 0):
            user_id, currency = key
            report.add(
                f"wallet of {user_id} holds {wallets.get(key, 0)} {currency}, "
                f"its account says {accounts.get(key, 0)}"
            )
