"""WeChat Pay v3 through the real SDK, against a local fake of its API with real signatures."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from fastapi.testclient import TestClient
from pydantic import SecretStr
from wechatpayv3 import WeChatPay, WeChatPayType  # type: ignore[import-untyped]

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
from pintuan.kit.ids import new_id
from pintuan.kit.time import clock
from pintuan.payments.models import Payment
from pintuan.payments.providers.wechatpay import WeChatPayProvider
from pintuan.payments.providers.wechatpay_formats import CHINA
from pintuan.services import Services
from pintuan.worker import Worker
from tests.conftest import make_settings
from tests.factories import Account, create_account, create_deal, create_merchant
from tests.fakes.wechatpay_api import (
    FakeWeChatPay,
    Notification,
    Outage,
    outbound_connections,
    private_pem,
    public_pem,
    stranger_key,
)

SHOP = "https://pintuan.example"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeWeChatPay]:
    fake = FakeWeChatPay(hang_seconds=1.0)
    with fake.running():
        yield fake


@pytest.fixture
def fake(server: FakeWeChatPay) -> FakeWeChatPay:
    server.reset()
    return server


def provider_for(fake: FakeWeChatPay, **changes: Any) -> WeChatPayProvider:
    options: dict[str, Any] = {
        "mch_id": fake.mch_id,
        "app_id": fake.app_id,
        "private_key": SecretStr(private_pem(fake.keys.merchant)),
        "cert_serial": fake.keys.merchant_serial,
        "apiv3_key": SecretStr(fake.keys.apiv3_key),
        "public_key": public_pem(fake.keys.platform),
        "public_key_id": fake.keys.platform_key_id,
        "base_url": SHOP,
        "api_base": fake.base_url,
        "timeout": (2.0, 0.4),
    }
    options.update(changes)
    return WeChatPayProvider(**options)


@pytest.fixture(scope="module")
def shared_provider(server: FakeWeChatPay) -> WeChatPayProvider:
    return provider_for(server)


@pytest.fixture
def wechat(fake: FakeWeChatPay, shared_provider: WeChatPayProvider) -> WeChatPayProvider:
    return shared_provider


def checkout_request(amount: int = 1500, **changes: Any) -> CheckoutRequest:
    options: dict[str, Any] = {
        "payment_id": new_id("pay"),
        "amount": amount,
        "currency": "CNY",
        "style": PaymentStyle.CHARGE,
        "description": "Seat in a team for hotpot",
    }
    options.update(changes)
    return CheckoutRequest(**options)


def open_order(wechat: WeChatPayProvider) -> str:
    return wechat.create_checkout(checkout_request()).provider_ref


def paid_order(fake: FakeWeChatPay, wechat: WeChatPayProvider, amount: int = 1500) -> str:
    payment_id = wechat.create_checkout(checkout_request(amount)).provider_ref
    fake.pay(payment_id)
    return payment_id


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------- starting up


def test_starting_up_reaches_for_no_certificate_and_no_network(fake: FakeWeChatPay) -> None:
    with outbound_connections() as connections:
        provider_for(fake)

    assert connections == []
    assert sum(fake.calls.values()) == 0


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"apiv3_key": SecretStr("a-key-of-the-wrong-length")}, "exactly 32 bytes"),
        ({"public_key": "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n"}, "not a PEM public key"),
        ({"private_key": SecretStr("bm90IGEga2V5")}, "not a PEM PKCS#8 private key"),
    ],
)
def test_unusable_keys_are_refused_at_start_with_what_to_fix(
    fake: FakeWeChatPay, changes: dict[str, Any], said: str
) -> None:
    with pytest.raises(ValueError, match=said):
        provider_for(fake, **changes)


# ---------------------------------------------------------------------- checkouts


def test_a_native_checkout_opens_an_order_in_fen_and_shows_its_code_url(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    expires = datetime(2026, 11, 25, 14, 10, 30, 123456, tzinfo=UTC)
    request = checkout_request(1999, expires_at=expires)

    checkout = wechat.create_checkout(request)

    order = fake.orders[request.payment_id]
    assert checkout.provider_ref == request.payment_id
    assert checkout.qr_code is not None
    assert checkout.qr_code.startswith("weixin://wxpay/")
    assert (checkout.url, checkout.client_params) == (None, None)
    assert (order.kind, order.total) == ("native", 1999)
    assert order.notify_url == "https://pintuan.example/v1/webhooks/wechatpay"
    assert order.time_expire is not None
    assert order.time_expire.isoformat() == "2026-11-25T22:10:30+08:00"
    assert fake.refused == []


def test_an_h5_checkout_sends_the_payers_address_and_returns_the_wechat_page(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    request = checkout_request(
        kind="h5", client_ip="203.0.113.7", return_url="https://pintuan.example/teams/t 1"
    )

    checkout = wechat.create_checkout(request)

    assert checkout.url is not None
    assert checkout.url.startswith("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?")
    assert checkout.url.endswith("&redirect_url=https%3A%2F%2Fpintuan.example%2Fteams%2Ft%201")
    assert fake.orders[request.payment_id].kind == "h5"


def test_an_h5_checkout_without_the_payers_address_is_refused_before_any_call(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    with pytest.raises(InvalidInput) as refused:
        wechat.create_checkout(checkout_request(kind="h5"))

    assert refused.value.code == "client_ip_required"
    assert sum(fake.calls.values()) == 0


def test_a_jsapi_checkout_returns_parameters_signed_with_the_merchant_key(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    request = checkout_request(kind="jsapi", payer_ref="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")

    params = wechat.create_checkout(request).client_params

    assert params is not None
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == fake.app_id
    assert params["package"].startswith("prepay_id=wx")
    assert params["signType"] == "RSA"
    assert abs(int(params["timeStamp"]) - now().timestamp()) < 60
    signed = "\n".join(params[k] for k in ("appId", "timeStamp", "nonceStr", "package")) + "\n"
    fake.keys.merchant.public_key().verify(
        base64.b64decode(params["paySign"]), signed.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert fake.orders[request.payment_id].payer == {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}


def test_a_jsapi_checkout_without_an_openid_is_refused(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    with pytest.raises(InvalidInput) as refused:
        wechat.create_checkout(checkout_request(kind="jsapi"))

    assert refused.value.code == "payer_ref_required"
    assert fake.orders == {}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"currency": "USD"}, "unsupported_payment"),
        ({"style": PaymentStyle.HOLD}, "unsupported_payment"),
        ({"kind": "app"}, "unsupported_checkout_kind"),
    ],
)
def test_what_wechat_pay_cannot_do_is_refused_clearly(
    fake: FakeWeChatPay, wechat: WeChatPayProvider, changes: dict[str, Any], code: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        wechat.create_checkout(checkout_request(**changes))

    assert refused.value.code == code
    assert fake.orders == {}


def test_a_request_signed_with_another_merchant_key_is_turned_away_by_the_api(
    fake: FakeWeChatPay,
) -> None:
    impostor = provider_for(fake, private_key=SecretStr(private_pem(stranger_key())))

    with pytest.raises(ProviderError, match="401 SIGN_ERROR"):
        impostor.create_checkout(checkout_request())

    assert fake.refused == ["signature does not verify"]
    assert fake.orders == {}


def test_capture_and_void_are_refused_because_wechat_pay_charges_in_one_step(
    wechat: WeChatPayProvider,
) -> None:
    with pytest.raises(ProviderError, match="no hold to capture"):
        wechat.capture("pay_1", 1500, "pay_1:capture")
    with pytest.raises(ProviderError, match="no hold to void"):
        wechat.void("pay_1", "pay_1:void")


# ---------------------------------------------------------------------- refunds


def test_a_refund_sends_our_key_as_the_refund_number_with_the_order_total(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = paid_order(fake, wechat, 1500)

    wechat.refund(payment_id, 500, f"{payment_id}:refund")

    refund = fake.refunds[f"{payment_id}-refund"]
    assert (refund.out_trade_no, refund.refund, refund.total) == (payment_id, 500, 1500)


def test_the_same_refund_asked_twice_returns_the_money_once(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = paid_order(fake, wechat)

    wechat.refund(payment_id, 1500, f"{payment_id}:refund")
    wechat.refund(payment_id, 1500, f"{payment_id}:refund")

    assert fake.calls["refund"] == 2
    assert len(fake.refunds) == 1
    assert fake.orders[payment_id].refunded == 1500


@pytest.mark.parametrize(
    ("outage", "said"),
    [
        (Outage.HTTP_500, "HTTP 500"),
        (Outage.SYSTEM_ERROR, "500 SYSTEM_ERROR"),
        (Outage.FREQUENCY_LIMITED, "429 FREQUENCY_LIMITED"),
    ],
)
def test_a_refund_that_fails_at_wechat_pay_is_retried_to_exactly_one_refund(
    fake: FakeWeChatPay, wechat: WeChatPayProvider, outage: Outage, said: str
) -> None:
    payment_id = paid_order(fake, wechat)
    fake.fail_next(1, outage, path="/v3/refund/")

    with pytest.raises(ProviderError, match=said) as failed:
        wechat.refund(payment_id, 1500, f"{payment_id}:refund")
    wechat.refund(payment_id, 1500, f"{payment_id}:refund")

    assert "retried later" in str(failed.value)
    assert not isinstance(failed.value, ProviderRefused)
    assert fake.calls["refund"] == 2
    assert [r.refund for r in fake.refunds.values()] == [1500]


def test_a_refund_beyond_what_is_left_is_wechat_pays_refusal_not_a_failure(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = paid_order(fake, wechat)
    wechat.refund(payment_id, 1000, "rfd_first")

    # More than is left: WeChat Pay's own word that no refund was made under the number
    with pytest.raises(ProviderRefused, match="INVALID_REQUEST"):
        wechat.refund(payment_id, 600, "rfd_second")

    assert [r.refund for r in fake.refunds.values()] == [1000]


def test_a_refund_whose_answer_never_comes_is_retried_without_refunding_twice(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = paid_order(fake, wechat)
    fake.fail_next(1, Outage.HANG, path="/v3/refund/")

    with pytest.raises(ProviderError, match=r"no answer within 0\.4 s"):
        wechat.refund(payment_id, 1500, f"{payment_id}:refund")
    wechat.refund(payment_id, 1500, f"{payment_id}:refund")

    assert len(fake.refunds) == 1  # the first call did refund; the retry found it
    assert fake.orders[payment_id].refunded == 1500


def test_a_refund_of_an_order_wechat_pay_never_saw_is_a_provider_error(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    with pytest.raises(ProviderError, match="has no order pay_unknown"):
        wechat.refund("pay_unknown", 1500, "pay_unknown:refund")

    assert fake.calls["refund"] == 0


def test_a_refund_beyond_what_was_paid_is_refused_and_says_so(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = paid_order(fake, wechat, 1500)

    with pytest.raises(ProviderError, match=r"400 INVALID_REQUEST .*refused"):
        wechat.refund(payment_id, 1501, f"{payment_id}:refund")

    assert fake.refunds == {}


# ---------------------------------------------------------------------- notifications


def test_a_payment_notification_is_verified_decrypted_and_read_as_charged(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = wechat.create_checkout(checkout_request(1888)).provider_ref
    notice = fake.pay(payment_id)

    event = wechat.verify_webhook(notice.body, notice.headers, now())

    assert event.kind is EventKind.CHARGED
    assert event.event_id.startswith("EV-")
    assert event.raw_type == "TRANSACTION.SUCCESS"
    assert (event.provider_ref, event.amount, event.currency) == (payment_id, 1888, "CNY")


def test_headers_are_read_whatever_their_case(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    notice = fake.pay(open_order(wechat))
    lowered = {k.lower(): v for k, v in notice.headers.items()}

    assert wechat.verify_webhook(notice.body, lowered, now()).kind is EventKind.CHARGED


@pytest.mark.parametrize("state", ["CLOSED", "PAYERROR"])
def test_a_notification_of_an_order_that_ended_unpaid_is_read_as_failed(
    fake: FakeWeChatPay, wechat: WeChatPayProvider, state: str
) -> None:
    payment_id = open_order(wechat)
    fake.end_order(payment_id, state)
    notice = fake.transaction_notification(payment_id)

    event = wechat.verify_webhook(notice.body, notice.headers, now())

    assert (event.kind, event.provider_ref) == (EventKind.FAILED, payment_id)


def test_a_refund_notification_is_news_but_moves_nothing(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = paid_order(fake, wechat, 1500)
    wechat.refund(payment_id, 600, f"{payment_id}:refund")
    notice = fake.settle_refund(f"{payment_id}-refund")

    event = wechat.verify_webhook(notice.body, notice.headers, now())

    assert (event.kind, event.raw_type) == (EventKind.OTHER, "REFUND.SUCCESS")
    assert (event.provider_ref, event.amount, event.currency) == (payment_id, 600, "CNY")


def tampered(notice: Notification) -> Notification:
    return Notification(
        notice.body.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.SUCCES"'), notice.headers
    )


@pytest.mark.parametrize(
    ("forge", "code"),
    [
        ("tampered body", "invalid_signature"),
        ("signed with another key", "invalid_signature"),
        ("no signature", "invalid_signature"),
        ("301 s old", "stale_signature"),
        ("301 s ahead", "stale_signature"),
        ("sealed with another APIv3 key", "invalid_event"),
        ("another merchant's order", "invalid_event"),
    ],
)
def test_a_notification_that_is_not_genuine_and_fresh_is_refused(
    fake: FakeWeChatPay, wechat: WeChatPayProvider, forge: str, code: str
) -> None:
    payment_id = open_order(wechat)
    fake.pay(payment_id)
    signed_now = int(now().timestamp())
    notice = {
        "tampered body": lambda: tampered(fake.transaction_notification(payment_id)),
        "signed with another key": lambda: fake.transaction_notification(
            payment_id, signing_key=stranger_key()
        ),
        "no signature": lambda: Notification(
            fake.transaction_notification(payment_id).body,
            {"Wechatpay-Serial": fake.keys.platform_key_id},
        ),
        "301 s old": lambda: fake.transaction_notification(payment_id, timestamp=signed_now - 301),
        "301 s ahead": lambda: fake.transaction_notification(
            payment_id, timestamp=signed_now + 301
        ),
        "sealed with another APIv3 key": lambda: fake.transaction_notification(
            payment_id, apiv3_key="0" * 32
        ),
        "another merchant's order": lambda: fake.notification(
            "TRANSACTION.SUCCESS",
            "transaction",
            {**fake.transaction_resource(fake.orders[payment_id]), "mchid": "1230000109"},
        ),
    }[forge]()

    with pytest.raises(WebhookRejected) as refused:
        wechat.verify_webhook(notice.body, notice.headers, datetime.fromtimestamp(signed_now, UTC))

    assert refused.value.code == code


def test_a_notification_just_inside_the_five_minutes_is_accepted(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = open_order(wechat)
    fake.pay(payment_id)
    signed_now = int(now().timestamp())
    old = fake.transaction_notification(payment_id, timestamp=signed_now - 300)
    ahead = fake.transaction_notification(payment_id, timestamp=signed_now + 300)
    at = datetime.fromtimestamp(signed_now, UTC)

    assert wechat.verify_webhook(old.body, old.headers, at).kind is EventKind.CHARGED
    assert wechat.verify_webhook(ahead.body, ahead.headers, at).kind is EventKind.CHARGED


def test_a_notification_naming_an_unknown_key_is_refused_without_any_connection(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = open_order(wechat)
    fake.pay(payment_id)
    notice = fake.transaction_notification(
        payment_id, signing_key=stranger_key(), key_id="PUB_KEY_ID_0114232134912410000"
    )

    with outbound_connections() as connections, pytest.raises(WebhookRejected) as refused:
        wechat.verify_webhook(notice.body, notice.headers, now())

    assert refused.value.code == "invalid_signature"
    assert "PUB_KEY_ID_0114232134912410000" in refused.value.detail
    assert connections == []
    assert fake.certificate_requests == 0


# ---------------------------------------------------------------------- answers from the API


def test_an_answer_signed_by_an_unknown_key_is_refused_without_fetching_certificates(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = open_order(wechat)
    fake.answer_key_id = "PUB_KEY_ID_0114232134912410000"

    with outbound_connections() as connections, pytest.raises(ProviderError) as refused:
        wechat.fetch_status(payment_id)

    assert "never downloaded" in str(refused.value)
    assert fake.calls["query"] == 1
    assert len(connections) == 1  # the query itself, and nothing after it
    assert fake.certificate_requests == 0


def test_the_sdk_left_to_itself_would_fetch_certificates_for_an_unknown_key(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    """Why the guard exists: the bare SDK, in public-key mode, still asks the API for
    certificates when an answer names another key."""
    bare = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=fake.mch_id,
        private_key=private_pem(fake.keys.merchant),
        cert_serial_no=fake.keys.merchant_serial,
        appid=fake.app_id,
        apiv3_key=fake.keys.apiv3_key,
        public_key=public_pem(fake.keys.platform),
        public_key_id=fake.keys.platform_key_id,
        timeout=(2.0, 2.0),
    )
    bare._core._gate_way = fake.base_url
    payment_id = open_order(wechat)
    fake.answer_key_id = "PUB_KEY_ID_0114232134912410000"

    with pytest.raises(Exception, match="failed to verify the signature"):
        bare.query(out_trade_no=payment_id)

    assert fake.certificate_requests == 1


def test_an_answer_with_a_forged_signature_is_refused(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    forger = provider_for(fake, public_key=public_pem(stranger_key()))
    payment_id = open_order(wechat)

    with pytest.raises(ProviderError, match="failed to verify the signature"):
        forger.fetch_status(payment_id)

    assert fake.certificate_requests == 0


# ---------------------------------------------------------------------- polling


def test_polling_a_paid_order_reports_it_charged_under_a_stable_id(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = paid_order(fake, wechat, 1500)

    first = wechat.fetch_status(payment_id)
    again = wechat.fetch_status(payment_id)

    assert first is not None
    assert first == again
    assert first.event_id == f"poll:{payment_id}:charged"
    assert (first.kind, first.provider_ref, first.amount, first.currency) == (
        EventKind.CHARGED,
        payment_id,
        1500,
        "CNY",
    )


def test_polling_an_unpaid_order_has_no_news(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    assert wechat.fetch_status(open_order(wechat)) is None


@pytest.mark.parametrize("state", ["CLOSED", "PAYERROR"])
def test_polling_an_order_that_ended_unpaid_reports_it_failed(
    fake: FakeWeChatPay, wechat: WeChatPayProvider, state: str
) -> None:
    payment_id = open_order(wechat)
    fake.end_order(payment_id, state)

    event = wechat.fetch_status(payment_id)

    assert event is not None
    assert (event.kind, event.event_id) == (EventKind.FAILED, f"poll:{payment_id}:failed")


def test_polling_a_refunded_order_brings_news_that_moves_nothing(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = paid_order(fake, wechat)
    wechat.refund(payment_id, 1500, f"{payment_id}:refund")

    event = wechat.fetch_status(payment_id)

    assert event is not None
    assert (event.kind, event.event_id) == (EventKind.OTHER, f"poll:{payment_id}:refund")


def test_polling_an_order_wechat_pay_never_received_reports_it_failed(
    wechat: WeChatPayProvider,
) -> None:
    event = wechat.fetch_status("pay_never_sent")

    assert event is not None
    assert event.kind is EventKind.FAILED


def test_polling_through_an_outage_is_a_provider_error(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    fake.fail_next(1, Outage.SYSTEM_ERROR)

    with pytest.raises(ProviderError, match="SYSTEM_ERROR"):
        wechat.fetch_status("pay_anything")


# ---------------------------------------------------------------------- the trade bill


def test_the_trade_bill_lists_payments_and_refunds_in_fen_at_their_utc_times(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    day = date(2026, 11, 20)
    early = datetime(2026, 11, 20, 0, 30, 5, tzinfo=CHINA)  # still the 19th in UTC
    late = datetime(2026, 11, 20, 23, 59, 59, tzinfo=CHINA)
    first = wechat.create_checkout(checkout_request(1999)).provider_ref
    second = wechat.create_checkout(checkout_request(100001)).provider_ref
    fake.pay(first, at=early)
    fake.pay(second, at=late)
    fake.pay(
        wechat.create_checkout(checkout_request(700)).provider_ref, at=late + timedelta(seconds=1)
    )
    wechat.refund(first, 999, f"{first}:refund")
    refund = fake.refunds[f"{first}-refund"]

    records = wechat.records_for_day(day)
    today = wechat.records_for_day(refund.created_at.astimezone(CHINA).date())

    assert records == [
        ProviderRecord(
            fake.orders[first].transaction_id,
            first,
            RecordKind.PAYMENT,
            1999,
            "CNY",
            datetime(2026, 11, 19, 16, 30, 5, tzinfo=UTC),
        ),
        ProviderRecord(
            fake.orders[second].transaction_id,
            second,
            RecordKind.PAYMENT,
            100001,
            "CNY",
            datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC),
        ),
    ]
    assert today == [
        ProviderRecord(
            refund.refund_id,
            first,
            RecordKind.REFUND,
            999,
            "CNY",
            refund.created_at.replace(microsecond=0),
        )
    ]
    assert fake.calls["billdownload"] == 2


def test_a_day_without_trades_has_no_bill_and_no_records(wechat: WeChatPayProvider) -> None:
    assert wechat.records_for_day(date(2026, 11, 21)) == []


def test_a_bill_offered_outside_the_api_is_not_downloaded(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    day = date(2026, 11, 20)
    fake.pay(open_order(wechat), at=datetime(2026, 11, 20, 12, tzinfo=CHINA))
    fake.bill_base_url = "https://bills.example"

    with outbound_connections() as connections, pytest.raises(ProviderError, match="outside"):
        wechat.records_for_day(day)

    assert len(connections) == 1  # asking for the bill; our credentials went nowhere else
    assert fake.calls["billdownload"] == 0


# ---------------------------------------------------------------------- secrets


def test_secrets_appear_in_no_repr_log_or_error(
    fake: FakeWeChatPay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wechat = provider_for(fake)
    secrets = [
        fake.keys.apiv3_key,
        *private_pem(fake.keys.merchant).splitlines()[1:-1],
    ]
    payment_id = paid_order(fake, wechat)
    fake.fail_next(1, Outage.SYSTEM_ERROR)
    with pytest.raises(ProviderError) as failed:
        wechat.refund(payment_id, 1500, f"{payment_id}:refund")
    wechat.refund(payment_id, 1500, f"{payment_id}:refund")
    notice = fake.transaction_notification(payment_id)
    wechat.verify_webhook(notice.body, notice.headers, now())

    seen = " ".join([repr(wechat), str(vars(wechat)), caplog.text, str(failed.value)])
    assert "WeChatPayProvider(mch_id=" in repr(wechat)
    assert [s for s in secrets if s in seen] == []


# ---------------------------------------------------------------------- through the HTTP API


@pytest.fixture
def settings(database_url: str, fake: FakeWeChatPay) -> Settings:
    return make_settings(database_url, **fake.provider_settings("http://testserver"))


def cny_team(
    client: TestClient, services: Services, team_size: int = 2
) -> tuple[str, Account, str]:
    """A team of a new CNY deal (group price 15.00 yuan) and its leader's held seat."""
    merchant = create_merchant(services.db, currency="CNY", country="CN", time_zone="Asia/Shanghai")
    deal = create_deal(services.db, merchant, team_size=team_size)
    leader = create_account(services)
    started = client.post(f"/v1/deals/{deal.id}/teams", headers=leader.headers)
    assert started.status_code == 201, started.text
    return started.json()["team"]["id"], leader, started.json()["seat"]["id"]


