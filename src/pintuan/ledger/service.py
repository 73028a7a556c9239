"""Writing the ledger: every money movement of the engine as a balanced journal, written in the
same transaction as the state change it records.

The functions here run on the raw path (a ``RawTx``) because they sit inside the engine's own
transactions: a payment arriving, seats ending, a team succeeding, a provider call finishing.
Each is guarded by the state change that calls it, and a payment's journals are keyed
``<payment id>:<kind>``, so the same movement can never be written twice.

The ledger only records: it writes journals, their entries and wallet balances, never a
payment. What a payment is owed (a capture, a void, a refund) is decided in payments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from pintuan.domain import ledger as rules
from pintuan.domain.ledger import JournalKind, JournalStatus
from pintuan.domain.payments import PaymentPurpose, PaymentStatus, ProviderAction
from pintuan.domain.teams import SeatStatus
from pintuan.domain.vouchers import SettleOn, VoucherStatus
from pintuan.errors import Conflict, InvalidInput, NotFound
from pintuan.kit.ids import new_id
from pintuan.kit.rawsql import RawTx, Sql


@dataclass(frozen=True, slots=True)
class NewJournal:
    id: str
    kind: JournalKind
    status: JournalStatus
    currency: str
    amount: int
    entries: Sequence[rules.Entry]
    payment_id: str | None = None
    merchant_id: str | None = None
    user_id: str | None = None
    provider: str | None = None
    provider_ref: str | None = None
    # The business instant it belongs to, when not the instant it is recorded.
    effective_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PaymentMoney:
    """The columns of a payment that its journals need."""

    id: str
    user_id: str
    provider: str
    provider_ref: str | None
    amount: int
    currency: str
    status: str
    purpose: str
    refund_to: str

    def journal_id(self, kind: JournalKind) -> str:
        return journal_id(self.id, kind)

    def journal(
        self,
        kind: JournalKind,
        entries: Sequence[rules.Entry],
        status: JournalStatus = JournalStatus.POSTED,
        merchant_id: str | None = None,
    ) -> NewJournal:
        return NewJournal(
            id=self.journal_id(kind),
            kind=kind,
            status=status,
            currency=self.currency,
            amount=self.amount,
            entries=entries,
            payment_id=self.id,
            merchant_id=merchant_id,
            user_id=self.user_id,
            provider=self.provider,
            provider_ref=self.provider_ref,
        )


PAYMENT_MONEY_COLUMNS = (
    "id, user_id, provider, provider_ref, amount, currency, status, purpose, refund_to"
)


def journal_id(payment_id: str, kind: JournalKind) -> str:
    return f"{payment_id}:{kind.value}"


INSERT_JOURNAL = Sql("""
    INSERT INTO ledger_journals (id, kind, status, currency, amount, payment_id, merchant_id,
        user_id, provider, provider_ref, created_at, decided_at, effective_at)
    VALUES (:id, :kind, :status, :currency, :amount, :payment_id, :merchant_id, :user_id,
        :provider, :provider_ref, :now, :decided_at, :effective_at)
""")
INSERT_ENTRY = Sql("""
    INSERT INTO ledger_entries (journal_id, account, currency, amount)
    VALUES (:journal_id, :account, :currency, :amount)
""")


def post(tx: RawTx, journals: Sequence[NewJournal], now: datetime) -> None:
    """Write journals and their entries. A journal that does not balance is refused before
    anything is written; one written twice fails on its primary key and rolls everything back."""
    if not journals:
        return
    for journal in journals:
        rules.require_balanced(journal.entries)
    at = tx.instant(now)
    tx.send_many(
        INSERT_JOURNAL,
        [
            {
                "id": j.id,
                "kind": j.kind.value,
                "status": j.status.value,
                "currency": j.currency,
                "amount": j.amount,
                "payment_id": j.payment_id,
                "merchant_id": j.merchant_id,
                "user_id": j.user_id,
                "provider": j.provider,
                "provider_ref": j.provider_ref,
                "now": at,
                "decided_at": None if j.status is JournalStatus.PENDING else at,
                "effective_at": at if j.effective_at is None else tx.instant(j.effective_at),
            }
            for j in journals
        ],
    )
    tx.send_many(
        INSERT_ENTRY,
        [
            {"journal_id": j.id, "account": e.account, "currency": j.currency, "amount": e.amount}
            for j in journals
            for e in j.entries
            if e.amount != 0
        ],
    )


# ---------------------------------------------------------------------------- wallets

CREDIT_WALLET = Sql("""
    INSERT INTO wallets (user_id, currency, balance, updated_at)
    VALUES (:user_id, :currency, :amount, :now)
    ON CONFLICT (user_id, currency)
    DO UPDATE SET balance = wallets.balance + excluded.balance, updated_at = excluded.updated_at
