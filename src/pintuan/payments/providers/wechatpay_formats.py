"""WeChat Pay's own formats, pure and offline: refund numbers, times, amounts in yuan, and the
trade bills reconciliation reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from pintuan.domain.payments import ProviderError, ProviderRecord, RecordKind

CHINA = ZoneInfo("Asia/Shanghai")

_REFUND_NUMBER = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
_YUAN = re.compile(r"-?[0-9]+(\.[0-9]{1,2})?")


def refund_number(idempotency_key: str) -> str:
    """WeChat's ``out_refund_no`` for one of our idempotency keys, the same every time.

    Our keys read ``<payment id>:<action>``; WeChat allows no colon, so it becomes a hyphen (our
    ids hold none, so two keys never share a number).
    """
    number = idempotency_key.replace(":", "-")
    if not _REFUND_NUMBER.fullmatch(number):
        raise ProviderError(
            f"wechatpay: {idempotency_key!r} cannot be a refund number "
            "(1 to 64 of 0-9, A-Z, a-z and _ - | * @)"
        )
    return number


def china_time(instant: datetime) -> str:
    """An instant as WeChat writes times: RFC 3339 in China Standard Time, to the second."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: an instant must carry its time zone")
    return instant.astimezone(CHINA).replace(microsecond=0).isoformat()


def fen(yuan: str) -> int:
    """A bill's amount in yuan (``15.00``) as integer fen, exactly; anything else is refused."""
    if not _YUAN.fullmatch(yuan):
        raise ValueError(f"{yuan!r} is not an amount in yuan")
    return int(Decimal(yuan).scaleb(2))


def parse_trade_bill(text: str) -> list[ProviderRecord]:
    """The payments and refunds of a WeChat Pay v3 trade bill (``bill_type=ALL``).

    The bill is a header line, one line per trade with every field led by a backtick, then a
    summary header and line. Fields are split on ``,``+backtick, so a comma inside a product name
    stays in its field. The rows must add up to the summary, or the bill is refused.
    Payments count at their order amount and refunds at the amount asked back, the same amounts
    Pintuan sends, so coupons do not show up as differences.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the bill is empty")
    header = lines[0].split(",")
    summary_at = next((i for i, line in enumerate(lines) if line.startswith("总交易单数")), None)
    if summary_at is None or summary_at + 1 >= len(lines):
        raise ValueError("the bill has no summary")
    summary = dict(zip(lines[summary_at].split(","), _fields(lines[summary_at + 1]), strict=False))
    rows: list[dict[str, str]] = []
    for number, line in enumerate(lines[1:summary_at], start=2):
        values = _fields(line)
        if len(values) != len(header):
            raise ValueError(f"line {number} has {len(values)} fields, the header {len(header)}")
        rows.append(dict(zip(header, values, strict=True)))
    try:
        count = int(summary["总交易单数"])
        ordered = fen(summary["订单总金额"])
        asked_back = fen(summary["申请退款总金额"])
        records = [record for row in rows if (record := _record(row)) is not None]
        row_ordered = sum(fen(row["订单金额"]) for row in rows)
        row_asked_back = sum(fen(row["申请退款金额"]) for row in rows)
    except KeyError as exc:
        raise ValueError(f"the bill has no column {exc}") from exc
    if (count, ordered, asked_back) != (len(rows), row_ordered, row_asked_back):
        raise ValueError("the bill's rows do not add up to its summary")
    return records


def _fields(line: str) -> list[str]:
    return line.removeprefix("`").split(",`")


def _record(row: Mapping[str, str]) -> ProviderRecord | None:
    occurred_at = (
        datetime.strptime(row["交易时间"], "%Y-%m-%d %H:%M:%S")
        .replace(tzinfo=CHINA)
        .astimezone(UTC)
    )
    if row["交易状态"] == "SUCCESS":
        return ProviderRecord(
            record_id=row["微信订单号"],
            provider_ref=row["商户订单号"],
            kind=RecordKind.PAYMENT,
            amount=fen(row["订单金额"]),
            currency=row["货币种类"],
            occurred_at=occurred_at,
        )
    if row["交易状态"] == "REFUND" and row["退款状态"] in ("SUCCESS", "PROCESSING"):
        return ProviderRecord(
            record_id=row["微信退款单号"],
            provider_ref=row["商户订单号"],
            kind=RecordKind.REFUND,
            amount=fen(row["申请退款金额"]),
            currency=row["货币种类"],
            occurred_at=occurred_at,
        )
    return None
