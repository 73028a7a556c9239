"""Alipay's yuan texts as exact fen, and the daily trade bill read into statement records."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pintuan.domain.payments import ProviderRecord, RecordKind
from pintuan.payments.providers.alipay import (
    AmountError,
    BillFormatError,
    fen_to_yuan,
    parse_trade_bill,
    yuan_to_fen,
)

# ---------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (10, "0.10"),
        (1999, "19.99"),
        (100_000_000, "1000000.00"),
        # Past 2**53 a float cannot hold every fen: the conversion must not pass through one.
        (9_007_199_254_740_993, "90071992547409.93"),
    ],
)
def test_fen_become_exact_yuan_and_back(fen: int, yuan: str) -> None:
    assert fen_to_yuan(fen) == yuan
    assert yuan_to_fen(yuan) == fen


@pytest.mark.parametrize(("yuan", "fen"), [("19", 1900), ("0.1", 10), ("7.5", 750)])
def test_yuan_with_fewer_decimals_are_read_exactly(yuan: str, fen: int) -> None:
    assert yuan_to_fen(yuan) == fen


@pytest.mark.parametrize(
    "text",
    ["19.999", "0.001", "-1.00", "1e3", " 1.00", "1.00 ", "NaN", "", "01.00", "1.", ".5", "1,00"],
)
def test_a_yuan_text_that_is_not_exact_is_refused(text: str) -> None:
    with pytest.raises(AmountError):
        yuan_to_fen(text)


@pytest.mark.parametrize("amount", [-1, 19.99, True, "1999"])
def test_only_whole_non_negative_fen_become_yuan(amount: object) -> None:
    with pytest.raises(AmountError):
        fen_to_yuan(amount)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**15))
def test_every_amount_survives_the_round_trip(fen: int) -> None:
    assert yuan_to_fen(fen_to_yuan(fen)) == fen


# ---------------------------------------------------------------------- the bill

HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"  # noqa: RUF001
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"  # noqa: RUF001
    "退款批次号/请求号,服务费（元）,分润（元）,备注"  # noqa: RUF001
)
PAYMENT = (
    "2026112422001400000000000001\t,pay_01A\t,交易\t,拼团 火锅\t,2026-11-24 00:20:11\t,"
    "2026-11-24 00:30:05\t,\t,\t,\t,\t,sho***@example.com\t,19.99\t,19.99\t,0.00\t,0.00\t,"
    "0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,\t"
)
REFUND = (
    "2026112422001400000000000001\t,pay_01A\t,退款\t,拼团 火锅\t,2026-11-24 00:20:11\t,"
    "2026-11-24 18:00:00\t,\t,\t,\t,\t,sho***@example.com\t,-5.00\t,-5.00\t,0.00\t,0.00\t,"
    "0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,pay_01A:refund\t,0.00\t,0.00\t,\t"
)
SUMMARY = "\r\n".join(
    [
        "#支付宝业务汇总查询",
        "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）",  # noqa: RUF001
        "合计,,1,1,14.99,14.99",
    ]
)


def detail(*rows: str, totals: str = "#交易合计：1笔，退款合计：1笔", header: str = HEADER) -> str:  # noqa: RUF001
    return "\r\n".join(
        [
            "#支付宝业务明细查询",
            "#账号：[20880000000000010156]",  # noqa: RUF001
            "#起始日期：[2026年11月24日 00:00:00]   终止日期：[2026年11月25日 00:00:00]",  # noqa: RUF001
            "#-----------------------------------------业务明细列表-----------------------------",
            header,
            *rows,
            "#-----------------------------------------业务明细列表结束-------------------------",
            totals,
            "#导出时间：[2026年11月25日 09:32:11]",  # noqa: RUF001
        ]
    )


def bill_zip(*texts: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n, text in enumerate(texts):
            archive.writestr(f"bill_{n}.csv", text.encode("gbk"))
    return buffer.getvalue()


def test_the_bill_reads_payments_and_refunds_with_beijing_times_in_utc() -> None:
    records = parse_trade_bill(bill_zip(SUMMARY, detail(PAYMENT, REFUND)))

    assert records == [
        ProviderRecord(
            "2026112422001400000000000001",
            "pay_01A",
            RecordKind.PAYMENT,
            1999,
            "CNY",
            datetime(2026, 11, 23, 16, 30, 5, tzinfo=UTC),
        ),
        ProviderRecord(
            "2026112422001400000000000001:pay_01A:refund",
            "pay_01A",
            RecordKind.REFUND,
            500,
            "CNY",
            datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC),
        ),
    ]


def test_a_bill_with_half_width_brackets_in_its_header_reads_the_same() -> None:
    plain = HEADER.replace("（", "(").replace("）", ")")  # noqa: RUF001

    records = parse_trade_bill(bill_zip(detail(PAYMENT, REFUND, header=plain)))

    assert [r.amount for r in records] == [1999, 500]


def test_an_empty_day_is_an_empty_list() -> None:
    assert parse_trade_bill(bill_zip(detail(totals="#交易合计：0笔，退款合计：0笔"))) == []  # noqa: RUF001


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (bill_zip(detail(PAYMENT)), "totals line says 1 payments and 1 refunds"),
        (bill_zip(detail(PAYMENT, REFUND, totals="#导出结束")), "totals line is missing"),
        (bill_zip(detail(PAYMENT.replace("交易", "冻结"), REFUND)), "unknown business type"),
        (bill_zip(detail(PAYMENT.replace("19.99\t", "19.995\t"), REFUND)), "19.995"),
        (bill_zip(detail(PAYMENT.replace(",19.99\t", ",-19.99\t"), REFUND)), "negative"),
        (bill_zip(detail(PAYMENT.replace("2026-11-24 00:30:05", "yesterday"), REFUND)), "row"),
        (bill_zip(SUMMARY), "no trade detail table"),
        (b"PK not really a zip", "not a zip"),
    ],
)
def test_a_bill_that_does_not_add_up_or_read_is_refused(content: bytes, reason: str) -> None:
    with pytest.raises(BillFormatError, match=reason):
        parse_trade_bill(content)
