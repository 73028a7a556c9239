"""A local fake of Alipay's open API gateway, for the real SDK to talk to on loopback.

It behaves as Alipay does seen from outside: it refuses requests whose RSA2 signature does not
verify with the merchant app's public key, signs every answer with its own private key, keeps
trades and refunds (refunds once per ``out_request_no``), serves the daily trade bill as a zip of
GBK text, and builds the signed asynchronous notifications Alipay would send. Test controls make
the next calls fail in the ways the real gateway can fail.

Signatures here are made and checked with ``cryptography``, not with the SDK's own code, so a
mistake in one cannot hide the same mistake in the other.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import threading
import zipfile
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.loopback import QuietHandler, serving

BEIJING = ZoneInfo("Asia/Shanghai")
WIRE_TIME = "%Y-%m-%d %H:%M:%S"
SELLER_ID = "2088000000000001"

Failure = Literal["http_500", "system_error", "hang", "lose_answer"]


# ---------------------------------------------------------------------- keys and signatures


@dataclass(frozen=True)
class KeyPair:
    private_key: rsa.RSAPrivateKey
    private_pem: str
    public_pem: str

    @classmethod
    def generate(cls) -> KeyPair:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        return cls(key, private_pem, public_pem)

    @property
    def public_base64(self) -> str:
        """The public key as the bare base64 Alipay's console shows."""
        return "".join(line for line in self.public_pem.splitlines() if "-----" not in line)


def signing_text(params: Mapping[str, str], *, exclude: tuple[str, ...]) -> str:
    """Alipay's signed text: the parameters but ``exclude``, sorted, as ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in exclude)


def rsa2_sign(key: rsa.RSAPrivateKey, text: str) -> str:
    signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def rsa2_verifies(public_pem: str, text: str, signature: str) -> bool:
    public_key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    try:
        public_key.verify(
            base64.b64decode(signature), text.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def to_fen(text: str) -> int | None:
    """The fake's own reading of a yuan amount: at most two decimals, more than zero."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    exponent = value.as_tuple().exponent
    if not value.is_finite() or not isinstance(exponent, int) or exponent < -2 or value <= 0:
        return None
    return int(value * 100)


def to_yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


# ---------------------------------------------------------------------- the fake's records


@dataclass
class FakeTrade:
    out_trade_no: str
    trade_no: str
    total: int  # fen
    total_text: str  # exactly as the merchant sent it
    subject: str
    product_code: str
    notify_url: str | None
    return_url: str | None
    time_expire: str | None
    created_at: datetime
    status: str = "WAIT_BUYER_PAY"
    paid_at: datetime | None = None
    refunded: int = 0
    qr_code: str | None = None


@dataclass
class FakeRefund:
    out_trade_no: str
    out_request_no: str
    amount: int  # fen
    at: datetime


@dataclass
class _Gate:
    """Failures queued for the next calls, and a way to wake hanging ones at shutdown."""

    queued: deque[Failure] = field(default_factory=deque)
    only: str | None = None  # the gateway method the queued failures are for (None: any)
    release: threading.Event = field(default_factory=threading.Event)


