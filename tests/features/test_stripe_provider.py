"""The Stripe adapter, through the official SDK, against a fake of Stripe's API on loopback."""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import stripe

from pintuan.domain.payments import (
    CheckoutRequest,
    EventKind,
    PaymentStyle,
    ProviderError,
    RecordKind,
    WebhookRejected,
)
from pintuan.payments.providers.stripe import StripeProvider
from tests.fakes.loopback import QuietHandler, serving
from tests.fakes.stripe_api import FakeStripe, running_fake_stripe

PUBLISHABLE_KEY = "pk_test_pintuan"
CLIENT_TIMEOUT = 0.5  # seconds; the fake's "hang" answers after 2


@pytest.fixture(scope="module")
def served_fake() -> Iterator[FakeStripe]:
    with running_fake_stripe(hang_seconds=2.0) as fake:
        yield fake


@pytest.fixture
def fake(served_fake: FakeStripe) -> FakeStripe:
    served_fake.reset()
    return served_fake


@pytest.fixture
def provider(fake: FakeStripe) -> StripeProvider:
    return StripeProvider(
        secret_key=fake.secret_key,
        webhook_secret=fake.webhook_secret,
        publishable_key=PUBLISHABLE_KEY,
        api_base=fake.base_url,
        timeout_seconds=CLIENT_TIMEOUT,
    )


_payment_ids = itertools.count(1)


def checkout(
    provider: StripeProvider,
    *,
    style: PaymentStyle = PaymentStyle.HOLD,
    amount: int = 1500,
    currency: str = "USD",
    payment_id: str | None = None,
) -> str:
    """A new checkout (of a new payment unless ``payment_id`` is given); its intent's id."""
    made = provider.create_checkout(
        CheckoutRequest(
            payment_id or f"pay_{next(_payment_ids)}",
            amount,
            currency,
            style,
            "Seat in a dumpling team",
        )
    )
    return made.provider_ref


def authorized(provider: StripeProvider, fake: FakeStripe, amount: int = 1500) -> str:
    """A hold the shopper has confirmed."""
    ref = checkout(provider, amount=amount)
    fake.confirm(ref)
    return ref


def charged(provider: StripeProvider, fake: FakeStripe, amount: int = 2000) -> str:
    """A charge the shopper has paid."""
    ref = checkout(provider, style=PaymentStyle.CHARGE, amount=amount)
    fake.confirm(ref)
    return ref


# ------------------------------------------------------------------ checkout


