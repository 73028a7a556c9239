"""Alipay (支付宝) through its open API gateway: charge on join, refund on failure.

Alipay has no hold: the shopper pays at once and a failed team is refunded. Every call is signed
with the merchant app's RSA2 key and every answer (and every asynchronous notification) is
verified with Alipay's public key before anything in it is believed.

Our payment id is Alipay's ``out_trade_no``, so a payment has its reference before Alipay has
said anything, and a refund's ``out_request_no`` is the worker's idempotency key, so a retried
refund can never pay back twice.
"""

from __future__ import annotations

import binascii
import csv
import http.client
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from urllib.request import urlopen
from zoneinfo import ZoneInfo

from alipay import AliPay  # type: ignore[import-untyped]
from alipay.exceptions import (  # type: ignore[import-untyped]
    AliPayException,
    AliPayValidationError,
)
from alipay.utils import AliPayConfig  # type: ignore[import-untyped]

from pintuan.config import Settings
from pintuan.domain.payments import (
    Capabilities,
    Checkout,
    CheckoutRequest,
    EventKind,
    PaymentStyle,
    ProviderError,
    ProviderEvent,
    ProviderRecord,
    ProviderRefused,
    RecordKind,
    WebhookRejected,
)
from pintuan.domain.refunds import MoneyNotice, NoticeKind
from pintuan.errors import InvalidInput

GATEWAY = "https://openapi.alipay.com/gateway.do"
NOTIFY_PATH = "/v1/webhooks/alipay"
BEIJING = ZoneInfo("Asia/Shanghai")
WIRE_TIME = "%Y-%m-%d %H:%M:%S"  # Alipay's time format, always Beijing time
CURRENCY = "CNY"

SUCCESS = "10000"
# Answers that say "try again with the same parameters": nothing was decided.
RETRYABLE_CODES = frozenset({"20000"})
RETRYABLE_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"})

PAID = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
CLOSED = "TRADE_CLOSED"

_AMOUNT = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]{1,2})?")


class AmountError(ValueError):
    """A text that is not an amount of yuan with at most two decimals."""


def fen_to_yuan(amount: int) -> str:
    """Integer fen as Alipay's decimal yuan text, exactly: 1999 → ``"19.99"``."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise AmountError(f"{amount!r} is not a non-negative whole number of fen")
    yuan, fen = divmod(amount, 100)
    return f"{yuan}.{fen:02d}"


def yuan_to_fen(text: str) -> int:
    """Alipay's decimal yuan text as integer fen, exactly: ``"19.99"`` → 1999.

    Anything else (a third decimal, a sign, an exponent, spaces) is refused rather than
    rounded: an amount we cannot read exactly is not an amount we may act on.
    """
    if not _AMOUNT.fullmatch(text):
        raise AmountError(f"{text!r} is not an amount of yuan with at most two decimals")
    return int(Decimal(text).scaleb(2))


def beijing_wire_time(instant: datetime) -> str:
    return instant.astimezone(BEIJING).strftime(WIRE_TIME)


def _pem_or_der(key: str) -> str | bytes:
    """Keys as PEM text, or as the bare base64 Alipay's key tool and console hand out."""
    text = key.strip()
    if text.startswith("-----BEGIN"):
        return text
    try:
        return binascii.a2b_base64("".join(text.split()))
    except binascii.Error as exc:
        raise ValueError("an Alipay key must be PEM text or base64 DER") from exc