def pay_with_wechat(client: TestClient, shopper: Account, seat_id: str) -> dict[str, Any]:
    response = client.post(
        f"/v1/seats/{seat_id}/payments",
        json={"provider": "wechatpay", "checkout_kind": "native"},
        headers=shopper.headers,
    )
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


def deliver(client: TestClient, notice: Notification) -> Any:
    return client.post("/v1/webhooks/wechatpay", content=notice.body, headers=notice.headers)


def statuses(services: Services) -> list[str]:
    return services.db.run_sync(lambda s: sorted(p.status for p in s.query(Payment).all()))


def test_a_shopper_pays_by_qr_code_and_the_notification_marks_the_seat_paid(
    client: TestClient, services: Services, fake: FakeWeChatPay
) -> None:
    team_id, shopper, seat_id = cny_team(client, services)

    payment = pay_with_wechat(client, shopper, seat_id)
    notice = fake.pay(payment["id"])
    first = deliver(client, notice)
    redelivered = deliver(client, notice)

    assert (payment["provider"], payment["style"]) == ("wechatpay", "charge")
    assert payment["amount"] == {"amount": 1500, "currency": "CNY"}
    assert payment["next_action"]["type"] == "show_qr_code"
    assert payment["next_action"]["qr_code"].startswith("weixin://wxpay/bizpayurl?pr=")
    order = fake.orders[payment["id"]]
    assert (order.total, order.notify_url) == (1500, "http://testserver/v1/webhooks/wechatpay")
    assert order.time_expire is not None
    assert order.time_expire.utcoffset() == timedelta(hours=8)
    assert (first.status_code, first.json()) == (200, {"received": True, "duplicate": False})
    assert redelivered.json() == {"received": True, "duplicate": True}
    read = client.get(f"/v1/payments/{payment['id']}", headers=shopper.headers).json()
    assert read["status"] == "charged"
    assert client.get(f"/v1/teams/{team_id}").json()["seats_paid"] == 1