def test_a_hold_checkout_is_a_manual_capture_intent_finished_by_the_payment_element(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    made = provider.create_checkout(
        CheckoutRequest("pay_hold", 1500, "USD", PaymentStyle.HOLD, "Seat")
    )

    intent = fake.intents[made.provider_ref]
    assert intent["capture_method"] == "manual"
    assert (intent["amount"], intent["currency"]) == (1500, "usd")
    assert intent["metadata"] == {"payment_id": "pay_hold"}
    assert made.url is None
    assert made.qr_code is None
    assert made.client_params == {
        "client_secret": intent["client_secret"],
        "publishable_key": PUBLISHABLE_KEY,
    }
    assert fake.idempotency_keys == ["pay_hold:create"]


def test_a_charge_checkout_captures_automatically(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = checkout(provider, style=PaymentStyle.CHARGE, amount=500, currency="JPY")

    assert fake.intents[ref]["capture_method"] == "automatic"
    assert (fake.intents[ref]["amount"], fake.intents[ref]["currency"]) == (500, "jpy")


def test_asking_twice_for_the_same_payments_checkout_makes_one_intent(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    first = checkout(provider, payment_id="pay_same")
    second = checkout(provider, payment_id="pay_same")

    assert first == second
    assert len(fake.intents) == 1
    assert fake.calls["payment_intents.create"] == 2


# ------------------------------------------------------------------ capture, void, refund


def test_capturing_a_hold_takes_the_amount(provider: StripeProvider, fake: FakeStripe) -> None:
    ref = authorized(provider, fake, amount=1500)

    provider.capture(ref, 1200, "pay_1:capture")

    intent = fake.intents[ref]
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 1200)
    assert fake.captures_of(ref) == 1


def test_the_same_capture_twice_captures_once(provider: StripeProvider, fake: FakeStripe) -> None:
    ref = authorized(provider, fake)

    provider.capture(ref, 1500, "pay_1:capture")
    provider.capture(ref, 1500, "pay_1:capture")

    assert fake.calls["payment_intents.capture"] == 2
    assert fake.performed["payment_intents.capture"] == 1
    assert fake.captures_of(ref) == 1


def test_a_capture_retried_after_its_key_was_forgotten_counts_as_done(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = authorized(provider, fake)
    provider.capture(ref, 1500, "pay_1:capture")

    provider.capture(ref, 1500, "pay_1:capture-again")

    assert fake.captures_of(ref) == 1


def test_capturing_a_cancelled_hold_fails(provider: StripeProvider, fake: FakeStripe) -> None:
    ref = authorized(provider, fake)
    provider.void(ref, "pay_1:void")

    with pytest.raises(ProviderError, match="payment_intent_unexpected_state"):
        provider.capture(ref, 1500, "pay_1:capture")

    assert fake.intents[ref]["status"] == "canceled"


def test_voiding_a_hold_cancels_it_and_a_second_void_counts_as_done(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = authorized(provider, fake)

    provider.void(ref, "pay_1:void")
    provider.void(ref, "pay_1:void-again")

    assert fake.intents[ref]["status"] == "canceled"
    assert fake.performed["payment_intents.cancel"] == 1


def test_voiding_a_captured_payment_fails(provider: StripeProvider, fake: FakeStripe) -> None:
    ref = authorized(provider, fake)
    provider.capture(ref, 1500, "pay_1:capture")

    with pytest.raises(ProviderError, match="payment_intent_unexpected_state"):
        provider.void(ref, "pay_1:void")

    assert fake.intents[ref]["status"] == "succeeded"


def test_refunds_may_be_partial_and_never_exceed_the_charge(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = charged(provider, fake, amount=2000)

    provider.refund(ref, 500, "pay_2:refund-difference")
    provider.refund(ref, 500, "pay_2:refund-difference")
    with pytest.raises(ProviderError, match="amount_too_large"):
        provider.refund(ref, 1600, "pay_2:refund-too-much")
    provider.refund(ref, 1500, "pay_2:refund")

    assert [r["amount"] for r in fake.refunds_of(ref)] == [500, 1500]


def test_a_refund_of_a_fully_refunded_charge_counts_as_done(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = charged(provider, fake, amount=2000)
    provider.refund(ref, 2000, "pay_2:refund")

    provider.refund(ref, 2000, "pay_2:refund-after-the-key-expired")

    assert [r["amount"] for r in fake.refunds_of(ref)] == [2000]


def test_refunding_a_hold_that_was_never_captured_fails(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = authorized(provider, fake)

    with pytest.raises(ProviderError, match="charge_not_refundable"):
        provider.refund(ref, 1500, "pay_1:refund")


# ------------------------------------------------------------------ outages


@pytest.mark.parametrize("how", ["500", "hang"])
def test_a_failed_capture_raises_and_its_retry_captures_exactly_once(
    provider: StripeProvider, fake: FakeStripe, how: str
) -> None:
    ref = authorized(provider, fake)
    fake.fail_next("payment_intents.capture", how=how)

    started = time.monotonic()
    with pytest.raises(ProviderError):
        provider.capture(ref, 1500, "pay_1:capture")
    waited = time.monotonic() - started
    provider.capture(ref, 1500, "pay_1:capture")

    assert waited < CLIENT_TIMEOUT + 1  # it gave up after its timeout, not the fake's delay
    assert fake.calls["payment_intents.capture"] == 2
    assert fake.captures_of(ref) == 1
    assert fake.intents[ref]["status"] == "succeeded"


@pytest.mark.parametrize("how", ["500", "hang"])
def test_a_failed_refund_raises_and_its_retry_refunds_exactly_once(
    provider: StripeProvider, fake: FakeStripe, how: str
) -> None:
    ref = charged(provider, fake, amount=2000)
    fake.fail_next("refunds.create", how=how)

    with pytest.raises(ProviderError):
        provider.refund(ref, 2000, "pay_2:refund")
    provider.refund(ref, 2000, "pay_2:refund")

    # A refund made by the call whose answer never came is found under its key, not made again
    assert fake.calls["refunds.create"] == (2 if how == "500" else 1)
    assert [r["amount"] for r in fake.refunds_of(ref)] == [2000]


def test_a_failed_void_raises_and_its_retry_cancels(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = authorized(provider, fake)
    fake.fail_next("payment_intents.cancel", times=2)

    for _ in range(2):
        with pytest.raises(ProviderError, match="HTTP 500"):
            provider.void(ref, "pay_1:void")
    provider.void(ref, "pay_1:void")

    assert fake.intents[ref]["status"] == "canceled"


def test_a_failed_checkout_raises_provider_error(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    fake.fail_next("payment_intents.create")

    with pytest.raises(ProviderError, match="create a payment intent"):
        checkout(provider)


def test_an_unreachable_stripe_is_a_provider_error(fake: FakeStripe) -> None:
    with serving(QuietHandler) as base_url:
        pass  # the port is closed again: nothing answers there now
    unreachable = StripeProvider(
        secret_key=fake.secret_key, webhook_secret=None, api_base=base_url, timeout_seconds=0.5
    )

    with pytest.raises(ProviderError, match="APIConnectionError"):
        unreachable.capture("pi_123", 100, "pay_1:capture")


def test_a_wrong_secret_key_is_a_provider_error(fake: FakeStripe) -> None:
    wrong = StripeProvider(
        secret_key="sk_test_not_the_right_one_at_all",
        webhook_secret=None,
        api_base=fake.base_url,
        timeout_seconds=0.5,
    )

    with pytest.raises(ProviderError, match="AuthenticationError") as refused:
        wrong.void("pi_123", "pay_1:void")

    assert "sk_test_not_the_right_one_at_all" not in str(refused.value)


# ------------------------------------------------------------------ webhooks

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def signed(fake: FakeStripe, body: bytes, at: datetime = NOW, **kw: str) -> dict[str, str]:
    return {"Stripe-Signature": fake.sign(body, timestamp=int(at.timestamp()), **kw)}


def test_an_authorisation_webhook_reads_as_authorized(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = authorized(provider, fake, amount=1500)
    body = fake.event("payment_intent.amount_capturable_updated", ref)

    event = provider.verify_webhook(body, signed(fake, body), NOW)

    assert event.kind is EventKind.AUTHORIZED
    assert event.event_id == json.loads(body)["id"]
    assert event.raw_type == "payment_intent.amount_capturable_updated"
    assert (event.provider_ref, event.amount, event.currency) == (ref, 1500, "USD")


def test_success_reads_as_charged_only_for_automatic_capture(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    charge_ref = charged(provider, fake, amount=2000)
    hold_ref = authorized(provider, fake)
    provider.capture(hold_ref, 1500, "pay_1:capture")
    charge_body = fake.event("payment_intent.succeeded", charge_ref)
    capture_echo = fake.event("payment_intent.succeeded", hold_ref)

    charge = provider.verify_webhook(charge_body, signed(fake, charge_body), NOW)
    echo = provider.verify_webhook(capture_echo, signed(fake, capture_echo), NOW)

    assert (charge.kind, charge.amount, charge.provider_ref) == (
        EventKind.CHARGED,
        2000,
        charge_ref,
    )
    assert (echo.kind, echo.provider_ref) == (EventKind.OTHER, hold_ref)


def test_a_declined_card_reads_as_failed_and_other_events_as_other(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = checkout(provider)
    fake.confirm(ref, succeed=False)
    failed_body = fake.event("payment_intent.payment_failed", ref)
    created_body = fake.event("payment_intent.created", ref)

    failed = provider.verify_webhook(failed_body, signed(fake, failed_body), NOW)
    created = provider.verify_webhook(created_body, signed(fake, created_body), NOW)

    assert (failed.kind, failed.provider_ref) == (EventKind.FAILED, ref)
    assert (created.kind, created.provider_ref) == (EventKind.OTHER, ref)


def test_a_signature_made_by_stripes_own_sdk_is_accepted(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = authorized(provider, fake)
    body = fake.event("payment_intent.amount_capturable_updated", ref)
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), fake.webhook_secret, int(NOW.timestamp())
    )

    event = provider.verify_webhook(body, {"stripe-signature": header}, NOW)

    assert event.kind is EventKind.AUTHORIZED


def test_a_webhook_signed_with_a_rolled_secret_and_the_current_one_is_accepted(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = authorized(provider, fake)
    body = fake.event("payment_intent.amount_capturable_updated", ref)
    old = signed(fake, body, secret="whsec_the_old_one")["Stripe-Signature"]
    current = signed(fake, body)["Stripe-Signature"]
    header = f"{old},v1={current.split('v1=')[1]}"

    assert provider.verify_webhook(body, {"Stripe-Signature": header}, NOW).provider_ref == ref


@pytest.mark.parametrize("offset", [-300, 300])
def test_a_signature_exactly_five_minutes_off_is_still_accepted(
    provider: StripeProvider, fake: FakeStripe, offset: int
) -> None:
    ref = authorized(provider, fake)
    body = fake.event("payment_intent.amount_capturable_updated", ref)

    event = provider.verify_webhook(body, signed(fake, body, NOW + timedelta(seconds=offset)), NOW)

    assert event.provider_ref == ref


def _refusal(provider: StripeProvider, body: bytes, headers: dict[str, str]) -> str:
    with pytest.raises(WebhookRejected) as refused:
        provider.verify_webhook(body, headers, NOW)
    return refused.value.code


def test_webhooks_with_a_bad_or_stale_signature_are_refused(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = authorized(provider, fake)
    body = fake.event("payment_intent.amount_capturable_updated", ref)
    tampered = body.replace(b'"amount": 1500', b'"amount": 1')

    assert tampered != body
    assert _refusal(provider, body, signed(fake, body, secret="whsec_wrong")) == (
        "invalid_signature"
    )
    assert _refusal(provider, tampered, signed(fake, body)) == "invalid_signature"
    assert _refusal(provider, body, signed(fake, body, NOW - timedelta(seconds=301))) == (
        "stale_signature"
    )
    assert _refusal(provider, body, signed(fake, body, NOW + timedelta(seconds=301))) == (
        "stale_signature"
    )


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=,v1=abc",
        "t=12x,v1=abc",
        "v1=abc",
        "t=1795000000",
        "t=1795000000,t=1795000001,v1=abc",
        "t=1795000000,v0=abc",
    ],
)
def test_a_malformed_signature_header_is_refused(
    provider: StripeProvider, fake: FakeStripe, header: str
) -> None:
    body = b'{"id": "evt_1", "type": "payment_intent.created", "data": {"object": {}}}'

    assert _refusal(provider, body, {"Stripe-Signature": header}) == "invalid_signature"
    assert _refusal(provider, body, {}) == "invalid_signature"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"id": "evt_1", "type": "payment_intent.created"}',
        b'{"id": 7, "type": "payment_intent.created", "data": {"object": {}}}',
        b'{"id": "evt_1", "type": "payment_intent.created", "data": {"object": "pi_1"}}',
        b"\xff\xfe",
    ],
)
def test_a_correctly_signed_body_that_is_no_stripe_event_is_refused(
    provider: StripeProvider, fake: FakeStripe, body: bytes
) -> None:
    assert _refusal(provider, body, signed(fake, body)) == "invalid_event"


def test_without_a_webhook_secret_every_webhook_is_refused(fake: FakeStripe) -> None:
    unconfigured = StripeProvider(
        secret_key=fake.secret_key, webhook_secret=None, api_base=fake.base_url
    )
    body = b'{"id": "evt_1", "type": "payment_intent.created", "data": {"object": {}}}'

    assert _refusal(unconfigured, body, signed(fake, body)) == "invalid_signature"


# ------------------------------------------------------------------ polling


def test_polling_reports_news_with_stable_event_ids(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    waiting = checkout(provider, payment_id="pay_wait")
    hold = authorized(provider, fake)
    charge = charged(provider, fake, amount=2000)
    declined = checkout(provider, payment_id="pay_declined")
    fake.confirm(declined, succeed=False)
    cancelled = checkout(provider, payment_id="pay_cancelled")
    provider.void(cancelled, "pay_cancelled:void")

    assert provider.fetch_status(waiting) is None
    first, again = provider.fetch_status(hold), provider.fetch_status(hold)
    assert first is not None
    assert first == again
    assert (first.kind, first.event_id, first.amount, first.currency) == (
        EventKind.AUTHORIZED,
        f"poll:{hold}:authorized",
        1500,
        "USD",
    )
    charged_news = provider.fetch_status(charge)
    assert charged_news is not None
    assert (charged_news.kind, charged_news.amount) == (EventKind.CHARGED, 2000)
    # A cancelled intent is news of its own: a checkout never paid is declined by it, a hold
    # let go has expired (payments/endings.py).
    for ref, kind in ((declined, EventKind.FAILED), (cancelled, EventKind.CANCELED)):
        news = provider.fetch_status(ref)
        assert news is not None
        assert (news.kind, news.event_id, news.provider_ref) == (
            kind,
            f"poll:{ref}:{kind.value}",
            ref,
        )


def test_a_captured_hold_is_no_news_when_polled(provider: StripeProvider, fake: FakeStripe) -> None:
    ref = authorized(provider, fake)
    provider.capture(ref, 1500, "pay_1:capture")

    assert provider.fetch_status(ref) is None


def test_polling_an_unknown_intent_is_a_provider_error(provider: StripeProvider) -> None:
    with pytest.raises(ProviderError, match="resource_missing"):
        provider.fetch_status("pi_unknown")


# ------------------------------------------------------------------ statements

DAY = date(2026, 3, 14)
MIDNIGHT = datetime(2026, 3, 14, tzinfo=UTC).timestamp()


def at(fake: FakeStripe, seconds_after_midnight: float) -> None:
    fake.now = lambda: MIDNIGHT + seconds_after_midnight


def test_a_days_statement_lists_its_payments_and_refunds_across_pages(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    at(fake, -1)
    day_before = charged(provider, fake, amount=999)
    at(fake, 0)
    hold = authorized(provider, fake, amount=1500)
    at(fake, 3600)
    provider.capture(hold, 1500, "pay_1:capture")
    at(fake, 7200)
    charge = charged(provider, fake, amount=2000)
    fake.add_balance_transaction("payout", -3000, "usd")
    at(fake, 86399)
    provider.refund(charge, 400, "pay_2:refund")
    at(fake, 86400)
    provider.refund(day_before, 999, "pay_3:refund")
    fake.page_cap = 2

    records = provider.records_for_day(DAY)

    assert sorted((r.kind, r.provider_ref, r.amount, r.currency) for r in records) == sorted(
        [
            (RecordKind.PAYMENT, hold, 1500, "USD"),
            (RecordKind.PAYMENT, charge, 2000, "USD"),
            (RecordKind.REFUND, charge, 400, "USD"),
        ]
    )
    when = {(r.kind, r.provider_ref): r.occurred_at for r in records}
    assert when[(RecordKind.PAYMENT, hold)] == datetime(2026, 3, 14, 1, 0, tzinfo=UTC)
    assert when[(RecordKind.REFUND, charge)] == datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC)
    assert len({r.record_id for r in records}) == 3
    assert fake.calls["balance_transactions.list"] >= 2  # it really paged


def test_a_statement_states_what_the_shopper_paid_not_the_settled_amount(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    fake.settlement_currency, fake.exchange_rate = "usd", Decimal("0.0065")
    at(fake, 60)
    ref = checkout(provider, style=PaymentStyle.CHARGE, amount=1500, currency="JPY")
    fake.confirm(ref)

    records = provider.records_for_day(DAY)

    assert fake.balance_transactions[-1]["amount"] == 975  # US cents on Stripe's balance
    assert [(r.amount, r.currency) for r in records] == [(1500, "JPY")]


def test_a_failing_statement_download_is_a_provider_error(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    fake.fail_next("balance_transactions.list")

    with pytest.raises(ProviderError):
        provider.records_for_day(DAY)


# ------------------------------------------------------------------ secrets


def test_secrets_stay_out_of_logs_errors_and_reprs(
    provider: StripeProvider, fake: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    made = provider.create_checkout(
        CheckoutRequest("pay_log", 1500, "USD", PaymentStyle.HOLD, "Seat")
    )
    client_secret = (made.client_params or {})["client_secret"]
    fake.confirm(made.provider_ref)
    fake.fail_next("payment_intents.capture")
    with pytest.raises(ProviderError) as failed:
        provider.capture(made.provider_ref, 1500, "pay_log:capture")
    provider.capture(made.provider_ref, 1500, "pay_log:capture")

    written = "\n".join(r.getMessage() for r in caplog.records) + str(failed.value)
    shown = repr(provider)
    assert caplog.records  # the SDK did log its calls
    for secret in (fake.secret_key, fake.webhook_secret, client_secret):
        assert secret not in written
        assert secret not in shown


def test_a_secret_key_echoed_by_the_server_is_redacted_from_the_error() -> None:
    class EchoingServer(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            self.read_body()
            echoed = self.headers.get("Authorization", "")
            body = {"error": {"type": "invalid_request_error", "message": f"Bad key {echoed}"}}
            self.reply(401, json.dumps(body).encode())

    with serving(EchoingServer) as base_url:
        leaky = StripeProvider(
            secret_key="sk_test_echoed_back", webhook_secret=None, api_base=base_url
        )
        with pytest.raises(ProviderError) as failed:
            leaky.void("pi_1", "pay_1:void")

    assert "sk_test_echoed_back" not in str(failed.value)
    assert "[redacted]" in str(failed.value)


# ------------------------------------------------------------------ every payment ends


def test_a_cancelled_intent_reads_as_cancelled_and_polling_gives_the_holds_end(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    ref = authorized(provider, fake, amount=1500)

    polled = provider.fetch_status(ref)
    assert polled is not None
    assert polled.kind is EventKind.AUTHORIZED
    charge = fake.charges[fake.intents[ref]["latest_charge"]]
    hold_end = charge["payment_method_details"]["card"]["capture_before"]
    assert polled.capture_before == datetime.fromtimestamp(hold_end, tz=UTC)

    fake.expire_hold(ref)
    body = fake.event("payment_intent.canceled", ref)
    event = provider.verify_webhook(body, signed(fake, body), NOW)

    assert (event.kind, event.provider_ref) == (EventKind.CANCELED, ref)
    with pytest.raises(ProviderError):
        provider.capture(ref, 1500, "pay_1:capture")


def test_a_failed_refund_notice_reads_as_refund_failed_and_its_row_is_kept(
    provider: StripeProvider, fake: FakeStripe
) -> None:
    at(fake, 60)
    ref = charged(provider, fake, amount=2000)
    provider.refund(ref, 2000, "pay_1:refund")
    (refund,) = fake.refunds_of(ref)
    at(fake, 120)
    body, _ = fake.fail_refund(refund["id"])
    fake.add_balance_transaction("adjustment", -150, "usd")

    event = provider.verify_webhook(body, signed(fake, body), NOW)
    records = provider.records_for_day(DAY)

    assert (event.kind, event.provider_ref, event.raw_type) == (
        EventKind.REFUND_FAILED,
        ref,
        "refund.failed",
    )
    kinds = sorted((r.kind.value, r.amount) for r in records)
    assert ("refund_failure", 2000) in kinds
    assert ("adjustment", 150) in kinds