class _Client(AliPay):  # type: ignore[misc]
    """The SDK, pointed at a chosen gateway, stamping requests with Beijing time."""

    def __init__(self, *, gateway: str, timeout: float, **kwargs: Any) -> None:
        super().__init__(config=AliPayConfig(timeout=timeout), **kwargs)
        # The SDK knows only Alipay's production and sandbox addresses and offers no parameter.
        self._gateway = gateway

    def build_body(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        data: dict[str, Any] = super().build_body(*args, **kwargs)
        # Alipay reads ``timestamp`` as Beijing time; the SDK writes the server's local time.
        # It is a wire stamp compared with Alipay's wall clock, so it uses the real clock, never
        # the application's (which tests and demos may move).
        data["timestamp"] = datetime.now(UTC).astimezone(BEIJING).strftime(WIRE_TIME)
        return data


def _refund_notices(params: Mapping[str, str]) -> tuple[MoneyNotice, ...]:
    """A refund notification names the refund by its request number (``out_biz_no``, ours when
    we asked) and says only what the trade has refunded in all (``refund_fee``)."""
    number, fee = params.get("out_biz_no", ""), params.get("refund_fee")
    try:
        refunded_total = yuan_to_fen(fee) if fee else None
    except AmountError as exc:
        raise WebhookRejected(f"refund_fee: {exc}.", code="invalid_event") from exc
    if not number:
        return ()
    return (
        MoneyNotice(
            NoticeKind.REFUNDED,
            number[:120],
            None,
            request_no=number,
            refunded_total=refunded_total,
        ),
    )


def _describe(answer: Mapping[str, Any]) -> str:
    parts = [str(answer.get(k)) for k in ("code", "sub_code", "sub_msg") if answer.get(k)]
    return " ".join(parts) or "no code"


def _retryable(answer: Mapping[str, Any]) -> bool:
    return answer.get("code") in RETRYABLE_CODES or answer.get("sub_code") in RETRYABLE_SUB_CODES


class AlipayProvider:
    name = "alipay"
    blocking_io = True
    # Alipay keeps re-sending a notification until it reads exactly this.
    webhook_ack_body: bytes | None = b"success"
    capabilities = Capabilities(
        styles=frozenset({PaymentStyle.CHARGE}),
        longest_hold=None,
        partial_refunds=True,
        # Domestic Alipay takes yuan only; other currencies need Alipay's cross-border
        # products, which are separate contracts with their own API.
        currencies=frozenset({CURRENCY}),
        checkout_kinds=("wap", "page", "qr"),
        bill_time_zone="Asia/Shanghai",
    )

    def __init__(
        self,
        *,
        app_id: str,
        app_private_key: str,
        alipay_public_key: str,
        base_url: str,
        gateway: str | None = None,
        timeout_seconds: float = 15.0,
    ) -> None:
        self._app_id = app_id
        self._gateway = gateway or GATEWAY
        self._notify_url = base_url.rstrip("/") + NOTIFY_PATH
        self._timeout = timeout_seconds
        try:
            self._client = _Client(
                gateway=self._gateway,
                timeout=timeout_seconds,
                appid=app_id,
                app_private_key_string=_pem_or_der(app_private_key),
                alipay_public_key_string=_pem_or_der(alipay_public_key),
                sign_type="RSA2",
            )
        except (ValueError, IndexError, TypeError):
            # The parser's own message may quote the key: say which setting, never its value.
            raise ValueError(
                "PINTUAN_ALIPAY_PRIVATE_KEY or PINTUAN_ALIPAY_PUBLIC_KEY is not a readable RSA "
                "key (PEM, or the bare base64 Alipay's key tool gives)"
            ) from None

    @classmethod
    def from_settings(cls, settings: Settings) -> AlipayProvider:
        if not (settings.alipay_app_id and settings.alipay_private_key):
            raise ValueError("PINTUAN_ALIPAY_PRIVATE_KEY must be set with PINTUAN_ALIPAY_APP_ID")
        if not settings.alipay_public_key:
            raise ValueError("PINTUAN_ALIPAY_PUBLIC_KEY must be set with PINTUAN_ALIPAY_APP_ID")
        return cls(
            app_id=settings.alipay_app_id,
            app_private_key=settings.alipay_private_key.get_secret_value(),
            alipay_public_key=settings.alipay_public_key,
            base_url=settings.base_url,
            gateway=settings.alipay_gateway,
        )

    def __repr__(self) -> str:
        return f"AlipayProvider(app_id={self._app_id!r}, gateway={self._gateway!r})"

    def default_style(self) -> PaymentStyle:
        return PaymentStyle.CHARGE

    # ------------------------------------------------------------------ paying

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        if request.currency != CURRENCY:
            raise InvalidInput(
                f"Alipay takes {CURRENCY} only; this payment is in {request.currency}.",
                code="currency_not_supported",
            )
        kind = request.kind or self.capabilities.checkout_kinds[0]
        if kind not in self.capabilities.checkout_kinds:
            raise InvalidInput(
                f"Alipay has no checkout {kind!r}; choose one of "
                f"{', '.join(self.capabilities.checkout_kinds)}.",
                code="checkout_kind_not_supported",
            )
        subject = re.sub(r"[/=&]", " ", request.description)[:256] or "Pintuan"
        total = fen_to_yuan(request.amount)
        extra: dict[str, str] = {}
        if request.expires_at is not None:
            extra["time_expire"] = beijing_wire_time(request.expires_at)
        ref = request.payment_id
        if kind == "qr":
            answer = self._ask(
                "precreate",
                lambda c: c.api_alipay_trade_precreate(
                    subject, ref, total, notify_url=self._notify_url, **extra
                ),
            )
            qr_code = answer.get("qr_code")
            if answer.get("code") != SUCCESS or not qr_code:
                raise ProviderError(f"alipay precreate: {_describe(answer)}")
            return Checkout(provider_ref=ref, qr_code=str(qr_code))
        pay = (
            self._client.api_alipay_trade_wap_pay
            if kind == "wap"
            else self._client.api_alipay_trade_page_pay
        )
        signed = pay(
            subject,
            ref,
            total,
            return_url=request.return_url,
            notify_url=self._notify_url,
            **extra,
        )
        return Checkout(provider_ref=ref, url=f"{self._gateway}?{signed}")

    # ------------------------------------------------------------------ money back

    def capture(self, provider_ref: str, amount: int, idempotency_key: str) -> None:
        raise ProviderError(
            "alipay: there is no hold to capture; Alipay charges at once (charge style)"
        )

    def void(self, provider_ref: str, idempotency_key: str) -> None:
        raise ProviderError(
            "alipay: there is no hold to void; a charged payment is refunded instead"
        )

    def refund(self, provider_ref: str, amount: int, idempotency_key: str) -> None:
        refund_amount = fen_to_yuan(amount)
        answer = self._ask(
            "refund",
            lambda c: c.api_alipay_trade_refund(
                refund_amount, out_trade_no=provider_ref, out_request_no=idempotency_key
            ),
        )
        # A repeat of a refund Alipay already made answers success without moving money again
        # (fund_change "N"): done either way.
        if answer.get("code") == SUCCESS:
            return
        if _retryable(answer):
            raise ProviderError(f"alipay refund: {_describe(answer)}")
        # A business failure may still mean our refund exists (a repeat on a trade the first
        # call closed): ask for the refund by its request number before calling it failed.
        if self._refund_made(provider_ref, idempotency_key, amount):
            return
        raise ProviderRefused(f"alipay refund: {_describe(answer)}")

    def _refund_made(self, provider_ref: str, out_request_no: str, amount: int) -> bool:
        answer = self._ask(
            "refund query",
            lambda c: c.api_alipay_trade_fastpay_refund_query(
                out_request_no, out_trade_no=provider_ref
            ),
        )
        if answer.get("code") != SUCCESS or answer.get("refund_status") != "REFUND_SUCCESS":
            return False
        try:
            refunded = yuan_to_fen(str(answer.get("refund_amount", "")))
        except AmountError as exc:
            raise ProviderError(f"alipay refund query: unreadable refund_amount: {exc}") from exc
        if refunded != amount:
            raise ProviderError(
                f"alipay refund: request {out_request_no} already refunded {refunded} fen, "
                f"not {amount}"
            )
        return True

    # ------------------------------------------------------------------ news from Alipay

    def verify_webhook(
        self, body: bytes, headers: Mapping[str, str], now: datetime
    ) -> ProviderEvent:
        # No freshness window on notify_time: Alipay re-sends an unacknowledged notification for
        # about a day, so a tight window would refuse genuine news, and a replayed notification
        # can only repeat true, Alipay-signed news, which the inbox stores once by notify_id.
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, errors="strict"
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise WebhookRejected(
                "The body is not a form-encoded Alipay notification.", code="invalid_event"
            ) from exc
        params = dict(pairs)
        if len(params) != len(pairs):
            raise WebhookRejected("A notification field appears twice.", code="invalid_event")
        signature = params.pop("sign", "")
        sign_type = params.pop("sign_type", "")
        if not signature or sign_type != "RSA2":
            raise WebhookRejected("The notification is not signed with RSA2.")
        try:
            genuine = bool(self._client.verify(dict(params), signature))
        except (AliPayException, ValueError, binascii.Error):
            genuine = False
        if not genuine:
            raise WebhookRejected("The signature does not match the notification.")
        if params.get("app_id") != self._app_id:
            raise WebhookRejected(
                "The notification is for another Alipay app.", code="invalid_event"
            )
        try:
            event_id = params["notify_id"]
            status = params["trade_status"]
            ref = params["out_trade_no"]
            amount = yuan_to_fen(params["total_amount"])
        except KeyError as exc:
            raise WebhookRejected(
                f"The notification has no {exc.args[0]}.", code="invalid_event"
            ) from exc
        except AmountError as exc:
            raise WebhookRejected(f"total_amount: {exc}.", code="invalid_event") from exc
        if not (event_id and ref):
            raise WebhookRejected("The notification has no id or trade.", code="invalid_event")
        # A refund is announced with the trade's status and the refund's own fields; it is not
        # news of the payment itself.
        refund_notice = any(k in params for k in ("gmt_refund", "refund_fee", "out_biz_no"))
        money_moved = refund_notice or bool(params.get("gmt_payment"))
        if status in PAID and not refund_notice:
            kind = EventKind.CHARGED
        elif status == CLOSED and not money_moved:
            kind = EventKind.FAILED
        else:
            kind = EventKind.OTHER
        raw_type = f"{status}.refund" if refund_notice else status
        return ProviderEvent(
            event_id=event_id,
            kind=kind,
            raw_type=raw_type[:60],
            provider_ref=ref,
            amount=amount,
            currency=CURRENCY,
            notices=_refund_notices(params) if refund_notice else (),
        )

    def fetch_status(self, provider_ref: str) -> ProviderEvent | None:
        answer = self._ask("query", lambda c: c.api_alipay_trade_query(out_trade_no=provider_ref))
        if answer.get("code") != SUCCESS:
            if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return None  # the shopper has not opened the checkout yet
            raise ProviderError(f"alipay query: {_describe(answer)}")
        status = str(answer.get("trade_status", ""))
        try:
            amount = yuan_to_fen(str(answer.get("total_amount", "")))
        except AmountError as exc:
            raise ProviderError(f"alipay query: unreadable total_amount: {exc}") from exc
        if status in PAID:
            kind, news = EventKind.CHARGED, "charged"
        elif status == CLOSED and not answer.get("send_pay_date"):
            kind, news = EventKind.FAILED, "failed"
        elif status == CLOSED:
            kind, news = EventKind.OTHER, "closed_after_refund"
        else:
            return None  # WAIT_BUYER_PAY: still waiting
        return ProviderEvent(
            event_id=f"poll:{provider_ref}:{news}",
            kind=kind,
            raw_type=status,
            provider_ref=provider_ref,
            amount=amount,
            currency=CURRENCY,
        )

    def records_for_day(self, day: date) -> list[ProviderRecord]:
        answer = self._ask(
            "bill",
            lambda c: c.server_api(
                "alipay.data.dataservice.bill.downloadurl.query",
                biz_content={"bill_type": "trade", "bill_date": day.isoformat()},
            ),
        )
        if answer.get("code") != SUCCESS:
            if answer.get("sub_code") == "isp.bill_not_exist":
                raise ProviderError(
                    f"alipay bill: no bill for {day} yet (Alipay publishes a day's bill the "
                    "next morning, Beijing time)"
                )
            raise ProviderError(f"alipay bill: {_describe(answer)}")
        url = str(answer.get("bill_download_url", ""))
        if urlsplit(url).scheme not in ("https", "http"):
            raise ProviderError("alipay bill: the answer has no download address")
        content = self._fetch(url)
        try:
            return parse_trade_bill(content)
        except BillFormatError as exc:
            raise ProviderError(f"alipay bill for {day}: {exc}") from exc

    # ------------------------------------------------------------------ the wire

    def _ask(self, what: str, call: Callable[[_Client], Any]) -> dict[str, Any]:
        """One signed call; the answer only once its signature checks out."""
        try:
            answer = call(self._client)
        except AliPayValidationError as exc:
            raise ProviderError(f"alipay {what}: the answer's signature does not verify") from exc
        except AliPayException as exc:
            raise ProviderError(f"alipay {what}: unsigned error answer: {str(exc)[:300]}") from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise ProviderError(f"alipay {what}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, dict):
            raise ProviderError(f"alipay {what}: the answer is not an object")
        return answer

    def _fetch(self, url: str) -> bytes:
        try:
            with urlopen(url, timeout=self._timeout) as response:  # noqa: S310 - scheme checked
                body: bytes = response.read()
                return body
        except (OSError, http.client.HTTPException) as exc:
            raise ProviderError(f"alipay bill download: {type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------------- the daily bill


class BillFormatError(ValueError):
    """A bill file that does not read as Alipay's trade detail bill."""


@dataclass(frozen=True, slots=True)
class _Columns:
    trade_no: int
    out_trade_no: int
    kind: int
    finished_at: int
    amount: int
    refund_no: int


_HEADER_NAMES = {
    "trade_no": "支付宝交易号",
    "out_trade_no": "商户订单号",
    "kind": "业务类型",
    "finished_at": "完成时间",
    "amount": "订单金额(元)",
    "refund_no": "退款批次号/请求号",
}
_KINDS = {"交易": RecordKind.PAYMENT, "退款": RecordKind.REFUND}
_TOTALS = re.compile(r"交易合计:\s*(\d+)\s*笔.*?退款合计:\s*(\d+)\s*笔")


def _plain(text: str) -> str:
    """Full-width brackets, colons and digits as their ASCII forms: exports mix both."""
    return unicodedata.normalize("NFKC", text).strip()


def parse_trade_bill(content: bytes) -> list[ProviderRecord]:
    """Payments and refunds from Alipay's zipped trade bill (业务明细).

    The archive holds the detail file and a summary; the detail file is found by its header,
    not its name (names are GBK without the zip's UTF-8 flag, so they read differently on
    different systems). The text is GBK with ``#`` comment lines before and after the table
    and cells padded with tabs; the closing totals line must agree with the rows, so a cut-off
    file is refused rather than read short.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        texts = [archive.read(member).decode("gb18030") for member in archive.namelist()]
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError) as exc:
        raise BillFormatError(f"not a zip of GBK text: {exc}") from exc
    for text in texts:
        parsed = _parse_detail(text)
        if parsed is not None:
            return parsed
    raise BillFormatError("no trade detail table in the archive")


def _parse_detail(text: str) -> list[ProviderRecord] | None:
    lines = text.splitlines()
    table = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not table:
        return None
    rows = list(csv.reader(table))
    header = [_plain(cell) for cell in rows[0]]
    if not all(name in header for name in _HEADER_NAMES.values()):
        return None
    columns = _Columns(**{key: header.index(name) for key, name in _HEADER_NAMES.items()})
    records = [_record(columns, [cell.strip() for cell in row]) for row in rows[1:] if any(row)]
    totals = next((m for line in lines if (m := _TOTALS.search(_plain(line)))), None)
    if totals is None:
        raise BillFormatError("the closing totals line is missing (a cut-off file?)")
    payments = sum(1 for r in records if r.kind is RecordKind.PAYMENT)
    refunds = len(records) - payments
    if (payments, refunds) != (int(totals[1]), int(totals[2])):
        raise BillFormatError(
            f"the totals line says {totals[1]} payments and {totals[2]} refunds, "
            f"the table has {payments} and {refunds}"
        )
    return records


def _record(columns: _Columns, row: list[str]) -> ProviderRecord:
    try:
        trade_no = row[columns.trade_no]
        kind = _KINDS.get(row[columns.kind])
        amount_text = row[columns.amount]
        finished = datetime.strptime(row[columns.finished_at], WIRE_TIME)  # noqa: DTZ007 - Beijing time, attached next
        refund_no = row[columns.refund_no]
        out_trade_no = row[columns.out_trade_no]
    except (IndexError, ValueError) as exc:
        raise BillFormatError(f"unreadable row {row!r}: {exc}") from exc
    if kind is None:
        # Reconciliation must see every movement: an unknown kind stops it rather than vanish.
        raise BillFormatError(f"unknown business type {row[columns.kind]!r} for {trade_no}")
    negative = amount_text.startswith("-")
    if negative and kind is RecordKind.PAYMENT:
        raise BillFormatError(f"payment {trade_no} has a negative amount {amount_text}")
    try:
        amount = yuan_to_fen(amount_text.removeprefix("-"))
    except AmountError as exc:
        raise BillFormatError(str(exc)) from exc
    if not trade_no or not out_trade_no:
        raise BillFormatError(f"a row without trade numbers: {row!r}")
    record_id = trade_no if kind is RecordKind.PAYMENT else f"{trade_no}:{refund_no}"
    return ProviderRecord(
        record_id=record_id,
        provider_ref=out_trade_no,
        kind=kind,
        amount=amount,
        currency=CURRENCY,
        occurred_at=finished.replace(tzinfo=BEIJING).astimezone(UTC),
    )