""")
DEBIT_WALLET = Sql("""
    UPDATE wallets SET balance = balance - :amount, updated_at = :now
    WHERE user_id = :user_id AND currency = :currency AND balance >= :amount
    RETURNING balance
""")


def credit_wallets(tx: RawTx, credits: Sequence[tuple[str, str, int]], now: datetime) -> None:
    """Add (user, currency, amount) to wallets; the caller posts the matching journals."""
    at = tx.instant(now)
    tx.many(
        CREDIT_WALLET,
        [{"user_id": u, "currency": c, "amount": a, "now": at} for u, c, a in credits],
    )


def debit_wallet(tx: RawTx, user_id: str, currency: str, amount: int, now: datetime) -> None:
    """Take ``amount`` from a wallet, refused (and nothing changed) when the balance is short."""
    left = tx.scalar(
        DEBIT_WALLET,
        {"user_id": user_id, "currency": currency, "amount": amount, "now": tx.instant(now)},
    )
    if left is None:
        raise Conflict(
            "Your wallet balance is too low for this payment; top it up or pay another way.",
            code="insufficient_funds",
        )


# ---------------------------------------------------------------------------- money in


def record_money_in(tx: RawTx, payment: PaymentMoney, now: datetime) -> None:
    """A payment's money arrived: a pending authorisation (hold), a posted charge, or a top-up
    that lands in the payer's wallet."""
    if payment.purpose == PaymentPurpose.TOPUP:
        credit_wallets(tx, [(payment.user_id, payment.currency, payment.amount)], now)
        journal = payment.journal(
            JournalKind.TOPUP, rules.topup(payment.provider, payment.user_id, payment.amount)
        )
    elif payment.status == PaymentStatus.AUTHORIZED:
        journal = payment.journal(
            JournalKind.AUTHORIZE,
            rules.money_in(payment.provider, payment.user_id, payment.amount),
            JournalStatus.PENDING,
        )
    else:
        journal = payment.journal(
            JournalKind.CHARGE, rules.money_in(payment.provider, payment.user_id, payment.amount)
        )
    post(tx, [journal], now)


# ---------------------------------------------------------------------------- money back
# Whether money goes back, and how, is decided in payments/owed.py; these only record it.


def record_owed_back(tx: RawTx, charges: Sequence[PaymentMoney], now: datetime) -> None:
    """Charges now owed back to their payers. A hold needs no journal yet: its pending
    authorisation is voided when the provider confirms."""
    post(tx, [p.journal(JournalKind.OWE_BACK, rules.owe_back(p.amount)) for p in charges], now)


def record_returned_to_wallet(tx: RawTx, payments: Sequence[PaymentMoney], now: datetime) -> None:
    """Money owed back went into the payers' wallets at once, with no provider call."""
    credit_wallets(tx, [(p.user_id, p.currency, p.amount) for p in payments], now)
    post(
        tx,
        [
            p.journal(JournalKind.WALLET_REFUND, rules.wallet_refund(p.user_id, p.amount))
            for p in payments
        ],
        now,
    )


# ---------------------------------------------------------------------------- earning


@dataclass(frozen=True, slots=True)
class Earning(PaymentMoney):
    """A payment whose money becomes its merchant's, with the merchant's commission rate."""

    merchant_id: str
    commission_bps: int
    # When the team succeeded: the business instant the money became the merchant's, even when
    # the provider confirms its capture later (the driver's raw value; see ``_earn``).
    ended_at: object = None
    seat_id: str | None = None


