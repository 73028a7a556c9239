"""The Alipay adapter: the real SDK against a local fake of Alipay's gateway, real RSA2 keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from urllib.request import urlopen

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pintuan.audit.service import audit_database
from pintuan.config import Settings
from pintuan.domain.payments import (
    CheckoutRequest,
    EventKind,
    PaymentStyle,
    ProviderError,
    ProviderRecord,
    ProviderRefused,
    RecordKind,
    WebhookRejected,
)
from pintuan.errors import InvalidInput
from pintuan.kit.time import clock
from pintuan.payments.models import Payment, WebhookEvent
from pintuan.payments.providers.alipay import BEIJING, AlipayProvider
from pintuan.services import Services
from pintuan.worker import Worker
from tests.conftest import make_settings
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.fakes.alipay_api import FakeAlipay, KeyPair, beijing

APP_ID = "2021000000000001"
BASE_URL = "https://pintuan.example"


@pytest.fixture(scope="module")
def app_keys() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture(scope="module")
def alipay_keys() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture(scope="module")
def stranger_keys() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture(scope="module")
def running_fake(app_keys: KeyPair, alipay_keys: KeyPair) -> Iterator[FakeAlipay]:
    fake = FakeAlipay(
        app_id=APP_ID, app_public_pem=app_keys.public_pem, keys=alipay_keys, hang_seconds=2
    )
    with fake.serve():
        yield fake


@pytest.fixture
def fake(running_fake: FakeAlipay) -> FakeAlipay:
    running_fake.reset()
    return running_fake


def provider_for(
    fake: FakeAlipay, app_keys: KeyPair, alipay_public_key: str, **overrides: object
) -> AlipayProvider:
    values: dict[str, object] = {
        "app_id": APP_ID,
        "app_private_key": app_keys.private_pem,
        "alipay_public_key": alipay_public_key,
        "base_url": BASE_URL,
        "gateway": fake.gateway,
        "timeout_seconds": 0.5,
    }
    values.update(overrides)
    return AlipayProvider(**values)  # type: ignore[arg-type]


@pytest.fixture
def alipay(fake: FakeAlipay, app_keys: KeyPair, alipay_keys: KeyPair) -> AlipayProvider:
    return provider_for(fake, app_keys, alipay_keys.public_pem)


def checkout_request(
    payment_id: str = "pay_01TEST", amount: int = 1999, **overrides: object
) -> CheckoutRequest:
    values: dict[str, object] = {
        "payment_id": payment_id,
        "amount": amount,
        "currency": "CNY",
        "style": PaymentStyle.CHARGE,
        "description": "Seat seat_01 of Hotpot for four",
        "expires_at": datetime(2026, 11, 25, 8, 30, tzinfo=UTC),
        "return_url": "https://pintuan.example/teams/team_01",
    }
    values.update(overrides)
    return CheckoutRequest(**values)  # type: ignore[arg-type]


def signed_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def open_page(url: str | None) -> int:
    """Open a checkout address as the shopper's browser would; returns the HTTP status."""
    assert url is not None
    assert url.startswith("http://127.0.0.1:")  # the loopback fake, nothing else
    with urlopen(url, timeout=5) as page:  # noqa: S310 - checked just above
        return int(page.status)


def paid_trade(alipay: AlipayProvider, fake: FakeAlipay, payment_id: str = "pay_01PAID") -> bytes:
    """A QR checkout the shopper has paid; returns Alipay's notification of it."""
    alipay.create_checkout(checkout_request(payment_id, kind="qr"))
    return fake.pay(payment_id)


# ---------------------------------------------------------------------- checkout


