"""The pure parts of the WeChat Pay adapter: refund numbers, times, yuan, bills, notifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pintuan.config import Settings
from pintuan.domain.payments import (
    EventKind,
    ProviderError,
    ProviderRecord,
    RecordKind,
    WebhookRejected,
)
from pintuan.payments.providers.wechatpay import WeChatPayProvider, notice_event
from pintuan.payments.providers.wechatpay_formats import (
    china_time,
    fen,
    parse_trade_bill,
    refund_number,
)

HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
PAID = (
    "`2026-11-20 00:30:05,`wx2421b1c4370ec43b,`1900009191,`0,`,`4200001999,`pay_A,`oUpF8u,"
    "`NATIVE,`SUCCESS,`OTHERS,`CNY,`19.99,`0.00,`0,`0,`0.00,`0.00,`,`,`Hotpot, for four,"
    '`{"team":"t1"},`0.12000,`0.60%,`19.99,`0.00,`'
)
REFUNDED = (
    "`2026-11-20 18:00:00,`wx2421b1c4370ec43b,`1900009191,`0,`,`4200001999,`pay_A,`oUpF8u,"
    "`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`5030001,`pay_A-refund,`9.99,`0.00,`ORIGINAL,"
    "`SUCCESS,`Hotpot, for four,`,`-0.06000,`0.60%,`0.00,`9.99,`"
)
PENDING_REFUND = REFUNDED.replace("`5030001", "`5030002").replace("`SUCCESS,", "`PROCESSING,")
REVOKED = PAID.replace("`SUCCESS,", "`REVOKED,").replace("`19.99,", "`0.00,")
SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)


def bill(*rows: str, summary: str) -> str:
    return "\r\n".join([HEADER, *rows, SUMMARY, summary]) + "\r\n"


# ---------------------------------------------------------------------- refund numbers


def test_a_refund_number_is_our_key_with_the_colon_wechat_forbids_replaced() -> None:
    assert refund_number("pay_01JD0Z5Q8N3V7R2K4M6P9T1W3X:refund") == (
        "pay_01JD0Z5Q8N3V7R2K4M6P9T1W3X-refund"
    )


@pytest.mark.parametrize("key", ["", "pay 1:refund", "pay_1:退款", "p" * 65])
def test_a_key_that_cannot_be_a_refund_number_is_refused(key: str) -> None:
    with pytest.raises(ProviderError, match="cannot be a refund number"):
        refund_number(key)


# ---------------------------------------------------------------------- times and amounts


def test_times_go_to_wechat_in_china_standard_time_to_the_second() -> None:
    instant = datetime(2026, 11, 25, 16, 30, 0, 999999, tzinfo=UTC)

    assert china_time(instant) == "2026-11-26T00:30:00+08:00"
    assert china_time(instant.astimezone(timezone(timedelta(hours=-5)))) == (
        "2026-11-26T00:30:00+08:00"
    )


def test_a_naive_time_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="naive"):
        china_time(datetime(2026, 11, 25, 16, 30))  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize(
    ("yuan", "expected"),
    [("19.99", 1999), ("0.01", 1), ("1000", 100000), ("1000.5", 100050), ("-0.06", -6)],
)
def test_yuan_become_exact_fen(yuan: str, expected: int) -> None:
    assert fen(yuan) == expected


@pytest.mark.parametrize("yuan", ["", "1.005", "1e3", "¥1.00", "1,000.00", "0.1.0", "NaN"])
def test_what_is_not_an_amount_in_yuan_is_refused(yuan: str) -> None:
    with pytest.raises(ValueError, match="not an amount in yuan"):
        fen(yuan)


@given(st.integers(min_value=0, max_value=10**15))
def test_every_amount_in_fen_survives_the_trip_through_yuan(amount: int) -> None:
    assert fen(f"{amount // 100}.{amount % 100:02d}") == amount


# ---------------------------------------------------------------------- the trade bill


def test_a_bill_gives_payments_at_order_amount_and_refunds_at_the_amount_asked_back() -> None:
    text = bill(
        PAID, REFUNDED, PENDING_REFUND, summary="`3,`19.99,`19.98,`0.00,`0.00000,`19.99,`19.98"
    )

    records = parse_trade_bill(text)

    assert records == [
        ProviderRecord(
            "4200001999",
            "pay_A",
            RecordKind.PAYMENT,
            1999,
            "CNY",
            datetime(2026, 11, 19, 16, 30, 5, tzinfo=UTC),
        ),
        ProviderRecord(
            "5030001",
            "pay_A",
            RecordKind.REFUND,
            999,
            "CNY",
            datetime(2026, 11, 20, 10, tzinfo=UTC),
        ),
        ProviderRecord(
            "5030002",
            "pay_A",
            RecordKind.REFUND,
            999,
            "CNY",
            datetime(2026, 11, 20, 10, tzinfo=UTC),
        ),
    ]


def test_rows_that_moved_no_money_are_left_out() -> None:
    text = bill(REVOKED, summary="`1,`0.00,`0.00,`0.00,`0.00000,`0.00,`0.00")

    assert parse_trade_bill(text) == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (bill(PAID, summary="`2,`19.99,`0.00,`0.00,`0.00000,`19.99,`0.00"), "add up"),
        (bill(PAID, summary="`1,`19.99,`0.00,`0.00,`0.00000,`19.98,`0.00"), "add up"),
        (bill(PAID, REFUNDED, summary="`2,`19.99,`9.99,`0.00,`0.00000,`19.99,`0.00"), "add up"),
        (
            bill(PAID.removesuffix(",`"), summary="`1,`19.99,`0.00,`0.00,`0.00000,`19.99,`0.00"),
            "line 2 has 26 fields",
        ),
        (
            bill(
                PAID.replace("`19.99,`0.00,`", "`19.999,`0.00,`"),
                summary="`1,`19.99,`0.00,`0.00,`0.00000,`19.99,`0.00",
            ),
            "not an amount",
        ),
        ("\r\n".join([HEADER, PAID]), "no summary"),
        ("", "empty"),
        (
            bill(PAID, summary="`1,`19.99").replace(SUMMARY, "总交易单数,应结订单总金额"),
            "no column",
        ),
    ],
)
def test_a_bill_that_does_not_hold_together_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_trade_bill(text)


# ---------------------------------------------------------------------- notifications


def resource(**changes: object) -> dict[str, object]:
    found: dict[str, object] = {
        "mchid": "1900009191",
        "out_trade_no": "pay_A",
        "trade_state": "SUCCESS",
        "amount": {"total": 1999, "payer_total": 1999, "currency": "CNY"},
    }
    found.update(changes)
    return found


@pytest.mark.parametrize(
    ("event_type", "trade_state", "kind"),
    [
        ("TRANSACTION.SUCCESS", "SUCCESS", EventKind.CHARGED),
        ("TRANSACTION.SUCCESS", "CLOSED", EventKind.FAILED),
        ("TRANSACTION.SUCCESS", "PAYERROR", EventKind.FAILED),
        ("TRANSACTION.SUCCESS", "NOTPAY", EventKind.OTHER),
    ],
)
def test_a_payment_notification_is_read_by_its_trade_state(
    event_type: str, trade_state: str, kind: EventKind
) -> None:
    event = notice_event(
        {"id": "EV-1", "event_type": event_type}, resource(trade_state=trade_state)
    )

    assert (event.event_id, event.kind, event.raw_type) == ("EV-1", kind, event_type)
    assert (event.provider_ref, event.amount, event.currency) == ("pay_A", 1999, "CNY")


def test_a_refund_notification_carries_the_refunded_amount_and_moves_nothing() -> None:
    refund = {
        "mchid": "1900009191",
        "out_trade_no": "pay_A",
        "out_refund_no": "pay_A-refund",
        "refund_status": "SUCCESS",
        "amount": {"total": 1999, "refund": 999, "payer_total": 1999, "payer_refund": 999},
    }

    event = notice_event({"id": "EV-2", "event_type": "REFUND.SUCCESS"}, refund)

    assert (event.kind, event.amount, event.currency) == (EventKind.OTHER, 999, "CNY")


def test_a_notification_without_an_id_or_order_is_refused() -> None:
    with pytest.raises(WebhookRejected) as refused:
        notice_event({"event_type": "TRANSACTION.SUCCESS"}, resource())
    with pytest.raises(WebhookRejected):
        notice_event({"id": "EV-3"}, resource(out_trade_no=None))

    assert refused.value.code == "invalid_event"


# ---------------------------------------------------------------------- settings


def test_enabling_wechat_pay_without_its_keys_names_what_is_missing() -> None:
    settings = Settings.model_validate(
        {"env": "dev", "wechatpay_mch_id": "1900009191", "wechatpay_app_id": "wxd678efh567hg6787"}
    )

    with pytest.raises(ValueError, match="not set") as refused:
        WeChatPayProvider.from_settings(settings)

    assert str(refused.value).endswith(
        "PINTUAN_WECHATPAY_PRIVATE_KEY, PINTUAN_WECHATPAY_CERT_SERIAL, "
        "PINTUAN_WECHATPAY_APIV3_KEY, PINTUAN_WECHATPAY_PUBLIC_KEY, "
        "PINTUAN_WECHATPAY_PUBLIC_KEY_ID"
    )