_EARNINGS = """
    SELECT p.id, p.user_id, p.provider, p.provider_ref, p.amount, p.currency, p.status,
           p.purpose, p.refund_to, d.merchant_id, m.commission_bps, t.ended_at, p.seat_id
    FROM payments p
    JOIN seats s ON s.id = p.seat_id
    JOIN teams t ON t.id = p.team_id
    JOIN deals d ON d.id = s.deal_id
    JOIN merchants m ON m.id = d.merchant_id
    WHERE {which} AND s.status = :confirmed
"""
# A succeeded team's charges that keep their money earn at once: not those owed back, whether
# their refund is still owed or failed for good and waits with the operators (an end).
CHARGES_OF_TEAM = Sql(
    _EARNINGS.format(
        which="p.team_id = :team_id AND p.status = :charged AND p.pending_action IS NULL"
        " AND p.end_reason IS NULL"
    ),
    confirmed=SeatStatus.CONFIRMED,
    charged=PaymentStatus.CHARGED,
)
CHARGED_PAYMENT = Sql(
    _EARNINGS.format(which="p.id = :id AND p.status = :charged AND p.pending_action IS NULL"),
    confirmed=SeatStatus.CONFIRMED,
    charged=PaymentStatus.CHARGED,
)
CAPTURED_PAYMENT = Sql(
    _EARNINGS.format(which="p.id = :id AND p.status = :captured"),
    confirmed=SeatStatus.CONFIRMED,
    captured=PaymentStatus.CAPTURED,
)


def _earned_at(tx: RawTx, earning: Earning, now: datetime) -> datetime | None:
    """The business instant of an earning: its team's success (None: when it is recorded)."""
    return None if earning.ended_at is None else min(tx.read_instant(earning.ended_at), now)


def _earn(tx: RawTx, earnings: Sequence[Earning], now: datetime) -> None:
    post(
        tx,
        [
            replace(
                e.journal(
                    JournalKind.EARN,
                    rules.earn(e.merchant_id, e.amount, rules.fee_for(e.amount, e.commission_bps)),
                    merchant_id=e.merchant_id,
                ),
                effective_at=_earned_at(tx, e, now),
            )
            for e in earnings
        ],
        now,
    )
    _defer_unredeemed(tx, earnings, now)


# The vouchers of earned seats whose merchant's part waits for their redemption: locked, so that
# a redemption racing this earning either sees the money deferred or finds nothing to defer
# (domain/vouchers.py; vouchers/service.py takes the same lock by its conditional write).
_UNREDEEMED = {"issued": VoucherStatus.ISSUED, "redemption": SettleOn.REDEMPTION}
UNREDEEMED_VOUCHERS = Sql(
    """
    SELECT id, seat_id FROM vouchers
    WHERE seat_id IN_LIST(:seat_ids) AND status = :issued AND settle_on = :redemption
    ORDER BY id
""",
    **_UNREDEEMED,
)
UNREDEEMED_VOUCHERS_LOCKED = Sql(UNREDEEMED_VOUCHERS.text + " FOR UPDATE", **_UNREDEEMED)
COUNT_VOUCHER_MOVE = Sql("UPDATE vouchers SET moves = moves + 1 WHERE id = :id RETURNING moves")


def voucher_journal(
    voucher_id: str,
    move: int,
    kind: JournalKind,
    payment: PaymentMoney,
    merchant_id: str,
    amount: int,
) -> NewJournal:
    """A voucher's money movement between the merchant's payable and its unredeemed money."""
    entries = (
        rules.voucher_deferred(merchant_id, amount)
        if kind is JournalKind.VOUCHER_DEFERRED
        else rules.voucher_released(merchant_id, amount)
    )
    return replace(
        payment.journal(kind, entries, merchant_id=merchant_id),
        id=f"{voucher_id}:{kind.value}:{move}",
        amount=amount,
    )


def _defer_unredeemed(tx: RawTx, earnings: Sequence[Earning], now: datetime) -> None:
    by_seat = {e.seat_id: e for e in earnings if e.seat_id}
    if not by_seat:
        return
    sql = UNREDEEMED_VOUCHERS if tx.sqlite else UNREDEEMED_VOUCHERS_LOCKED
    journals = []
    for voucher_id, seat_id in tx.all(sql, {"seat_ids": sorted(by_seat)}):
        e = by_seat[seat_id]
        part = e.amount - rules.fee_for(e.amount, e.commission_bps)
        if part <= 0:
            continue
        move = int(tx.scalar(COUNT_VOUCHER_MOVE, {"id": voucher_id}))
        deferred = voucher_journal(
            voucher_id, move, JournalKind.VOUCHER_DEFERRED, e, e.merchant_id, part
        )
        # Dated with the earning it holds back, so no statement shows the part as payable.
        journals.append(replace(deferred, effective_at=_earned_at(tx, e, now)))
    post(tx, journals, now)