class FakeAlipay:
    def __init__(
        self,
        *,
        app_id: str,
        app_public_pem: str,
        keys: KeyPair,
        hang_seconds: float = 3.0,
    ) -> None:
        self.app_id = app_id
        self.app_public_pem = app_public_pem
        self.keys = keys
        self.hang_seconds = hang_seconds
        self.base_url = ""
        self.trades: dict[str, FakeTrade] = {}
        self.refunds: list[FakeRefund] = []
        self.calls: Counter[str] = Counter()
        self.request_timestamps: list[str] = []
        # How a repeated refund on a trade the first refund closed is answered: success without
        # moving money (what Alipay documents), or a business failure naming the closed trade.
        self.repeat_refund_on_closed_trade: Literal["success", "ACQ.TRADE_HAS_CLOSE"] = "success"
        # The fake's wall clock for new trades and refunds (tests move it to fill a past bill).
        self.now: Callable[[], datetime] = lambda: datetime.now(BEIJING)
        self._gate = _Gate()
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    def reset(self) -> None:
        """Forget everything, as a fresh gateway (one fake serves a whole test module)."""
        with self._lock:
            self.trades.clear()
            self.refunds.clear()
            self.calls.clear()
            self.request_timestamps.clear()
            self._gate.queued.clear()
            self._gate.only = None
            self.repeat_refund_on_closed_trade = "success"
            self.now = lambda: datetime.now(BEIJING)

    # ------------------------------------------------------------------ running

    @property
    def gateway(self) -> str:
        return f"{self.base_url}/gateway.do"

    @contextmanager
    def serve(self) -> Iterator[FakeAlipay]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                fake._handle(self, urlsplit(self.path).query)

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, self.read_body().decode())

        with serving(Handler) as base_url:
            self.base_url = base_url
            try:
                yield self
            finally:
                self._gate.release.set()

    # ------------------------------------------------------------------ test controls

    def fail_next(self, times: int, how: Failure, only: str | None = None) -> None:
        """The next ``times`` gateway calls (of method ``only`` when given) fail: HTTP 500, a
        signed ACQ.SYSTEM_ERROR, a hang before doing anything, or a hang after doing the work
        (the answer is lost)."""
        with self._lock:
            self._gate.queued.extend([how] * times)
            self._gate.only = only

    def trade(self, out_trade_no: str) -> FakeTrade:
        with self._lock:
            return self.trades[out_trade_no]

    def refunds_of(self, out_trade_no: str) -> list[FakeRefund]:
        with self._lock:
            return [r for r in self.refunds if r.out_trade_no == out_trade_no]

    def pay(self, out_trade_no: str, *, at: datetime | None = None) -> bytes:
        """The shopper pays the trade; returns the signed notification Alipay then sends."""
        with self._lock:
            trade = self.trades[out_trade_no]
            assert trade.status == "WAIT_BUYER_PAY", trade.status
            trade.status = "TRADE_SUCCESS"
            trade.paid_at = (at or self.now()).astimezone(BEIJING)
        return self.signed_form(self.notification(out_trade_no))

    def close(self, out_trade_no: str) -> bytes:
        """The unpaid trade times out; returns the signed notification of its closing."""
        with self._lock:
            trade = self.trades[out_trade_no]
            assert trade.status == "WAIT_BUYER_PAY", trade.status
            trade.status = "TRADE_CLOSED"
        return self.signed_form(self.notification(out_trade_no))

    def notification(self, out_trade_no: str, **overrides: str) -> dict[str, str]:
        """The fields of the trade's asynchronous notification as it stands (unsigned)."""
        with self._lock:
            trade = self.trades[out_trade_no]
            number = next(self._numbers)
        total = to_yuan(trade.total)
        params = {
            "notify_time": datetime.now(BEIJING).strftime(WIRE_TIME),
            "notify_type": "trade_status_sync",
            "notify_id": f"2026112500222{number:010d}",
            "charset": "utf-8",
            "version": "1.0",
            "app_id": self.app_id,
            "auth_app_id": self.app_id,
            "seller_id": SELLER_ID,
            "buyer_id": "2088102177846880",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "total_amount": total,
            "subject": trade.subject,
            "gmt_create": trade.created_at.strftime(WIRE_TIME),
        }
        if trade.paid_at is not None:
            params |= {
                "gmt_payment": trade.paid_at.strftime(WIRE_TIME),
                "receipt_amount": total,
                "invoice_amount": total,
                "buyer_pay_amount": total,
                "point_amount": "0.00",
                "fund_bill_list": json.dumps([{"amount": total, "fundChannel": "ALIPAYACCOUNT"}]),
            }
        params.update(overrides)
        return params

    def refund_notification(self, out_trade_no: str, out_request_no: str) -> bytes:
        """The signed notification Alipay sends after a refund."""
        refund = next(
            r for r in self.refunds_of(out_trade_no) if r.out_request_no == out_request_no
        )
        trade = self.trade(out_trade_no)
        return self.signed_form(
            self.notification(
                out_trade_no,
                gmt_refund=refund.at.strftime(WIRE_TIME + ".000"),
                refund_fee=to_yuan(trade.refunded),
                out_biz_no=out_request_no,
            )
        )

    def refund_in_dashboard(self, out_trade_no: str, amount: int) -> bytes:
        """Someone refunds ``amount`` in Alipay's merchant dashboard, under a request number of
        its own; returns the signed notification Alipay sends of it."""
        with self._lock:
            trade = self.trades[out_trade_no]
            assert trade.refunded + amount <= trade.total
            number = f"HZ{next(self._numbers):012d}"
            self.refunds.append(
                FakeRefund(out_trade_no, number, amount, self.now().astimezone(BEIJING))
            )
            trade.refunded += amount
            if trade.refunded == trade.total:
                trade.status = "TRADE_CLOSED"
        return self.refund_notification(out_trade_no, number)

    def signed_form(self, params: Mapping[str, str], key: KeyPair | None = None) -> bytes:
        """``params`` signed as Alipay signs notifications (by default with its own key)."""
        signed = dict(params)
        signed["sign_type"] = "RSA2"
        signed["sign"] = rsa2_sign(
            (key or self.keys).private_key, signing_text(signed, exclude=("sign", "sign_type"))
        )
        return urlencode(signed).encode()

    # ------------------------------------------------------------------ the gateway

    def _handle(self, handler: QuietHandler, query: str) -> None:
        if urlsplit(handler.path).path.startswith("/bills/"):
            self._serve_bill(handler)
            return
        params = dict(parse_qsl(query, keep_blank_values=True))
        method = params.get("method", "")
        with self._lock:
            self.calls[method] += 1
            aimed = self._gate.only in (None, method)
            failure = self._gate.queued.popleft() if self._gate.queued and aimed else None
        if failure == "http_500":
            handler.reply(500, b"<html><body>Internal Server Error</body></html>", "text/html")
            return
        if failure == "hang":
            self._gate.release.wait(self.hang_seconds)
            handler.close_connection = True
            return
        refused = self._refusal(params)
        if refused is not None:
            self._answer(handler, method, refused)
            return
        biz: dict[str, Any] = json.loads(params.get("biz_content") or "{}")
        if failure == "system_error":
            self._answer(handler, method, _business_failure("ACQ.SYSTEM_ERROR", "系统错误"))
            return
        if method in ("alipay.trade.wap.pay", "alipay.trade.page.pay"):
            self._open_cashier(handler, params, biz)
            return
        operations = {
            "alipay.trade.precreate": self._precreate,
            "alipay.trade.query": self._query,
            "alipay.trade.refund": self._refund,
            "alipay.trade.fastpay.refund.query": self._refund_query,
            "alipay.data.dataservice.bill.downloadurl.query": self._bill_url,
        }
        operation = operations.get(method)
        if operation is None:
            content = {
                "code": "40002",
                "msg": "Invalid Arguments",
                "sub_code": "isv.invalid-method",
                "sub_msg": "不存在的方法名",
            }
        else:
            content = operation(params, biz)
        if failure == "lose_answer":
            self._gate.release.wait(self.hang_seconds)
            handler.close_connection = True
            return
        self._answer(handler, method, content)

    def _refusal(self, params: dict[str, str]) -> dict[str, str] | None:
        signature = params.get("sign", "")
        if not rsa2_verifies(
            self.app_public_pem, signing_text(params, exclude=("sign",)), signature
        ):
            return {
                "code": "40002",
                "msg": "Invalid Arguments",
                "sub_code": "isv.invalid-signature",
                "sub_msg": "验签出错",
            }
        if params.get("app_id") != self.app_id:
            return {
                "code": "40002",
                "msg": "Invalid Arguments",
                "sub_code": "isv.invalid-app-id",
                "sub_msg": "无效的AppID参数",
            }
        try:
            datetime.strptime(params.get("timestamp", ""), WIRE_TIME)  # noqa: DTZ007 - format only
        except ValueError:
            return {
                "code": "40002",
                "msg": "Invalid Arguments",
                "sub_code": "isv.invalid-timestamp",
                "sub_msg": "非法的时间戳参数",
            }
        with self._lock:
            self.request_timestamps.append(params["timestamp"])
        return None

    def _answer(self, handler: QuietHandler, method: str, content: Mapping[str, Any]) -> None:
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        name = method.replace(".", "_") + "_response" if method else "error_response"
        signature = rsa2_sign(self.keys.private_key, text)
        body = f'{{"{name}":{text},"sign":"{signature}"}}'.encode()
        handler.reply(200, body, "text/html;charset=utf-8")

    def _new_trade(self, params: dict[str, str], biz: dict[str, Any]) -> FakeTrade | str:
        total = to_fen(str(biz.get("total_amount", "")))
        if total is None:
            return "ACQ.INVALID_PARAMETER"
        out_trade_no = str(biz.get("out_trade_no", ""))
        with self._lock:
            existing = self.trades.get(out_trade_no)
            if existing is not None:
                return existing if existing.total == total else "ACQ.CONTEXT_INCONSISTENT"
            trade = FakeTrade(
                out_trade_no=out_trade_no,
                trade_no=f"2026112522001{next(self._numbers):015d}",
                total=total,
                total_text=str(biz["total_amount"]),
                subject=str(biz.get("subject", "")),
                product_code=str(biz.get("product_code", "FACE_TO_FACE_PAYMENT")),
                notify_url=params.get("notify_url"),
                return_url=params.get("return_url"),
                time_expire=biz.get("time_expire"),
                created_at=self.now().astimezone(BEIJING),
            )
            self.trades[out_trade_no] = trade
        return trade

    def _open_cashier(
        self, handler: QuietHandler, params: dict[str, str], biz: dict[str, Any]
    ) -> None:
        trade = self._new_trade(params, biz)
        if isinstance(trade, str):
            handler.reply(400, f"<html><body>{trade}</body></html>".encode(), "text/html")
            return
        page = (
            f"<html><body>支付宝收银台 {trade.out_trade_no} ¥{to_yuan(trade.total)}</body></html>"
        )
        handler.reply(200, page.encode(), "text/html;charset=utf-8")

    def _precreate(self, params: dict[str, str], biz: dict[str, Any]) -> dict[str, str]:
        trade = self._new_trade(params, biz)
        if isinstance(trade, str):
            return _business_failure(trade, "参数无效")
        with self._lock:
            trade.qr_code = trade.qr_code or f"https://qr.alipay.com/bax{trade.trade_no[-12:]}"
        return {
            "code": "10000",
            "msg": "Success",
            "out_trade_no": trade.out_trade_no,
            "qr_code": trade.qr_code,
        }

    def _query(self, params: dict[str, str], biz: dict[str, Any]) -> dict[str, str]:
        with self._lock:
            trade = self.trades.get(str(biz.get("out_trade_no", "")))
            if trade is None:
                return _business_failure("ACQ.TRADE_NOT_EXIST", "交易不存在")
            content = {
                "code": "10000",
                "msg": "Success",
                "trade_no": trade.trade_no,
                "out_trade_no": trade.out_trade_no,
                "trade_status": trade.status,
                "total_amount": to_yuan(trade.total),
            }
            if trade.paid_at is not None:
                content["send_pay_date"] = trade.paid_at.strftime(WIRE_TIME)
                content["receipt_amount"] = to_yuan(trade.total)
        return content

    def _refund(self, params: dict[str, str], biz: dict[str, Any]) -> dict[str, str]:
        amount = to_fen(str(biz.get("refund_amount", "")))
        out_request_no = str(biz.get("out_request_no", ""))
        with self._lock:
            trade = self.trades.get(str(biz.get("out_trade_no", "")))
            if trade is None:
                return _business_failure("ACQ.TRADE_NOT_EXIST", "交易不存在")
            if amount is None:
                return _business_failure("ACQ.INVALID_PARAMETER", "参数无效")
            done = next(
                (
                    r
                    for r in self.refunds
                    if r.out_trade_no == trade.out_trade_no and r.out_request_no == out_request_no
                ),
                None,
            )
            if done is not None:
                if done.amount != amount:
                    return _business_failure("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致")
                if trade.status == "TRADE_CLOSED" and self.repeat_refund_on_closed_trade != (
                    "success"
                ):
                    return _business_failure(self.repeat_refund_on_closed_trade, "交易已关闭")
                return self._refunded(trade, fund_change="N")
            if trade.status == "WAIT_BUYER_PAY":
                return _business_failure("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if trade.status == "TRADE_CLOSED":
                return _business_failure("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if trade.refunded + amount > trade.total:
                return _business_failure("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            self.refunds.append(
                FakeRefund(
                    trade.out_trade_no, out_request_no, amount, self.now().astimezone(BEIJING)
                )
            )
            trade.refunded += amount
            if trade.refunded == trade.total:
                trade.status = "TRADE_CLOSED"
            return self._refunded(trade, fund_change="Y")

    @staticmethod
    def _refunded(trade: FakeTrade, *, fund_change: str) -> dict[str, str]:
        return {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "sho***@example.com",
            "fund_change": fund_change,
            "refund_fee": to_yuan(trade.refunded),
            "gmt_refund_pay": datetime.now(BEIJING).strftime(WIRE_TIME),
        }

    def _refund_query(self, params: dict[str, str], biz: dict[str, Any]) -> dict[str, str]:
        out_trade_no = str(biz.get("out_trade_no", ""))
        out_request_no = str(biz.get("out_request_no", ""))
        with self._lock:
            trade = self.trades.get(out_trade_no)
            if trade is None:
                return _business_failure("ACQ.TRADE_NOT_EXIST", "交易不存在")
            done = next(
                (
                    r
                    for r in self.refunds
                    if r.out_trade_no == out_trade_no and r.out_request_no == out_request_no
                ),
                None,
            )
            # An unknown request number is a success with no refund in it, as Alipay answers.
            content = {"code": "10000", "msg": "Success", "out_trade_no": out_trade_no}
            if done is not None:
                content |= {
                    "trade_no": trade.trade_no,
                    "out_request_no": out_request_no,
                    "total_amount": to_yuan(trade.total),
                    "refund_amount": to_yuan(done.amount),
                    "refund_status": "REFUND_SUCCESS",
                }
        return content

    def _bill_url(self, params: dict[str, str], biz: dict[str, Any]) -> dict[str, str]:
        try:
            day = date.fromisoformat(str(biz.get("bill_date", "")))
        except ValueError:
            return _business_failure("isv.invalid-arguments", "日期格式错误", code="40002")
        if biz.get("bill_type") != "trade" or day >= datetime.now(BEIJING).date():
            return _business_failure("isp.bill_not_exist", "账单不存在")
        return {
            "code": "10000",
            "msg": "Success",
            "bill_download_url": f"{self.base_url}/bills/{day.isoformat()}.zip?downloadFileName="
            f"{day:%Y%m%d}.csv.zip",
        }

    # ------------------------------------------------------------------ the bill

    def _serve_bill(self, handler: QuietHandler) -> None:
        name = urlsplit(handler.path).path.removeprefix("/bills/").removesuffix(".zip")
        with self._lock:
            self.calls["bill download"] += 1
        handler.reply(200, self.trade_bill(date.fromisoformat(name)), "application/zip")

    def trade_bill(self, day: date) -> bytes:
        """The day's trade bill, a zip of GBK CSV files shaped like Alipay's (业务明细)."""
        with self._lock:
            payments = [
                t for t in self.trades.values() if t.paid_at is not None and t.paid_at.date() == day
            ]
            refunds = [(r, self.trades[r.out_trade_no]) for r in self.refunds if r.at.date() == day]
        rows = []
        for trade in payments:
            assert trade.paid_at is not None
            rows.append(
                _detail_row(trade, "交易", trade.paid_at, to_yuan(trade.total), refund_no="")
            )
        for refund, trade in refunds:
            rows.append(
                _detail_row(
                    trade, "退款", refund.at, "-" + to_yuan(refund.amount), refund.out_request_no
                )
            )
        start = datetime.combine(day, datetime.min.time())
        detail = "\r\n".join(
            [
                "#支付宝业务明细查询",
                f"#账号：[{SELLER_ID}0156]",  # noqa: RUF001 - Alipay's full-width colon
                f"#起始日期：[{start:%Y年%m月%d日 %H:%M:%S}]   "  # noqa: RUF001
                f"终止日期：[{start + timedelta(days=1):%Y年%m月%d日 %H:%M:%S}]",  # noqa: RUF001
                "#" + "-" * 41 + "业务明细列表" + "-" * 40,
                DETAIL_HEADER,
                *rows,
                "#" + "-" * 41 + "业务明细列表结束" + "-" * 36,
                f"#交易合计：{len(payments)}笔，退款合计：{len(refunds)}笔",  # noqa: RUF001
                f"#导出时间：[{datetime.now(BEIJING):%Y年%m月%d日 %H:%M:%S}]",  # noqa: RUF001
            ]
        )
        summary = "\r\n".join(
            [
                "#支付宝业务汇总查询",
                SUMMARY_HEADER,
                f"合计,,{len(payments)},{len(refunds)},,,,,,,,,",
                "#导出时间：[]",  # noqa: RUF001
            ]
        )
        stem = f"{SELLER_ID}0156_{day:%Y%m%d}"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            # The summary first: the reader must find the detail table by what it holds.
            archive.writestr(f"{stem}_业务明细(汇总).csv", summary.encode("gbk"))
            archive.writestr(f"{stem}_业务明细.csv", detail.encode("gbk"))
        return buffer.getvalue()


DETAIL_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,"
    "终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,"  # noqa: RUF001
    "支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,"  # noqa: RUF001
    "卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"  # noqa: RUF001
)
SUMMARY_HEADER = (
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,"  # noqa: RUF001
    "支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,"  # noqa: RUF001
    "实收净额（元）"  # noqa: RUF001
)


def _detail_row(
    trade: FakeTrade, kind: str, finished: datetime, amount: str, refund_no: str
) -> str:
    cells = [
        trade.trade_no,
        trade.out_trade_no,
        kind,
        trade.subject,
        trade.created_at.strftime(WIRE_TIME),
        finished.astimezone(BEIJING).strftime(WIRE_TIME),
        "",
        "",
        "",
        "",
        "sho***@example.com",
        amount,
        amount,
        "0.00",
        "0.00",
        "0.00",
        "0.00",
        "0.00",
        "",
        "0.00",
        "0.00",
        refund_no,
        "0.00",
        "0.00",
        "",
    ]
    # Alipay pads cells with tabs so spreadsheets keep long numbers as text.
    return ",".join(f"{cell}\t" for cell in cells)


def _business_failure(sub_code: str, sub_msg: str, *, code: str = "40004") -> dict[str, str]:
    return {
        "code": code,
        "msg": "Business Failed" if code == "40004" else "Invalid Arguments",
        "sub_code": sub_code,
        "sub_msg": sub_msg,
    }


def beijing(day: date, hour: int, minute: int = 0) -> datetime:
    """A Beijing wall time on ``day`` (for paying at a chosen moment)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BEIJING)
