"""What the Stripe adapter promises before it makes any call: currencies, holds, signatures."""

from __future__ import annotations

from datetime import timedelta

import pytest
import stripe

from pintuan.domain.payments import PaymentStyle
from pintuan.kit.money import exponent, is_currency
from pintuan.payments.providers.stripe import (
    CURRENCIES,
    StripeProvider,
    signature_header,
    stripe_exponent,
)


def test_every_offered_currency_has_the_same_minor_unit_at_stripe_and_in_iso_4217() -> None:
    assert CURRENCIES
    for code in CURRENCIES:
        assert is_currency(code), code
        assert stripe_exponent(code) == exponent(code), code


@pytest.mark.parametrize(
    "code", ["USD", "EUR", "CNY", "JPY", "KRW", "VND", "BHD", "KWD", "HUF", "TWD", "IDR"]
)
def test_common_currencies_are_offered(code: str) -> None:
    offered = StripeProvider.capabilities.currencies

    assert offered is not None
    assert code in offered


@pytest.mark.parametrize(
    "code",
    [
        "ISK",  # zero-decimal in ISO, two-decimal at Stripe
        "MGA",  # two-decimal in ISO, zero-decimal at Stripe
        "UGX",  # Stripe's own rules for it disagree
        "STN",  # Stripe knows it only by its retired code
        "CLF",  # a unit of account nobody is charged in
        "IRR",  # not a currency Stripe charges in
    ],
)
def test_currencies_stripe_counts_differently_or_does_not_charge_in_are_not_offered(
    code: str,
) -> None:
    assert is_currency(code)
    assert code not in CURRENCIES


def test_holds_last_at_most_seven_days_and_both_styles_are_offered() -> None:
    capabilities = StripeProvider.capabilities

    assert capabilities.longest_hold == timedelta(days=7)
    assert capabilities.styles == {PaymentStyle.HOLD, PaymentStyle.CHARGE}
    assert capabilities.partial_refunds
    assert capabilities.checkout_kinds == ("payment_element",)
    assert capabilities.bill_time_zone == "UTC"
    assert StripeProvider.blocking_io


def test_our_signature_is_the_one_stripes_sdk_computes() -> None:
    body = b'{"id": "evt_1", "object": "event", "note": "caf\xc3\xa9"}'

    ours = signature_header("whsec_test", body, 1_795_000_000)

    assert ours == stripe.WebhookSignature.generate_signature_header(
        body.decode(), "whsec_test", 1_795_000_000
    )