def test_a_forged_notification_over_http_is_refused_and_changes_nothing(
    client: TestClient, services: Services, fake: FakeWeChatPay
) -> None:
    _, shopper, seat_id = cny_team(client, services)
    payment = pay_with_wechat(client, shopper, seat_id)
    fake.pay(payment["id"])

    forged = deliver(
        client, fake.transaction_notification(payment["id"], signing_key=stranger_key())
    )
    stale = deliver(
        client,
        fake.transaction_notification(payment["id"], timestamp=int(now().timestamp()) - 301),
    )

    assert (forged.status_code, forged.json()["code"]) == (400, "invalid_signature")
    assert (stale.status_code, stale.json()["code"]) == (400, "stale_signature")
    assert statuses(services) == ["requires_action"]
    assert fake.certificate_requests == 0


def test_a_failed_team_is_refunded_by_the_worker_once_though_the_first_try_fails(
    client: TestClient, services: Services, fake: FakeWeChatPay
) -> None:
    team_id, leader, seat_id = cny_team(client, services, team_size=3)
    payment = pay_with_wechat(client, leader, seat_id)
    assert deliver(client, fake.pay(payment["id"])).status_code == 200
    fake.fail_next(1, Outage.SYSTEM_ERROR, path="/v3/refund/")
    worker = Worker(services)

    clock.advance(timedelta(days=2))
    first = worker.run_until_idle()
    waiting = statuses(services)
    clock.advance(timedelta(seconds=6))  # past the first backoff (5 s)
    second = worker.run_until_idle()
    clock.advance(timedelta(hours=2))
    third = worker.run_until_idle()

    assert client.get(f"/v1/teams/{team_id}").json()["status"] == "failed"
    assert (first.provider_failures, first.provider_calls) == (1, 0)
    assert waiting == ["charged"]
    assert (second.provider_failures, second.provider_calls) == (0, 1)
    assert third.provider_calls == third.provider_failures == 0
    assert fake.calls["refund"] == 2
    [refund] = fake.refunds.values()
    assert (refund.out_trade_no, refund.refund, refund.total) == (payment["id"], 1500, 1500)
    assert refund.out_refund_no == f"{payment['id']}-refund"
    assert statuses(services) == ["refunded"]


# ---------------------------------------------------------------------- every payment ends


def test_an_abnormal_refund_is_refused_for_good_and_its_notice_reads_as_refund_failed(
    fake: FakeWeChatPay, wechat: WeChatPayProvider
) -> None:
    payment_id = paid_order(fake, wechat, 1500)
    wechat.refund(payment_id, 1500, f"{payment_id}:refund")
    notice = fake.abandon_refund(f"{payment_id}-refund")

    event = wechat.verify_webhook(notice.body, notice.headers, now())

    assert (event.kind, event.raw_type, event.provider_ref) == (
        EventKind.REFUND_FAILED,
        "REFUND.ABNORMAL",
        payment_id,
    )
    with pytest.raises(ProviderRefused, match="ABNORMAL"):
        wechat.refund(payment_id, 1500, f"{payment_id}:refund")
