"""Choosing how a provider takes money, the ledger's postings, reconciliation and pay links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pintuan.domain import ledger as rules
from pintuan.domain.payments import (
    Capabilities,
    MoneyBack,
    PaymentStatus,
    PaymentStyle,
    RecordKind,
    money_back,
)
from pintuan.domain.reconciliation import Difference, Movement, reconcile
from pintuan.errors import Conflict, Gone, InvalidInput, NotFound
from pintuan.payments.pay_links import issue_pay_link, read_pay_link
from pintuan.payments.service import check_checkout, choose_style

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def card(longest_hold: timedelta | None, *styles: PaymentStyle) -> Capabilities:
    return Capabilities(
        styles=frozenset(styles or (PaymentStyle.HOLD, PaymentStyle.CHARGE)),
        longest_hold=longest_hold,
        partial_refunds=True,
        currencies=frozenset({"USD", "EUR"}),
        checkout_kinds=("page", "qr"),
    )


def test_a_hold_is_used_when_it_outlasts_the_team_window() -> None:
    choice = choose_style(card(timedelta(days=7)), PaymentStyle.HOLD, NOW + timedelta(days=7), NOW)
    assert choice.style is PaymentStyle.HOLD
    assert choice.note is None


def test_a_team_outliving_the_hold_is_charged_at_once_and_the_answer_says_why() -> None:
    choice = choose_style(card(timedelta(days=2)), PaymentStyle.HOLD, NOW + timedelta(days=3), NOW)
    assert choice.style is PaymentStyle.CHARGE
    assert choice.note is not None
    assert "2-day card hold" in choice.note


def test_a_hold_only_provider_is_refused_when_its_hold_is_too_short() -> None:
    with pytest.raises(Conflict) as refused:
        choose_style(
            card(timedelta(days=1), PaymentStyle.HOLD),
            PaymentStyle.HOLD,
            NOW + timedelta(days=2),
            NOW,
        )
    assert refused.value.code == "hold_too_short"


def test_a_charging_provider_always_charges() -> None:
    choice = choose_style(card(None), PaymentStyle.CHARGE, NOW + timedelta(days=30), NOW)
    assert choice.style is PaymentStyle.CHARGE


def test_checkout_kinds_and_currencies_are_the_providers_own() -> None:
    assert check_checkout(card(None), "USD", None) == "page"
    assert check_checkout(card(None), "EUR", "qr") == "qr"
    with pytest.raises(InvalidInput) as kind:
        check_checkout(card(None), "USD", "jsapi")
    with pytest.raises(InvalidInput) as currency:
        check_checkout(card(None), "CNY", None)
    assert kind.value.code == "invalid_checkout_kind"
    assert currency.value.code == "currency_not_supported"


def test_a_hold_is_voided_and_a_charge_refunded_by_its_provider() -> None:
    assert money_back(PaymentStatus.AUTHORIZED, "stripe", "original") is MoneyBack.VOID
    assert money_back(PaymentStatus.CHARGED, "alipay", "original") is MoneyBack.REFUND


def test_money_goes_back_to_the_wallet_at_once_when_paid_from_it_or_asked_for() -> None:
    assert money_back(PaymentStatus.CHARGED, "wallet", "original") is MoneyBack.TO_WALLET
    assert money_back(PaymentStatus.CHARGED, "wechatpay", "wallet") is MoneyBack.TO_WALLET
    # A hold has taken nothing yet: it is let go at the provider, never paid into the wallet.
    assert money_back(PaymentStatus.AUTHORIZED, "stripe", "wallet") is MoneyBack.VOID


@pytest.mark.parametrize(
    "status",
    [s for s in PaymentStatus if s not in (PaymentStatus.AUTHORIZED, PaymentStatus.CHARGED)],
)
def test_only_a_hold_or_a_charge_has_money_to_give_back(status: PaymentStatus) -> None:
    with pytest.raises(ValueError, match="no money to give back"):
        money_back(status, "sandbox", "original")


@given(amount=st.integers(0, 10**12), bps=st.integers(0, 10_000))
def test_every_posting_balances_and_the_fee_never_exceeds_the_amount(amount: int, bps: int) -> None:
    fee = rules.fee_for(amount, bps)
    assert 0 <= fee <= amount
    assert abs(fee * 10_000 - amount * bps) <= 5_000  # rounded to the nearest minor unit
    for entries in (
        rules.money_in("stripe", "usr_1", amount),
        rules.money_in("wallet", "usr_1", amount),
        rules.earn("mch_1", amount, fee),
        rules.owe_back(amount),
        rules.refund("alipay", "usr_1", amount),
        rules.wallet_refund("usr_1", amount),
        rules.topup("wechatpay", "usr_1", amount),
        rules.payout("mch_1", amount),
    ):
        rules.require_balanced(entries)


def test_paying_from_the_wallet_takes_money_out_of_it() -> None:
    entries = rules.money_in("wallet", "usr_1", 500)
    assert rules.Entry("wallet:usr_1", 500) in entries  # a debit lowers what we owe the shopper
    assert rules.normal_balance("wallet:usr_1", -1500) == 1500
    assert rules.normal_balance("provider_clearing:stripe", 1500) == 1500


def movement(
    ref: str, amount: int, kind: RecordKind = RecordKind.PAYMENT, src: str = "x"
) -> Movement:
    return Movement(ref, kind, amount, "USD", src)


def test_reconciliation_pairs_equal_items_and_names_every_difference() -> None:
    ours = [
        movement("pi_1", 100),
        movement("pi_2", 200),
        movement("pi_3", 300),
        movement("pi_4", 50, RecordKind.REFUND),
        movement("pi_4", 25, RecordKind.REFUND),
    ]
    theirs = [
        movement("pi_1", 100),
        movement("pi_2", 201),
        movement("pi_5", 500),
        movement("pi_4", 25, RecordKind.REFUND),
        movement("pi_4", 50, RecordKind.REFUND),
    ]

    result = reconcile(ours, theirs)

    assert result.matched == 3
    assert {(f.difference, f.provider_ref) for f in result.findings} == {
        (Difference.DIFFERENT, "pi_2"),
        (Difference.EXTRA, "pi_3"),
        (Difference.MISSING, "pi_5"),
    }


def test_a_pay_link_names_its_seat_until_the_hold_ends_and_cannot_be_forged() -> None:
    expires = NOW + timedelta(minutes=10)
    token = issue_pay_link("secret-one", "seat_1", expires)

    assert read_pay_link("secret-one", token, NOW) == ("seat_1", expires)
    with pytest.raises(NotFound):
        read_pay_link("secret-two", token, NOW)
    with pytest.raises(NotFound):
        read_pay_link("secret-one", "not-a-token", NOW)
    with pytest.raises(Gone):
        read_pay_link("secret-one", token, expires)
