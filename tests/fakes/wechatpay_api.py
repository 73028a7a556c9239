"""A local fake of the WeChat Pay API v3 endpoints Pintuan uses, for the real SDK to talk to.

It checks the merchant's ``WECHATPAY2-SHA256-RSA2048`` Authorization on every request, signs
every answer with the platform key (``Wechatpay-*`` headers), keeps orders and refunds in
memory (refunds once per ``out_refund_no``), and serves the gzipped trade bill. Test controls:
pay or fail an order as a shopper would, build the encrypted and signed notification WeChat Pay
would send, make the next calls fail, and count every call, certificate downloads included.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.fakes.loopback import QuietHandler, serving

CHINA = ZoneInfo("Asia/Shanghai")
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
_AUTHORIZATION = re.compile(r'(\w+)="([^"]*)"')
_BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
)
_BILL_SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def rsa_signature(key: rsa.RSAPrivateKey, message: str) -> str:
    signed = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signed).decode()


@dataclass(frozen=True)
class WeChatKeys:
    """A merchant's key pair and API key, and the platform's key pair, made for the tests."""

    merchant: rsa.RSAPrivateKey
    merchant_serial: str
    platform: rsa.RSAPrivateKey
    platform_key_id: str
    apiv3_key: str


@cache
def shared_keys() -> WeChatKeys:
    """One set per test run: making RSA keys is the slow part."""
    return WeChatKeys(
        merchant=new_rsa_key(),
        merchant_serial=secrets.token_hex(20).upper(),
        platform=new_rsa_key(),
        platform_key_id="PUB_KEY_ID_" + secrets.token_hex(16).upper(),
        apiv3_key=secrets.token_hex(16),  # 32 characters, as WeChat Pay's are
    )


@cache
def stranger_key() -> rsa.RSAPrivateKey:
    """A key nobody configured: what a forger would sign with."""
    return new_rsa_key()


_watchers: list[list[object]] = []


def _on_audit_event(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect":
        for seen in _watchers:
            seen.append(args[1])


@contextmanager
def outbound_connections() -> Iterator[list[object]]:
    """Every address this process tries to connect to while the block runs (from Python's own
    audit events, so nothing is replaced or stubbed)."""
    if not getattr(sys, "_pintuan_connection_audit", False):
        sys.addaudithook(_on_audit_event)
        sys._pintuan_connection_audit = True  # type: ignore[attr-defined]
    seen: list[object] = []
    _watchers.append(seen)
    try:
        yield seen
    finally:
        _watchers.remove(seen)


class Outage(StrEnum):
    HTTP_500 = "http_500"  # a bare 500 from the gateway, no JSON
    SYSTEM_ERROR = "SYSTEM_ERROR"  # 500 with WeChat's error body
    FREQUENCY_LIMITED = "FREQUENCY_LIMITED"  # 429
    HANG = "hang"  # does the work, then answers only after the client has given up


@dataclass(frozen=True)
class Notification:
    body: bytes
    headers: dict[str, str]


@dataclass
class Order:
    out_trade_no: str
    kind: str
    description: str
    total: int
    notify_url: str
    time_expire: datetime | None
    payer: dict[str, str] | None
    transaction_id: str = field(default_factory=lambda: "42" + secrets.token_hex(13)[:26])
    trade_state: str = "NOTPAY"
    success_time: datetime | None = None
    refunded: int = 0


@dataclass
class Refund:
    out_refund_no: str
    out_trade_no: str
    refund: int
    total: int
    created_at: datetime
    refund_id: str = field(default_factory=lambda: "50" + secrets.token_hex(14)[:28])
    status: str = "PROCESSING"
    success_time: datetime | None = None


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _china(instant: datetime) -> str:
    return instant.astimezone(CHINA).replace(microsecond=0).isoformat()


class FakeWeChatPay:
    def __init__(
        self,
        keys: WeChatKeys | None = None,
        *,
        mch_id: str = "1900009191",
        app_id: str = "wxd678efh567hg6787",
        hang_seconds: float = 1.5,
    ) -> None:
        self.keys = keys or shared_keys()
        self.mch_id = mch_id
        self.app_id = app_id
        self.hang_seconds = hang_seconds
        self.base_url = ""
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every order, refund, call and planned failure (a fresh account)."""
        self.orders: dict[str, Order] = {}
        self.refunds: dict[str, Refund] = {}
        self.calls: Counter[str] = Counter()
        self.refused: list[str] = []  # why requests were turned away (bad signatures…)
        # Answers are signed as this key; set another id to sign as a key the client lacks.
        self.answer_key_id = self.keys.platform_key_id
        # Where the bill is offered for download; set another address to offer it elsewhere.
        self.bill_base_url: str | None = None
        self._outages: list[tuple[str, Outage]] = []

    # ------------------------------------------------------------------ running

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve the fake on loopback; yields its API base."""
        handler = type("FakeWeChatPayHandler", (_Handler,), {"fake": self})
        with serving(handler) as base_url:
            self.base_url = base_url
            yield base_url

    def provider_settings(self, base_url: str) -> dict[str, Any]:
        """Pintuan settings that point its WeChat Pay provider at this fake."""
        return {
            "base_url": base_url,
            "wechatpay_mch_id": self.mch_id,
            "wechatpay_app_id": self.app_id,
            "wechatpay_private_key": private_pem(self.keys.merchant),
            "wechatpay_cert_serial": self.keys.merchant_serial,
            "wechatpay_apiv3_key": self.keys.apiv3_key,
            "wechatpay_public_key": public_pem(self.keys.platform),
            "wechatpay_public_key_id": self.keys.platform_key_id,
            "wechatpay_api_base": self.base_url,
        }

    # ------------------------------------------------------------------ test controls

    def fail_next(self, count: int, outage: Outage, *, path: str = "/v3/") -> None:
        """The next ``count`` requests whose path starts with ``path`` fail with ``outage``."""
        with self._lock:
            self._outages.extend([(path, outage)] * count)

    @property
    def certificate_requests(self) -> int:
        return self.calls["certificates"]

    def pay(self, out_trade_no: str, *, at: datetime | None = None) -> Notification:
        """The shopper pays the order; returns the notification WeChat Pay then sends."""
        at = at or datetime.now(UTC)
        with self._lock:
            order = self.orders[out_trade_no]
            if order.trade_state != "NOTPAY":
                raise AssertionError(f"order {out_trade_no} is {order.trade_state}")
            if order.time_expire is not None and at > order.time_expire:
                raise AssertionError(f"order {out_trade_no} expired at {order.time_expire}")
            order.trade_state, order.success_time = "SUCCESS", at
        return self.transaction_notification(out_trade_no)

    def end_order(self, out_trade_no: str, state: str) -> None:
        """The order ends unpaid: ``CLOSED`` (expired or closed) or ``PAYERROR``."""
        with self._lock:
            self.orders[out_trade_no].trade_state = state

    def settle_refund(self, out_refund_no: str) -> Notification:
        """The money reaches the shopper; returns WeChat Pay's refund notification."""
        with self._lock:
            refund = self.refunds[out_refund_no]
            refund.status, refund.success_time = "SUCCESS", datetime.now(UTC)
        return self.notification(
            "REFUND.SUCCESS", "refund", self._refund_resource(refund), summary="退款成功"
        )

    def abandon_refund(self, out_refund_no: str, status: str = "ABNORMAL") -> Notification:
        """The refund cannot reach the shopper (``ABNORMAL``: a closed card) or is closed;
        returns WeChat Pay's refund notification."""
        with self._lock:
            refund = self.refunds[out_refund_no]
            # The notice's time stands where a successful one gives its success time.
            refund.status, refund.success_time = status, datetime.now(UTC)
        return self.notification(
            f"REFUND.{status}", "refund", self._refund_resource(refund), summary="退款异常"
        )

    def refund_in_dashboard(self, out_trade_no: str, amount: int) -> Notification:
        """Someone refunds ``amount`` in WeChat Pay's merchant platform, under a refund number
        of its own; returns the notification once the money reaches the shopper."""
        number = f"MP{secrets.token_hex(8)}"
        order = self.orders[out_trade_no]
        status, answer = self.create_refund(
            {
                "out_refund_no": number,
                "out_trade_no": out_trade_no,
                "amount": {"refund": amount, "total": order.total, "currency": "CNY"},
            }
        )
        assert status == 200, answer
        return self.settle_refund(number)

    def transaction_notification(self, out_trade_no: str, **signing: Any) -> Notification:
        """The payment notification of the order as it stands now."""
        resource = self.transaction_resource(self.orders[out_trade_no])
        return self.notification("TRANSACTION.SUCCESS", "transaction", resource, **signing)

    def notification(
        self,
        event_type: str,
        original_type: str,
        resource: dict[str, Any],
        *,
        summary: str = "支付成功",
        timestamp: int | None = None,
        signing_key: rsa.RSAPrivateKey | None = None,
        key_id: str | None = None,
        apiv3_key: str | None = None,
    ) -> Notification:
        """A notification as WeChat Pay sends it: the resource sealed with AES-256-GCM under
        the APIv3 key, the body signed with the platform key. Each keyword replaces one part
        with a wrong one, for tests of refusals."""
        nonce = secrets.token_hex(6)  # 12 characters
        sealed = AESGCM((apiv3_key or self.keys.apiv3_key).encode()).encrypt(
            nonce.encode(),
            json.dumps(resource, ensure_ascii=False).encode(),
            original_type.encode(),
        )
        body = json.dumps(
            {
                "id": "EV-" + secrets.token_hex(10),
                "create_time": _china(datetime.now(UTC)),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": summary,
                "resource": {
                    "original_type": original_type,
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(sealed).decode(),
                    "associated_data": original_type,
                    "nonce": nonce,
                },
            },
            ensure_ascii=False,
        ).encode()
        headers = self._signed_headers(body, timestamp=timestamp, key=signing_key, key_id=key_id)
        headers["Content-Type"] = "application/json"
        return Notification(body, headers)

    # ------------------------------------------------------------------ signing

    def _signed_headers(
        self,
        body: bytes,
        *,
        timestamp: int | None = None,
        key: rsa.RSAPrivateKey | None = None,
        key_id: str | None = None,
    ) -> dict[str, str]:
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = secrets.token_hex(16).upper()
        message = f"{stamp}\n{nonce}\n{body.decode()}\n"
        return {
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": rsa_signature(key or self.keys.platform, message),
            "Wechatpay-Serial": key_id or self.answer_key_id,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    def check_authorization(self, method: str, target: str, header: str, body: bytes) -> str:
        """Why the merchant's signature is not good, or "" when it is."""
        scheme, _, rest = header.partition(" ")
        fields = dict(_AUTHORIZATION.findall(rest))
        if scheme != SIGNATURE_TYPE:
            return f"unknown scheme {scheme!r}"
        if fields.get("mchid") != self.mch_id or fields.get("serial_no") != (
            self.keys.merchant_serial
        ):
            return "wrong merchant or certificate serial"
        if abs(time.time() - int(fields.get("timestamp") or 0)) > 300:
            return "stale timestamp"
        message = f"{method}\n{target}\n{fields['timestamp']}\n{fields.get('nonce_str')}\n"
        message += body.decode() + "\n"
        try:
            self.keys.merchant.public_key().verify(
                base64.b64decode(fields.get("signature", "")),
                message.encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return "signature does not verify"
        return ""

    # ------------------------------------------------------------------ the API

    def take_outage(self, path: str) -> Outage | None:
        with self._lock:
            for i, (prefix, outage) in enumerate(self._outages):
                if path.startswith(prefix):
                    del self._outages[i]
                    return outage
        return None

    def create_order(self, kind: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if request.get("appid") != self.app_id or request.get("mchid") != self.mch_id:
            return 400, _error("PARAM_ERROR", "appid和mch_id不匹配")
        out_trade_no = str(request.get("out_trade_no", ""))
        amount = request.get("amount") or {}
        if not re.fullmatch(r"[0-9A-Za-z_\-*]{6,32}", out_trade_no):
            return 400, _error("PARAM_ERROR", "out_trade_no格式错误")
        if not isinstance(amount.get("total"), int) or amount["total"] < 1:
            return 400, _error("PARAM_ERROR", "total必须为正整数")
        if amount.get("currency", "CNY") != "CNY" or not request.get("notify_url"):
            return 400, _error("PARAM_ERROR", "参数错误")
        if kind == "h5" and not (request.get("scene_info") or {}).get("payer_client_ip"):
            return 400, _error("PARAM_ERROR", "scene_info.payer_client_ip必填")
        if kind == "jsapi" and not (request.get("payer") or {}).get("openid"):
            return 400, _error("PARAM_ERROR", "payer.openid必填")
        expire = request.get("time_expire")
        with self._lock:
            order = self.orders.get(out_trade_no)
            if order is not None and order.trade_state == "SUCCESS":
                return 400, _error("ORDERPAID", "该订单已支付")
            if order is None:
                order = Order(
                    out_trade_no=out_trade_no,
                    kind=kind,
                    description=str(request.get("description", "")),
                    total=amount["total"],
                    notify_url=str(request["notify_url"]),
                    time_expire=datetime.fromisoformat(expire) if expire else None,
                    payer=request.get("payer"),
                )
                self.orders[out_trade_no] = order
        prepay_id = "wx" + order.transaction_id
        if kind == "native":
            return 200, {"code_url": f"weixin://wxpay/bizpayurl?pr={order.transaction_id[:7]}"}
        if kind == "h5":
            return 200, {
                "h5_url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb"
                f"?prepay_id={prepay_id}&package=2150917749"
            }
        return 200, {"prepay_id": prepay_id}

    def query_order(self, out_trade_no: str, mchid: str | None) -> tuple[int, dict[str, Any]]:
        if mchid != self.mch_id:
            return 400, _error("PARAM_ERROR", "mchid错误")
        with self._lock:
            order = self.orders.get(out_trade_no)
            if order is None:
                return 404, _error("ORDER_NOT_EXIST", "订单不存在")
            return 200, self.transaction_resource(order)

    def create_refund(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        number = str(request.get("out_refund_no", ""))
        amount = request.get("amount") or {}
        if not re.fullmatch(r"[0-9A-Za-z_\-|*@]{1,64}", number):
            return 400, _error("PARAM_ERROR", "out_refund_no格式错误")
        with self._lock:
            order = self.orders.get(str(request.get("out_trade_no", "")))
            if order is None:
                return 404, _error("RESOURCE_NOT_EXISTS", "订单不存在")
            existing = self.refunds.get(number)
            if existing is not None:
                if (existing.refund, existing.total) != (amount.get("refund"), amount.get("total")):
                    return 400, _error("INVALID_REQUEST", "订单金额或退款金额与之前请求不一致")
                return 200, self._refund_answer(existing, order)
            if order.trade_state not in ("SUCCESS", "REFUND"):
                return 400, _error("INVALID_REQUEST", "订单未支付")
            if amount.get("total") != order.total:
                return 400, _error("PARAM_ERROR", "订单金额与支付金额不一致")
            wanted = amount.get("refund")
            if not isinstance(wanted, int) or wanted < 1 or order.refunded + wanted > order.total:
                return 400, _error("INVALID_REQUEST", "申请退款金额超过订单可退金额")
            refund = Refund(number, order.out_trade_no, wanted, order.total, datetime.now(UTC))
            self.refunds[number] = refund
            order.refunded += wanted
            order.trade_state = "REFUND"
            return 200, self._refund_answer(refund, order)

    def trade_bill(self, base_url: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if query.get("bill_type") != "ALL" or query.get("tar_type") not in ("GZIP", None):
            return 400, _error("PARAM_ERROR", "bill_type或tar_type错误")
        day = date.fromisoformat(query["bill_date"])
        raw = self.bill_text(day)
        if raw is None:
            return 400, _error("NO_STATEMENT_EXIST", "账单文件不存在")
        token = f"{day.isoformat()}.{query.get('tar_type') or 'RAW'}"
        return 200, {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest(),
            "download_url": f"{self.bill_base_url or base_url}/v3/billdownload/file?token={token}",
        }

    def bill_file(self, token: str) -> bytes | None:
        day, _, packing = token.partition(".")
        raw = self.bill_text(date.fromisoformat(day))
        if raw is None:
            return None
        return gzip.compress(raw.encode()) if packing == "GZIP" else raw.encode()

    def bill_text(self, day: date) -> str | None:
        """The trade bill of a China Standard Time day, as WeChat Pay writes it."""
        entries: list[tuple[datetime, list[str], int, int]] = []  # when, row, paid, asked back
        with self._lock:
            for order in self.orders.values():
                if order.success_time and order.success_time.astimezone(CHINA).date() == day:
                    row = self._bill_payment(order)
                    entries.append((order.success_time, row, order.total, 0))
            for refund in self.refunds.values():
                if refund.created_at.astimezone(CHINA).date() == day:
                    row = self._bill_refund(refund, self.orders[refund.out_trade_no])
                    entries.append((refund.created_at, row, 0, refund.refund))
        if not entries:
            return None
        entries.sort(key=lambda entry: entry[0])
        paid = _yuan(sum(entry[2] for entry in entries))
        back = _yuan(sum(entry[3] for entry in entries))
        summary = [str(len(entries)), paid, back, "0.00", "0.00000", paid, back]
        lines = [_BILL_HEADER, *("`" + ",`".join(e[1]) for e in entries), _BILL_SUMMARY]
        return "\n".join([*lines, "`" + ",`".join(summary)]) + "\n"

    def _bill_payment(self, order: Order) -> list[str]:
        assert order.success_time is not None
        return self._bill_row(
            order,
            order.success_time,
            {
                "交易状态": "SUCCESS",
                "应结订单金额": _yuan(order.total),
                "订单金额": _yuan(order.total),
            },
        )

    def _bill_refund(self, refund: Refund, order: Order) -> list[str]:
        return self._bill_row(
            order,
            refund.created_at,
            {
                "交易状态": "REFUND",
                "微信退款单号": refund.refund_id,
                "商户退款单号": refund.out_refund_no,
                "退款金额": _yuan(refund.refund),
                "退款类型": "ORIGINAL",
                "退款状态": refund.status,
                "申请退款金额": _yuan(refund.refund),
            },
        )

    def _bill_row(self, order: Order, when: datetime, columns: dict[str, str]) -> list[str]:
        row = dict.fromkeys(_BILL_HEADER.split(","), "")
        row.update(
            {
                "交易时间": when.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                "公众账号ID": self.app_id,
                "商户号": self.mch_id,
                "特约商户号": "0",
                "微信订单号": order.transaction_id,
                "商户订单号": order.out_trade_no,
                "用户标识": (order.payer or {}).get("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
                "交易类型": order.kind.upper(),
                "付款银行": "OTHERS",
                "货币种类": "CNY",
                "应结订单金额": "0.00",
                "代金券金额": "0.00",
                "微信退款单号": "0",
                "商户退款单号": "0",
                "退款金额": "0.00",
                "充值券退款金额": "0.00",
                "商品名称": order.description,
                "手续费": "0.00000",
                "费率": "0.60%",
                "订单金额": "0.00",
                "申请退款金额": "0.00",
                **columns,
            }
        )
        return list(row.values())

    def transaction_resource(self, order: Order) -> dict[str, Any]:
        found: dict[str, Any] = {
            "appid": self.app_id,
            "mchid": self.mch_id,
            "out_trade_no": order.out_trade_no,
            "transaction_id": order.transaction_id,
            "trade_type": order.kind.upper(),
            "trade_state": order.trade_state,
            "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "未支付"}.get(
                order.trade_state, order.trade_state
            ),
            "bank_type": "OTHERS",
            "attach": "",
            "payer": order.payer or {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {
                "total": order.total,
                "payer_total": order.total,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        }
        if order.success_time is not None:
            found["success_time"] = _china(order.success_time)
        return found

    def _refund_answer(self, refund: Refund, order: Order) -> dict[str, Any]:
        return {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": order.transaction_id,
            "out_trade_no": order.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": _china(refund.created_at),
            "status": refund.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
                "settlement_refund": refund.refund,
                "settlement_total": refund.total,
                "discount_refund": 0,
                "currency": "CNY",
            },
        }

    def _refund_resource(self, refund: Refund) -> dict[str, Any]:
        order = self.orders[refund.out_trade_no]
        assert refund.success_time is not None
        return {
            "mchid": self.mch_id,
            "out_trade_no": refund.out_trade_no,
            "transaction_id": order.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": refund.status,
            "success_time": _china(refund.success_time),
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
            },
        }


def _route(method: str, path: str) -> str:
    """The name a request is counted under in ``FakeWeChatPay.calls``."""
    kind = path.removeprefix("/v3/pay/transactions/")
    if method == "POST" and kind in ("native", "h5", "jsapi"):
        return f"pay.{kind}"
    return {
        ("GET", "/v3/certificates"): "certificates",
        ("POST", "/v3/refund/domestic/refunds"): "refund",
        ("GET", "/v3/bill/tradebill"): "tradebill",
        ("GET", "/v3/billdownload/file"): "billdownload",
    }.get((method, path)) or (
        "query"
        if method == "GET" and path.startswith("/v3/pay/transactions/out-trade-no/")
        else "unknown"
    )


def _error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


class _Handler(QuietHandler):
    fake: FakeWeChatPay

    def do_GET(self) -> None:  # noqa: N802 - the standard library names it
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802 - the standard library names it
        self._serve("POST")

    def _serve(self, method: str) -> None:
        fake = self.fake
        body = self.read_body()
        target = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        route = _route(method, target.path)
        fake.calls[route] += 1
        if route == "certificates":
            self._answer(404, _error("RESOURCE_NOT_EXISTS", "no certificates in public-key mode"))
            return
        why = fake.check_authorization(
            method, self.path, self.headers.get("Authorization", ""), body
        )
        if why:
            fake.refused.append(why)
            self._answer(401, _error("SIGN_ERROR", why))
            return
        outage = fake.take_outage(target.path)
        if outage is Outage.HTTP_500:
            self.reply(500, b"<html>502 Bad Gateway</html>", "text/html")
            return
        if outage in (Outage.SYSTEM_ERROR, Outage.FREQUENCY_LIMITED):
            status = 500 if outage is Outage.SYSTEM_ERROR else 429
            self._answer(status, _error(outage.value, "系统繁忙"))
            return
        status, answer = self._act(route, target.path, query, body)
        if outage is Outage.HANG:
            time.sleep(fake.hang_seconds)
        try:
            if isinstance(answer, bytes):
                self.reply(status, answer, "application/octet-stream")
            else:
                self._answer(status, answer)
        except OSError:
            return  # the client gave up waiting (a hang), as a real client would

    def _act(
        self, route: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any] | bytes]:
        fake = self.fake
        request = json.loads(body) if body else {}
        if route.startswith("pay."):
            return fake.create_order(route.removeprefix("pay."), request)
        if route == "query":
            return fake.query_order(path.rsplit("/", 1)[1], query.get("mchid"))
        if route == "refund":
            return fake.create_refund(request)
        if route == "tradebill":
            return fake.trade_bill(fake.base_url, query)
        if route == "billdownload":
            found = fake.bill_file(query.get("token", ""))
            return (200, found) if found is not None else (404, _error("NOT_FOUND", "无账单"))
        return 404, _error("NOT_FOUND", f"no such endpoint {path}")

    def _answer(self, status: int, answer: dict[str, Any]) -> None:
        body = json.dumps(answer, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-ID", secrets.token_hex(16))
        if 200 <= status < 300:
            for name, value in self.fake._signed_headers(body).items():
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