def earn_team_charges(tx: RawTx, charges: Sequence[Earning], now: datetime) -> None:
    """A team succeeded: its charged seats' money (``CHARGES_OF_TEAM``'s rows, which the caller
    reads with its own) becomes the merchant's, less the fee."""
    _earn(tx, charges, now)


def earn_charge(tx: RawTx, payment_id: str, now: datetime) -> None:
    """A confirmed seat was paid again by a charge: its money becomes the merchant's, less the
    fee, dated when the team succeeded (a late entry, settled as an adjustment)."""
    _earn(tx, tx.all_as(Earning, CHARGED_PAYMENT, {"id": payment_id}), now)


# ---------------------------------------------------------------------------- provider results

DECIDE_AUTHORIZATION = Sql(
    """
    UPDATE ledger_journals SET status = :status, decided_at = :now
    WHERE id = :id AND status = :pending
""",
    pending=JournalStatus.PENDING,
)
# What the provider took, when it was not what we asked (payments/endings.py), is what moved.
PAYMENT_MONEY = Sql("""
    SELECT id, user_id, provider, provider_ref, COALESCE(taken_amount, amount) AS amount,
        currency, status, purpose, refund_to
    FROM payments WHERE id = :id
""")


def record_provider_result(
    tx: RawTx, payment_id: str, action: ProviderAction, now: datetime
) -> None:
    """The provider confirmed a capture, void or refund (the payment's status just changed)."""
    at = tx.instant(now)
    authorization = journal_id(payment_id, JournalKind.AUTHORIZE)
    if action is ProviderAction.CAPTURE:
        tx.execute(
            DECIDE_AUTHORIZATION,
            {"id": authorization, "status": JournalStatus.POSTED.value, "now": at},
        )
        _earn(tx, tx.all_as(Earning, CAPTURED_PAYMENT, {"id": payment_id}), now)
    elif action is ProviderAction.VOID:
        tx.execute(
            DECIDE_AUTHORIZATION,
            {"id": authorization, "status": JournalStatus.VOIDED.value, "now": at},
        )
    elif action is ProviderAction.REFUND:
        payment = tx.one_as(PaymentMoney, PAYMENT_MONEY, {"id": payment_id})
        assert payment is not None  # its status just changed in this transaction
        post(
            tx,
            [
                payment.journal(
                    JournalKind.REFUND,
                    rules.refund(payment.provider, payment.user_id, payment.amount),
                )
            ],
            now,
        )
    else:
        raise ValueError(f"no journal records a provider {action!r}")


# ---------------------------------------------------------------------------- payouts

MERCHANT_CURRENCY = Sql("SELECT currency FROM merchants WHERE id = :id")
LOCK_MERCHANT = Sql("SELECT id FROM merchants WHERE id = :id FOR UPDATE")
ACCOUNT_BALANCE = Sql(
    """
    SELECT COALESCE(SUM(e.amount), 0) AS balance FROM ledger_entries e
    JOIN ledger_journals j ON j.id = e.journal_id
    WHERE e.account = :account AND e.currency = :currency AND j.status = :posted
""",
    posted=JournalStatus.POSTED,
)


def merchant_payable(tx: RawTx, merchant_id: str, currency: str) -> int:
    """What the platform owes the merchant now (credit balance of its payable account)."""
    account = rules.MERCHANT_PAYABLE.format(merchant_id=merchant_id)
    return -int(tx.scalar(ACCOUNT_BALANCE, {"account": account, "currency": currency}))


def record_payout(
    tx: RawTx, merchant_id: str, amount: int, currency: str, now: datetime
) -> NewJournal:
    """Money sent to the merchant; never more than it is owed."""
    if tx.scalar(MERCHANT_CURRENCY, {"id": merchant_id}) is None:
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    if not tx.sqlite:
        tx.execute(LOCK_MERCHANT, {"id": merchant_id})  # one payout at a time per merchant
    owed = merchant_payable(tx, merchant_id, currency)
    if amount > owed:
        raise InvalidInput(
            f"The merchant is owed {owed} minor units of {currency}; a payout cannot exceed it.",
            code="payout_exceeds_balance",
            extra={"errors": [{"field": "amount", "message": f"at most {owed}"}]},
        )
    journal = NewJournal(
        id=new_id("jnl"),
        kind=JournalKind.PAYOUT,
        status=JournalStatus.POSTED,
        currency=currency,
        amount=amount,
        entries=rules.payout(merchant_id, amount),
        merchant_id=merchant_id,
    )
    post(tx, [journal], now)
    return journal