def test_a_wap_checkout_is_a_signed_gateway_address_that_alipay_accepts(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    checkout = alipay.create_checkout(checkout_request(kind="wap"))

    params = signed_params(checkout.url or "")
    biz = json.loads(params["biz_content"])
    opened = open_page(checkout.url)  # the shopper's phone opens it

    assert checkout.provider_ref == "pay_01TEST"
    assert (checkout.url or "").startswith(fake.gateway + "?")
    assert params["method"] == "alipay.trade.wap.pay"
    assert params["sign_type"] == "RSA2"
    assert params["notify_url"] == "https://pintuan.example/v1/webhooks/alipay"
    assert params["return_url"] == "https://pintuan.example/teams/team_01"
    assert biz == {
        "subject": "Seat seat_01 of Hotpot for four",
        "out_trade_no": "pay_01TEST",
        "total_amount": "19.99",
        "product_code": "QUICK_WAP_PAY",
        "time_expire": "2026-11-25 16:30:00",  # 08:30 UTC in Beijing
    }
    assert opened == 200
    assert fake.trade("pay_01TEST").total == 1999


def test_a_page_checkout_is_the_desktop_cashier(alipay: AlipayProvider, fake: FakeAlipay) -> None:
    checkout = alipay.create_checkout(checkout_request(kind="page"))

    params = signed_params(checkout.url or "")
    opened = open_page(checkout.url)

    assert params["method"] == "alipay.trade.page.pay"
    assert json.loads(params["biz_content"])["product_code"] == "FAST_INSTANT_TRADE_PAY"
    assert opened == 200
    assert fake.trade("pay_01TEST").product_code == "FAST_INSTANT_TRADE_PAY"


def test_the_default_checkout_is_wap_for_phones(alipay: AlipayProvider) -> None:
    checkout = alipay.create_checkout(checkout_request(kind=None))

    assert signed_params(checkout.url or "")["method"] == "alipay.trade.wap.pay"


def test_a_qr_checkout_precreates_the_trade_and_returns_its_code(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    checkout = alipay.create_checkout(checkout_request(kind="qr"))

    trade = fake.trade("pay_01TEST")
    assert checkout.provider_ref == "pay_01TEST"
    assert checkout.url is None
    assert checkout.qr_code == trade.qr_code
    assert (checkout.qr_code or "").startswith("https://qr.alipay.com/")
    assert trade.notify_url == "https://pintuan.example/v1/webhooks/alipay"
    assert trade.time_expire == "2026-11-25 16:30:00"
    assert fake.calls["alipay.trade.precreate"] == 1


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [(1, "0.01"), (10, "0.10"), (1999, "19.99"), (100_000_000, "1000000.00")],
)
def test_amounts_reach_alipay_as_exact_yuan(
    alipay: AlipayProvider, fake: FakeAlipay, fen: int, yuan: str
) -> None:
    alipay.create_checkout(checkout_request("pay_01AMOUNT", amount=fen, kind="qr"))

    trade = fake.trade("pay_01AMOUNT")
    assert (trade.total_text, trade.total) == (yuan, fen)


def test_a_currency_other_than_yuan_is_refused_before_calling_alipay(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    with pytest.raises(InvalidInput) as refused:
        alipay.create_checkout(checkout_request(currency="USD", kind="qr"))

    assert refused.value.code == "currency_not_supported"
    assert sum(fake.calls.values()) == 0


def test_an_unknown_checkout_kind_is_refused(alipay: AlipayProvider) -> None:
    with pytest.raises(InvalidInput) as refused:
        alipay.create_checkout(checkout_request(kind="jsapi"))

    assert refused.value.code == "checkout_kind_not_supported"


def test_a_failing_precreate_is_a_provider_error(alipay: AlipayProvider, fake: FakeAlipay) -> None:
    fake.fail_next(1, "http_500")

    with pytest.raises(ProviderError, match="500"):
        alipay.create_checkout(checkout_request(kind="qr"))


def test_requests_are_stamped_with_beijing_time(alipay: AlipayProvider, fake: FakeAlipay) -> None:
    alipay.create_checkout(checkout_request(kind="qr"))

    stamped = datetime.strptime(fake.request_timestamps[-1], "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=BEIJING
    )
    assert abs(stamped - datetime.now(UTC)) < timedelta(minutes=1)


# ---------------------------------------------------------------------- signatures on the wire


def test_a_request_signed_with_another_key_is_refused_by_alipay(
    fake: FakeAlipay, stranger_keys: KeyPair, alipay_keys: KeyPair
) -> None:
    impostor = provider_for(fake, stranger_keys, alipay_keys.public_pem)

    with pytest.raises(ProviderError, match=r"isv\.invalid-signature"):
        impostor.create_checkout(checkout_request(kind="qr"))

    assert fake.trades == {}


def test_an_answer_not_signed_by_alipay_is_not_believed(
    fake: FakeAlipay, app_keys: KeyPair, stranger_keys: KeyPair
) -> None:
    fooled = provider_for(fake, app_keys, stranger_keys.public_pem)

    with pytest.raises(ProviderError, match="signature does not verify"):
        fooled.fetch_status("pay_01TEST")


def test_keys_in_alipays_bare_base64_form_are_accepted(
    fake: FakeAlipay, app_keys: KeyPair, alipay_keys: KeyPair
) -> None:
    provider = provider_for(fake, app_keys, alipay_keys.public_base64)

    assert provider.fetch_status("pay_01NONE") is None


def test_secrets_stay_out_of_reprs_and_errors(
    fake: FakeAlipay, app_keys: KeyPair, alipay_keys: KeyPair
) -> None:
    provider = provider_for(fake, app_keys, alipay_keys.public_pem)
    key_body = app_keys.private_pem.splitlines()[1]
    fake.fail_next(1, "system_error")
    with pytest.raises(ProviderError) as failed:
        provider.refund("pay_01NONE", 100, "pay_01NONE:refund")
    with pytest.raises(ValueError, match="PINTUAN_ALIPAY") as unreadable:
        provider_for(fake, app_keys, "not a key")

    assert key_body not in repr(provider)
    assert APP_ID in repr(provider)
    assert key_body not in str(failed.value)
    assert "not a key" not in str(unreadable.value)


def test_an_app_id_without_its_keys_is_a_clear_configuration_error() -> None:
    half = make_settings("sqlite://", alipay_app_id=APP_ID)

    with pytest.raises(ValueError, match="PINTUAN_ALIPAY_PRIVATE_KEY"):
        AlipayProvider.from_settings(half)


# ---------------------------------------------------------------------- no holds


def test_capture_and_void_do_not_exist_for_a_charge(alipay: AlipayProvider) -> None:
    with pytest.raises(ProviderError, match="charges at once"):
        alipay.capture("pay_01TEST", 1999, "pay_01TEST:capture")
    with pytest.raises(ProviderError, match="refunded instead"):
        alipay.void("pay_01TEST", "pay_01TEST:void")

    assert alipay.capabilities.styles == {PaymentStyle.CHARGE}
    assert alipay.default_style() is PaymentStyle.CHARGE


# ---------------------------------------------------------------------- refunds


def test_a_refund_pays_back_the_amount_under_our_request_number(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    paid_trade(alipay, fake)

    alipay.refund("pay_01PAID", 1999, "pay_01PAID:refund")

    [refund] = fake.refunds_of("pay_01PAID")
    assert (refund.out_request_no, refund.amount) == ("pay_01PAID:refund", 1999)
    assert fake.trade("pay_01PAID").status == "TRADE_CLOSED"


def test_a_partial_refund_leaves_the_rest_paid(alipay: AlipayProvider, fake: FakeAlipay) -> None:
    paid_trade(alipay, fake)

    alipay.refund("pay_01PAID", 500, "pay_01PAID:refund")

    assert [r.amount for r in fake.refunds_of("pay_01PAID")] == [500]
    assert fake.trade("pay_01PAID").status == "TRADE_SUCCESS"


def test_the_same_refund_twice_refunds_once(alipay: AlipayProvider, fake: FakeAlipay) -> None:
    paid_trade(alipay, fake)

    alipay.refund("pay_01PAID", 1999, "pay_01PAID:refund")
    alipay.refund("pay_01PAID", 1999, "pay_01PAID:refund")

    assert len(fake.refunds_of("pay_01PAID")) == 1
    assert fake.calls["alipay.trade.refund"] == 2


def test_a_repeat_refused_because_the_trade_is_closed_counts_as_done_once_alipay_confirms(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    paid_trade(alipay, fake)
    fake.repeat_refund_on_closed_trade = "ACQ.TRADE_HAS_CLOSE"
    alipay.refund("pay_01PAID", 1999, "pay_01PAID:refund")

    alipay.refund("pay_01PAID", 1999, "pay_01PAID:refund")

    assert len(fake.refunds_of("pay_01PAID")) == 1
    assert fake.calls["alipay.trade.fastpay.refund.query"] == 1


def test_a_refund_of_a_closed_trade_under_another_number_fails(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    paid_trade(alipay, fake)
    alipay.refund("pay_01PAID", 1999, "pay_01PAID:refund")

    with pytest.raises(ProviderRefused, match=r"ACQ\.TRADE_HAS_CLOSE"):
        alipay.refund("pay_01PAID", 1999, "pay_01PAID:other")

    assert len(fake.refunds_of("pay_01PAID")) == 1


def test_a_refund_of_an_unpaid_trade_fails(alipay: AlipayProvider, fake: FakeAlipay) -> None:
    alipay.create_checkout(checkout_request("pay_01UNPAID", kind="qr"))

    with pytest.raises(ProviderRefused, match=r"ACQ\.TRADE_STATUS_ERROR"):
        alipay.refund("pay_01UNPAID", 1999, "pay_01UNPAID:refund")


@pytest.mark.parametrize("how", ["http_500", "system_error", "hang", "lose_answer"])
def test_a_failed_refund_call_is_an_error_and_its_retry_refunds_exactly_once(
    alipay: AlipayProvider, fake: FakeAlipay, how: str
) -> None:
    paid_trade(alipay, fake)
    fake.fail_next(1, how)  # type: ignore[arg-type]

    with pytest.raises(ProviderError) as failed:
        alipay.refund("pay_01PAID", 1999, "pay_01PAID:refund")
    assert not isinstance(failed.value, ProviderRefused)  # it may have been made
    alipay.refund("pay_01PAID", 1999, "pay_01PAID:refund")

    assert len(fake.refunds_of("pay_01PAID")) == 1
    assert fake.calls["alipay.trade.refund"] == 2


def test_an_unreachable_gateway_is_a_provider_error(
    app_keys: KeyPair, alipay_keys: KeyPair
) -> None:
    closed = AlipayProvider(
        app_id=APP_ID,
        app_private_key=app_keys.private_pem,
        alipay_public_key=alipay_keys.public_pem,
        base_url=BASE_URL,
        gateway="http://127.0.0.1:9/gateway.do",
        timeout_seconds=0.5,
    )

    with pytest.raises(ProviderError, match="refund"):
        closed.refund("pay_01PAID", 1999, "pay_01PAID:refund")


# ---------------------------------------------------------------------- notifications


def test_a_paid_notification_is_a_charge_of_the_exact_amount(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    body = paid_trade(alipay, fake)

    event = alipay.verify_webhook(body, {}, datetime.now(UTC))

    notify_id = dict(parse_qsl(body.decode()))["notify_id"]
    assert event.event_id == notify_id
    assert event.kind is EventKind.CHARGED
    assert event.raw_type == "TRADE_SUCCESS"
    assert event.provider_ref == "pay_01PAID"
    assert (event.amount, event.currency) == (1999, "CNY")


def test_a_finished_trade_is_a_charge_too(alipay: AlipayProvider, fake: FakeAlipay) -> None:
    paid_trade(alipay, fake)
    body = fake.signed_form(fake.notification("pay_01PAID", trade_status="TRADE_FINISHED"))

    assert alipay.verify_webhook(body, {}, datetime.now(UTC)).kind is EventKind.CHARGED


def test_an_unpaid_trade_closing_is_a_failure(alipay: AlipayProvider, fake: FakeAlipay) -> None:
    alipay.create_checkout(checkout_request("pay_01LATE", kind="qr"))

    event = alipay.verify_webhook(fake.close("pay_01LATE"), {}, datetime.now(UTC))

    assert (event.kind, event.provider_ref) == (EventKind.FAILED, "pay_01LATE")


def test_a_refund_notification_is_not_news_of_the_payment(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    paid_trade(alipay, fake)
    alipay.refund("pay_01PAID", 1999, "pay_01PAID:refund")

    event = alipay.verify_webhook(
        fake.refund_notification("pay_01PAID", "pay_01PAID:refund"), {}, datetime.now(UTC)
    )

    assert event.kind is EventKind.OTHER
    assert event.raw_type == "TRADE_CLOSED.refund"


def test_a_tampered_notification_is_refused(alipay: AlipayProvider, fake: FakeAlipay) -> None:
    body = paid_trade(alipay, fake)
    fields = dict(parse_qsl(body.decode()))
    fields["total_amount"] = "0.01"

    with pytest.raises(WebhookRejected) as refused:
        alipay.verify_webhook(urlencode(fields).encode(), {}, datetime.now(UTC))

    assert refused.value.code == "invalid_signature"


def test_a_notification_signed_with_another_key_is_refused(
    alipay: AlipayProvider, fake: FakeAlipay, stranger_keys: KeyPair
) -> None:
    paid_trade(alipay, fake)
    forged = fake.signed_form(fake.notification("pay_01PAID"), key=stranger_keys)

    with pytest.raises(WebhookRejected) as refused:
        alipay.verify_webhook(forged, {}, datetime.now(UTC))

    assert refused.value.code == "invalid_signature"


def test_a_notification_for_another_app_is_refused(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    paid_trade(alipay, fake)
    elsewhere = fake.signed_form(fake.notification("pay_01PAID", app_id="2021999999999999"))

    with pytest.raises(WebhookRejected) as refused:
        alipay.verify_webhook(elsewhere, {}, datetime.now(UTC))

    assert refused.value.code == "invalid_event"


def test_a_signed_amount_with_three_decimals_is_refused(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    paid_trade(alipay, fake)
    odd = fake.signed_form(fake.notification("pay_01PAID", total_amount="19.990"))

    with pytest.raises(WebhookRejected) as refused:
        alipay.verify_webhook(odd, {}, datetime.now(UTC))

    assert refused.value.code == "invalid_event"


@pytest.mark.parametrize(
    "body",
    [b"", b"not a form", b'{"trade_status": "TRADE_SUCCESS"}', b"sign=abc&sign_type=RSA2&a=1"],
)
def test_an_unsigned_or_malformed_notification_is_refused(
    alipay: AlipayProvider, body: bytes
) -> None:
    with pytest.raises(WebhookRejected):
        alipay.verify_webhook(body, {}, datetime.now(UTC))


def test_a_notification_signed_with_the_old_rsa_scheme_is_refused(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    body = paid_trade(alipay, fake)
    fields = dict(parse_qsl(body.decode()))
    fields["sign_type"] = "RSA"

    with pytest.raises(WebhookRejected) as refused:
        alipay.verify_webhook(urlencode(fields).encode(), {}, datetime.now(UTC))

    assert refused.value.code == "invalid_signature"


# ---------------------------------------------------------------------- asking


def test_fetch_status_follows_the_trade_from_nothing_to_paid(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    before = alipay.fetch_status("pay_01POLL")
    alipay.create_checkout(checkout_request("pay_01POLL", kind="qr"))
    waiting = alipay.fetch_status("pay_01POLL")
    fake.pay("pay_01POLL")
    paid = alipay.fetch_status("pay_01POLL")
    again = alipay.fetch_status("pay_01POLL")

    assert before is None
    assert waiting is None
    assert paid is not None
    assert paid.event_id == "poll:pay_01POLL:charged"
    assert (paid.kind, paid.provider_ref, paid.amount) == (EventKind.CHARGED, "pay_01POLL", 1999)
    assert again == paid


def test_fetch_status_reports_a_closed_unpaid_trade_as_failed(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    alipay.create_checkout(checkout_request("pay_01LATE", kind="qr"))
    fake.close("pay_01LATE")

    event = alipay.fetch_status("pay_01LATE")

    assert event is not None
    assert (event.event_id, event.kind) == ("poll:pay_01LATE:failed", EventKind.FAILED)


def test_fetch_status_does_not_call_a_refunded_trade_failed(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    paid_trade(alipay, fake)
    alipay.refund("pay_01PAID", 1999, "pay_01PAID:refund")

    event = alipay.fetch_status("pay_01PAID")

    assert event is not None
    assert event.kind is EventKind.OTHER


def test_fetch_status_in_an_outage_is_a_provider_error(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    fake.fail_next(1, "system_error")

    with pytest.raises(ProviderError, match=r"ACQ\.SYSTEM_ERROR"):
        alipay.fetch_status("pay_01POLL")


# ---------------------------------------------------------------------- the daily bill


def test_the_daily_bill_lists_payments_and_refunds_in_utc(
    alipay: AlipayProvider, fake: FakeAlipay
) -> None:
    day = datetime.now(BEIJING).date() - timedelta(days=1)
    fake.now = lambda: beijing(day, 0, 10)
    alipay.create_checkout(checkout_request("pay_01EARLY", kind="qr"))
    alipay.create_checkout(checkout_request("pay_01LATER", amount=100_000_000, kind="qr"))
    alipay.create_checkout(checkout_request("pay_01BEFORE", amount=10, kind="qr"))
    fake.pay("pay_01EARLY", at=beijing(day, 0, 30))
    fake.pay("pay_01LATER", at=beijing(day, 23, 59))
    fake.pay("pay_01BEFORE", at=beijing(day - timedelta(days=1), 23, 59))
    fake.now = lambda: beijing(day, 12, 0)
    alipay.refund("pay_01EARLY", 500, "pay_01EARLY:refund")

    records = alipay.records_for_day(day)

    early, later = fake.trade("pay_01EARLY"), fake.trade("pay_01LATER")
    assert sorted(records, key=lambda r: r.record_id) == sorted(
        [
            ProviderRecord(
                early.trade_no,
                "pay_01EARLY",
                RecordKind.PAYMENT,
                1999,
                "CNY",
                beijing(day, 0, 30).astimezone(UTC),
            ),
            ProviderRecord(
                later.trade_no,
                "pay_01LATER",
                RecordKind.PAYMENT,
                100_000_000,
                "CNY",
                beijing(day, 23, 59).astimezone(UTC),
            ),
            ProviderRecord(
                f"{early.trade_no}:pay_01EARLY:refund",
                "pay_01EARLY",
                RecordKind.REFUND,
                500,
                "CNY",
                beijing(day, 12, 0).astimezone(UTC),
            ),
        ],
        key=lambda r: r.record_id,
    )
    assert records[0].occurred_at.tzinfo is UTC
    assert fake.calls["bill download"] == 1


def test_todays_bill_is_not_there_yet(alipay: AlipayProvider) -> None:
    with pytest.raises(ProviderError, match="no bill"):
        alipay.records_for_day(datetime.now(BEIJING).date())


# ---------------------------------------------------------------------- through the HTTP API


@pytest.fixture
def settings(
    database_url: str, fake: FakeAlipay, app_keys: KeyPair, alipay_keys: KeyPair
) -> Settings:
    return make_settings(
        database_url,
        alipay_app_id=APP_ID,
        alipay_private_key=app_keys.private_pem,
        alipay_public_key=alipay_keys.public_pem,
        alipay_gateway=fake.gateway,
    )


def held_seat_in_yuan(client: TestClient, services: Services) -> tuple[Account, dict[str, Any]]:
    """A shopper holding the leader seat of a two-seat team of a deal priced in yuan."""
    merchant = create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    deal = create_deal(services.db, merchant, team_size=2, list_price=2999, group_price=1999)
    shopper = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=shopper.headers)
    assert started.status_code == 201, started.text
    return shopper, started.json()


def pay_with_alipay(
    client: TestClient, shopper: Account, started: dict[str, Any], kind: str = "wap"
) -> dict[str, Any]:
    response = client.post(
        f"/v1/seats/{started['seat']['id']}/payments",
        json={"provider": "alipay", "checkout_kind": kind},
        headers=shopper.headers,
    )
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


def post_notification(client: TestClient, body: bytes) -> Any:
    return client.post(
        "/v1/webhooks/alipay",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )


def payment_status(services: Services, payment_id: str) -> str:
    return str(services.db.run_sync(lambda s: s.get(Payment, payment_id).status))


def stored_notifications(services: Services) -> int:
    return int(
        services.db.run_sync(
            lambda s: s.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.provider == "alipay")
            )
        )
    )


def test_a_shopper_pays_with_alipay_and_the_signed_notification_marks_the_seat_paid(
    client: TestClient, services: Services, fake: FakeAlipay
) -> None:
    shopper, started = held_seat_in_yuan(client, services)
    payment = pay_with_alipay(client, shopper, started)
    opened = open_page(payment["next_action"]["url"])
    notification = fake.pay(payment["id"])

    answer = post_notification(client, notification)
    repeated = post_notification(client, notification)

    assert payment["style"] == "charge"
    assert payment["amount"] == {"amount": 1999, "currency": "CNY"}
    assert payment["next_action"]["type"] == "redirect_to_url"
    assert opened == 200
    trade = fake.trade(payment["id"])
    assert trade.total_text == "19.99"
    hold_ends = datetime.fromisoformat(started["seat"]["hold_expires_at"])
    assert trade.time_expire == hold_ends.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    assert trade.notify_url == "http://127.0.0.1:8000/v1/webhooks/alipay"
    assert (answer.status_code, answer.content) == (200, b"success")
    assert (repeated.status_code, repeated.content) == (200, b"success")
    assert payment_status(services, payment["id"]) == "charged"
    assert client.get(f"/v1/teams/{started['team']['id']}").json()["seats_paid"] == 1
    assert stored_notifications(services) == 1


def test_a_qr_checkout_through_the_api_shows_alipays_code(
    client: TestClient, services: Services, fake: FakeAlipay
) -> None:
    shopper, started = held_seat_in_yuan(client, services)

    payment = pay_with_alipay(client, shopper, started, kind="qr")

    assert payment["next_action"]["type"] == "show_qr_code"
    assert payment["next_action"]["qr_code"] == fake.trade(payment["id"]).qr_code


def test_a_forged_notification_through_the_api_is_refused_and_stored_nowhere(
    client: TestClient, services: Services, fake: FakeAlipay, stranger_keys: KeyPair
) -> None:
    shopper, started = held_seat_in_yuan(client, services)
    payment = pay_with_alipay(client, shopper, started)
    open_page(payment["next_action"]["url"])
    forged = fake.signed_form(
        fake.notification(payment["id"], trade_status="TRADE_SUCCESS"), key=stranger_keys
    )

    answer = post_notification(client, forged)

    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_signature")
    assert payment_status(services, payment["id"]) == "requires_action"
    assert stored_notifications(services) == 0


@pytest.mark.parametrize("how", ["http_500", "lose_answer"])
def test_a_failed_team_is_refunded_by_the_worker_exactly_once_despite_a_failing_first_call(
    client: TestClient, services: Services, fake: FakeAlipay, how: str
) -> None:
    shopper, started = held_seat_in_yuan(client, services)
    payment = pay_with_alipay(client, shopper, started)
    open_page(payment["next_action"]["url"])
    post_notification(client, fake.pay(payment["id"]))
    # The refund's call fails (the day's reconciliation asks Alipay for its bill meanwhile).
    fake.fail_next(1, how, only="alipay.trade.refund")  # type: ignore[arg-type]
    worker = Worker(services)

    clock.advance(timedelta(hours=25))  # the team window ends with one seat of two paid
    first = worker.run_until_idle()
    owed = payment_status(services, payment["id"])
    clock.advance(timedelta(minutes=5))  # past the retry's backoff
    worker.run_until_idle()
    clock.advance(timedelta(hours=2))
    worker.run_until_idle()

    assert first.teams_failed == 1
    assert first.provider_failures == 1
    assert owed == "charged"
    assert payment_status(services, payment["id"]) == "refunded"
    [refund] = fake.refunds_of(payment["id"])
    assert (refund.amount, refund.out_request_no) == (1999, f"{payment['id']}:refund")
    assert fake.calls["alipay.trade.refund"] == 2
    assert services.db.run_sync(lambda s: audit_database(s, timedelta(0))) == []


def test_a_lost_notification_is_recovered_by_the_worker_asking_alipay(
    client: TestClient, services: Services, fake: FakeAlipay
) -> None:
    shopper, started = held_seat_in_yuan(client, services)
    payment = pay_with_alipay(client, shopper, started)
    worker = Worker(services)
    clock.advance(timedelta(minutes=3))
    worker.run_until_idle()  # the shopper has not opened the checkout: no news yet
    waiting = payment_status(services, payment["id"])
    open_page(payment["next_action"]["url"])
    fake.pay(payment["id"])  # paid, but the notification never arrives

    clock.advance(timedelta(minutes=3))
    worker.run_until_idle()

    assert waiting == "requires_action"
    assert payment_status(services, payment["id"]) == "charged"
    assert client.get(f"/v1/teams/{started['team']['id']}").json()["seats_paid"] == 1
    assert fake.calls["alipay.trade.query"] == 2
