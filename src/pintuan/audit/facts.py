"""The audit that recomputes from facts, never from a copy of what it checks.

* Each journal against its own entries and its kind's declared shape (``domain/ledger_shapes``):
  sums, the header amount against the entries' gross, one currency, the accounts and sides its
  kind writes, whose accounts they are, and the payment row's amount.
* Each fee against the merchant's commission rate in force when it was taken.
* Each account's balance against the sign it may have.
* Holds: captured + voided + still held = authorised, from the payment rows and the provider's
  own records (the sandbox keeps them in this database), each payment against its journals.
* Each settlement statement re-added from the entries of the journals it claims, its closing
  balance from all the journals claimed so far; and no journal left outside every statement.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pintuan.domain.ledger import fee_for
from pintuan.domain.ledger_shapes import (
    ACCOUNTS,
    SHAPES,
    Allowed,
    PaymentAmount,
    family,
    on_normal_side,
    owner,
    shape_breaches,
)
from pintuan.ledger.models import (
    CommissionRate,
    Entry,
    Journal,
    SettlementLine,
    SettlementStatement,
)
from pintuan.ledger.settlement import ClaimedJournal, day_bounds, figures_of
from pintuan.merchants.models import Merchant
from pintuan.payments.models import Payment
from pintuan.payments.providers.sandbox import SandboxIntent, SandboxOperation
from pintuan.payments.refund_models import Refund

JOURNALS = "10 journals recompute from their entries"
FEES = "10 fees at the rate in force"
SIGNS = "10 account balances keep their sign"
HOLDS = "6 captured + voided + held = authorised"
EARNED_ONCE = "6 a seat's money is earned once"
STATEMENTS = "10 statements re-add from entries"

# A statement claims everything committed before it; a journal recorded this much before a
# statement and still on none was skipped (its writer's instant may precede its commit).
COMMIT_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Finding:
    invariant: str
    detail: str


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass
class _Journal:
    id: str
    kind: str
    status: str
    currency: str
    amount: int
    payment_id: str | None
    merchant_id: str | None
    user_id: str | None
    provider: str | None
    created_at: datetime
    effective_at: datetime
    entries: list[tuple[str, str, int]]  # account, currency, amount

    @property
    def gross(self) -> int:
        return sum(a for _, _, a in self.entries if a > 0)

    def moved(self, account_family: str) -> int:
        return sum(a for account, _, a in self.entries if family(account) == account_family)


def check_facts(session: Session) -> list[Finding]:
    """Every finding of the recomputing audit, in a stable order; empty when sound."""
    journals = _journals(session)
    payments = {
        row.id: row
        for row in session.execute(
            select(
                Payment.id,
                Payment.style,
                Payment.status,
                Payment.pending_action,
                # What the provider took, where it was not what was asked (its journals say so).
                func.coalesce(Payment.taken_amount, Payment.amount).label("amount"),
                Payment.currency,
                Payment.provider,
                Payment.provider_ref,
                Payment.seat_id,
                # A payment with the operators has an outcome we do not know yet (a call's answer
                # lost past its last attempt): the provider may well have done what we asked.
                (Payment.queued_at.is_not(None) & Payment.resolved_at.is_(None)).label(
                    "with_operators"
                ),
            )
        )
    }
    found: list[Finding] = []
    found += _journals_recompute(journals, payments)
    found += _fees_at_rate_in_force(session, journals)
    found += _account_signs(journals)
    found += _holds_and_refunds_agree(session, journals, payments)
    found += _seats_earned_once(journals, payments)
    found += _statements_re_add(session, journals)
    return found


def _journals(session: Session) -> dict[str, _Journal]:
    journals = {
        row.id: _Journal(
            row.id,
            row.kind,
            row.status,
            row.currency,
            row.amount,
            row.payment_id,
            row.merchant_id,
            row.user_id,
            row.provider,
            _aware(row.created_at),
            _aware(row.effective_at or row.created_at),
            [],
        )
        for row in session.execute(
            select(
                Journal.id,
                Journal.kind,
                Journal.status,
                Journal.currency,
                Journal.amount,
                Journal.payment_id,
                Journal.merchant_id,
                Journal.user_id,
                Journal.provider,
                Journal.created_at,
                Journal.effective_at,
            )
        )
    }
    orphans: set[str] = set()
    for journal_id, account, currency, amount in session.execute(
        select(Entry.journal_id, Entry.account, Entry.currency, Entry.amount).order_by(Entry.id)
    ):
        journal = journals.get(journal_id)
        if journal is None:
            orphans.add(journal_id)
            continue
        journal.entries.append((account, currency, int(amount)))
    return journals


def _journals_recompute(journals: dict[str, _Journal], payments: dict[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    for j in sorted(journals.values(), key=lambda j: j.id):

        def add(detail: str, j: _Journal = j) -> None:
            found.append(Finding(JOURNALS, f"journal {j.id} ({j.kind}): {detail}"))

        if not j.entries:
            add("has no entries")
            continue
        sums: dict[str, int] = defaultdict(int)
        for _, currency, amount in j.entries:
            sums[currency] += amount
        for currency, total in sorted(sums.items()):
            if currency != j.currency:
                add(f"has entries in {currency}, the journal is in {j.currency}")
            if total != 0:
                add(f"is off by {total} {currency}")
        owners = {"merchant_id": j.merchant_id, "user_id": j.user_id, "provider": j.provider}
        for detail in shape_breaches(
            j.kind, j.status, j.amount, [(a, amt) for a, _, amt in j.entries], owners
        ):
            add(detail)
        shape = SHAPES.get(j.kind)
        if shape is None or shape.payment is PaymentAmount.NONE:
            continue
        payment = payments.get(j.payment_id or "")
        if payment is None:
            add(f"names payment {j.payment_id}, which does not exist")
            continue
        paid = int(payment.amount)
        if payment.currency != j.currency:
            add(f"is in {j.currency}, its payment in {payment.currency}")
        if shape.payment is PaymentAmount.EQUAL and j.gross != paid:
            add(f"moves {j.gross}, its payment is for {paid}")
        elif shape.payment is PaymentAmount.AT_MOST and j.gross > paid:
            add(f"moves {j.gross}, more than its payment's {paid}")
    return found


def _fees_at_rate_in_force(session: Session, journals: dict[str, _Journal]) -> list[Finding]:
    rates: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for merchant_id, since, bps in session.execute(
        select(
            CommissionRate.merchant_id,
            CommissionRate.effective_from,
            CommissionRate.commission_bps,
        ).order_by(CommissionRate.merchant_id, CommissionRate.effective_from)
    ):
        rates[merchant_id].append((_aware(since), int(bps)))
    found: list[Finding] = []
    for j in sorted(journals.values(), key=lambda j: j.id):
        shape = SHAPES.get(j.kind)
        if shape is None or not shape.fee or j.status != "posted":
            continue
        known = rates.get(j.merchant_id or "", [])
        # The rate in force then; a fee dated before the merchant's first rate (a clock set
        # back in a test or a demo) is held to that first rate.
        in_force = [bps for since, bps in known if since <= j.created_at] or [
            bps for _, bps in known[:1]
        ]
        if not in_force:
            found.append(Finding(FEES, f"journal {j.id}: merchant {j.merchant_id} had no rate"))
            continue
        expected = fee_for(j.gross, in_force[-1])
        fee, to_merchant = -j.moved("platform_fees"), -j.moved("merchant_payable")
        if (fee, to_merchant) != (expected, j.gross - expected):
            found.append(
                Finding(
                    FEES,
                    f"journal {j.id}: fee {fee} and {to_merchant} to the merchant of "
                    f"{j.gross}; at {in_force[-1]} basis points the fee is {expected}",
                )
            )
    return found


def _account_signs(journals: dict[str, _Journal]) -> list[Finding]:
    balances: dict[tuple[str, str], int] = defaultdict(int)
    overdrawn_by_dispute: set[str] = set()
    for j in journals.values():
        if j.status != "posted":
            continue
        shape = SHAPES.get(j.kind)
        if shape is not None and shape.may_overdraw_merchant and j.merchant_id:
            overdrawn_by_dispute.add(j.merchant_id)
        for account, currency, amount in j.entries:
            balances[(account, currency)] += amount
    found: list[Finding] = []
    for (account, currency), total in sorted(balances.items()):
        rule = ACCOUNTS.get(family(account))
        if rule is None:
            found.append(Finding(SIGNS, f"{account} has no declared sign"))
            continue
        balance = on_normal_side(rule, total)
        if rule.allowed is Allowed.NOT_NEGATIVE and balance < 0:
            if family(account) == "merchant_payable" and owner(account) in overdrawn_by_dispute:
                continue
            found.append(Finding(SIGNS, f"{account} stands at {balance} {currency} ({rule.why})"))
    return found


def _seats_earned_once(journals: dict[str, _Journal], payments: dict[str, Any]) -> list[Finding]:
    """A seat is paid for once: however many payments reached it (a friend's as well as its
    shopper's, a second checkout), one at most is its merchant's; the others go back."""
    earned: dict[str, set[str]] = defaultdict(set)
    for j in journals.values():
        if j.kind == "earn" and j.status == "posted" and j.payment_id in payments:
            seat_id = payments[j.payment_id].seat_id
            if seat_id is not None:
                earned[seat_id].add(j.payment_id)
    return [
        Finding(EARNED_ONCE, f"seat {seat_id}: earned by payments {', '.join(sorted(paid))}")
        for seat_id, paid in sorted(earned.items())
        if len(paid) > 1
    ]


_HELD_STATUS = {"pending": "authorized", "posted": "captured", "voided": "voided"}


def _holds_and_refunds_agree(
    session: Session, journals: dict[str, _Journal], payments: dict[str, Any]
) -> list[Finding]:
    intents = {
        row.payment_id: row
        for row in session.execute(
            select(
                SandboxIntent.ref,
                SandboxIntent.payment_id,
                SandboxIntent.amount,
                SandboxIntent.style,
                SandboxIntent.status,
            )
        )
    }
    operations: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for ref, kind, count, total in session.execute(
        select(
            SandboxOperation.ref,
            SandboxOperation.kind,
            func.count(),
            func.coalesce(func.sum(SandboxOperation.amount), 0),
        ).group_by(SandboxOperation.ref, SandboxOperation.kind)
    ):
        operations[ref][kind] = (int(count), int(total))
    # Money the provider moved before its news can have reached us: refunds made in its own
    # dashboard, disputes, refunds that came back, and our refunds after success between its
    # call and their journal. Ours may lag behind these (reconciliation finds any that never
    # arrive), never run ahead.
    news_on_the_way = set(
        session.scalars(
            select(SandboxOperation.ref).where(
                SandboxOperation.kind.in_(("dispute", "reinstate", "returned"))
                | (
                    (SandboxOperation.kind == "refund")
                    & SandboxOperation.idempotency_key.like("dash%")
                )
            )
        )
    )
    refunds_pending = set(
        session.scalars(select(Refund.payment_id).where(Refund.status == "pending"))
    )
    by_payment: dict[str, list[_Journal]] = defaultdict(list)
    for j in journals.values():
        if j.payment_id:
            by_payment[j.payment_id].append(j)
    found: list[Finding] = []
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for payment_id, p in sorted(payments.items()):

        def add(detail: str, p: Any = p) -> None:
            found.append(Finding(HOLDS, f"payment {p.id} ({p.status}): {detail}"))

        mine = by_payment.get(payment_id, [])
        holds = [j for j in mine if j.kind == "authorize"]
        if p.style == "hold" and p.status in _HELD_STATUS.values():
            if len(holds) != 1:
                add(f"has {len(holds)} authorisations")
            elif _HELD_STATUS[holds[0].status] != p.status:
                add(f"its authorisation is {holds[0].status}")
        intent = intents.get(payment_id) if p.provider == "sandbox" else None
        if intent is None:
            continue
        done = operations.get(intent.ref, {})
        captures, captured = done.get("capture", (0, 0))
        voids, _ = done.get("void", (0, 0))
        _, refunded = done.get("refund", (0, 0))
        _, returned = done.get("returned", (0, 0))  # a refund that came back to us
        _, disputed = done.get("dispute", (0, 0))
        _, reinstated = done.get("reinstate", (0, 0))
        # Until the payer's approval reaches us (a notice, or the poll) we cannot know the sum
        # the provider took; once it has, the payment records it as what was taken. A checkout
        # whose polls ran out (failed, no news) may still be approved at the provider, and
        # that news is taken in as well.
        if intent.amount != p.amount and p.status not in ("requires_action", "failed"):
            add(f"the provider holds {intent.amount} for {p.amount}")
        if intent.style == "hold" and intent.status not in ("requires_action", "declined"):
            # The provider's own story must add up: each hold ends once, captured or voided.
            held = intent.amount if intent.status == "authorized" else 0
            # A hold the provider let go (its time ran out) is released as a void's is.
            released = intent.amount if voids or intent.status == "expired" else 0
            decided = captured + released + held
            money = totals[p.currency]
            money[0] += intent.amount
            money[1] += captured
            money[2] += released
            money[3] += held
            if captures > 1 or voids > 1 or (captures and voids) or decided != intent.amount:
                add(
                    f"the provider captured {captured} in {captures}, voided {voids} times, "
                    f"holds {held}: {decided} != authorised {intent.amount}"
                )
            in_flight = p.status == "authorized" and (
                p.pending_action in ("capture", "void") or p.with_operators
            )
            if p.status == "captured" and (captures, captured) != (1, p.amount):
                add(f"the provider captured {captured} in {captures}")
            if p.status == "voided" and voids != 1 and intent.status != "expired":
                add("the provider never voided it")
            if (captures or voids) and p.status == "authorized" and not in_flight:
                add("the provider decided a hold nobody asked it to")
        # Money at the provider for this payment, by our ledger and by its records.
        ours_in = sum(
            a
            for j in mine
            if j.status == "posted"
            for account, _, a in j.entries
            if family(account) == "provider_clearing" and a > 0
        )
        ours_out = -sum(
            a
            for j in mine
            if j.status == "posted"
            for account, _, a in j.entries
            if family(account) == "provider_clearing" and a < 0
        )
        theirs_in = (
            captured
            if intent.style == "hold"
            else (intent.amount if intent.status in ("charged", "refunded") else 0)
        ) + (returned + reinstated)
        theirs_out = refunded + disputed
        lagging = intent.ref in news_on_the_way or payment_id in refunds_pending
        if ours_in > theirs_in or (
            ours_in < theirs_in
            and p.status not in ("requires_action", "failed")
            and p.pending_action not in ("capture", "poll")
            and not p.with_operators
            and not lagging  # a dispute won gives money back before its notice reaches us
        ):
            add(f"our ledger took in {ours_in} at the provider, its records {theirs_in}")
        # A refund whose answers were lost past its last attempt is with the operators, like a
        # capture: the provider may have made it, and a retry under its key gets the answer.
        if ours_out > theirs_out or (
            ours_out < theirs_out
            and p.pending_action != "refund"
            and not p.with_operators
            and not lagging
        ):
            add(f"our ledger paid back {ours_out} at the provider, its records {theirs_out}")
    for currency, (authorised, captured, voided, held) in sorted(totals.items()):
        if captured + voided + held != authorised:
            found.append(
                Finding(
                    HOLDS,
                    f"{currency} at the provider: captured {captured} + voided {voided} + held "
                    f"{held} != authorised {authorised}",
                )
            )
    return found


def _statements_re_add(session: Session, journals: dict[str, _Journal]) -> list[Finding]:
    zones = {row[0]: row[1] for row in session.execute(select(Merchant.id, Merchant.time_zone))}
    lines: dict[str, list[str]] = defaultdict(list)
    claimed: set[str] = set()
    for journal_id, statement_id in session.execute(
        select(SettlementLine.journal_id, SettlementLine.statement_id)
    ):
        lines[statement_id].append(journal_id)
        claimed.add(journal_id)
    statements = list(
        session.scalars(
            select(SettlementStatement).order_by(
                SettlementStatement.merchant_id,
                SettlementStatement.currency,
                SettlementStatement.day,
            )
        )
    )
    found: list[Finding] = []
    running: dict[tuple[str, str], int] = defaultdict(int)
    for s in statements:

        def add(detail: str, s: SettlementStatement = s) -> None:
            found.append(
                Finding(STATEMENTS, f"statement {s.id} ({s.merchant_id}, {s.day}): {detail}")
            )

        payable = f"merchant_payable:{s.merchant_id}"
        start, end = day_bounds(s.day, zones.get(s.merchant_id, "UTC"))
        mine: list[ClaimedJournal] = []
        for journal_id in sorted(lines.get(s.id, [])):
            j = journals.get(journal_id)
            if j is None:
                add(f"claims journal {journal_id}, which does not exist")
                continue
            moved = sum(a for account, _, a in j.entries if account == payable)
            if j.merchant_id != s.merchant_id or j.currency != s.currency or j.status != "posted":
                add(f"claims journal {j.id} of {j.merchant_id} in {j.currency}, {j.status}")
            if not any(account == payable for account, _, _ in j.entries):
                add(f"claims journal {j.id}, which does not move the merchant's payable")
            if j.effective_at >= end:
                add(f"claims journal {j.id}, dated after the day")
            mine.append(ClaimedJournal(j.id, j.kind, j.currency, j.gross, -moved, j.effective_at))
        figures = figures_of(mine, start)
        running[(s.merchant_id, s.currency)] += sum(c.to_merchant for c in mine)
        stated = (s.orders, s.gross, s.fees, s.net, s.payouts, s.adjustments, s.closing_balance)
        readded = (
            (
                figures.orders,
                figures.gross,
                figures.fees,
                figures.net,
                figures.payouts,
                figures.adjustments,
            )
            if figures is not None
            else (0, 0, 0, 0, 0, 0)
        ) + (running[(s.merchant_id, s.currency)],)
        if stated != readded:
            add(
                "says orders, gross, fees, net, payouts, adjustments, closing "
                f"{stated}; its journals add up to {readded}"
            )
    # Nothing dated before a statement's cutoff and recorded well before it is on no statement.
    latest: dict[tuple[str, str], list[SettlementStatement]] = defaultdict(list)
    for s in statements:
        latest[(s.merchant_id, s.currency)].append(s)
    for j in sorted(journals.values(), key=lambda j: j.id):
        if j.id in claimed or j.status != "posted" or not j.merchant_id:
            continue
        payable = f"merchant_payable:{j.merchant_id}"
        if not any(account == payable for account, _, _ in j.entries):
            continue
        for s in latest.get((j.merchant_id, j.currency), []):
            cutoff = _aware(s.cutoff_at) if s.cutoff_at else day_bounds(s.day, "UTC")[1]
            if j.effective_at < cutoff and _aware(s.created_at) > j.created_at + COMMIT_MARGIN:
                found.append(
                    Finding(
                        STATEMENTS,
                        f"journal {j.id} of {j.merchant_id}, dated {j.effective_at.isoformat()}, "
                        f"is on no statement though {s.id} ({s.day}) came after it",
                    )
                )
                break
    return found
