"""WeChat Pay API v3: charge on join, refund on failure, through the ``wechatpayv3`` SDK.

Our payment id is WeChat's ``out_trade_no`` and our idempotency key its ``out_refund_no``, so a
retried call finds the order or the refund it already made instead of making another.

Trust rests on one key: the platform public key configured with its id (WeChat's public-key
mode). The SDK, when a signature names a key it does not hold, would download platform
certificates from the API and trust whatever came back; here any other key is refused on the
spot, and nothing is ever fetched to decide whom to trust.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests
from cryptography.exceptions import UnsupportedAlgorithm
from pydantic import SecretStr
from wechatpayv3 import WeChatPay, WeChatPayType  # type: ignore[import-untyped]
from wechatpayv3.core import Core  # type: ignore[import-untyped]
from wechatpayv3.utils import aes_decrypt, load_public_key, rsa_verify  # type: ignore[import-untyped]

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
    WebhookRejected,
)
from pintuan.domain.refunds import MoneyNotice, NoticeKind
from pintuan.errors import InvalidInput
from pintuan.kit.time import utc_now
from pintuan.payments.providers.wechatpay_formats import (
    china_time,
    parse_trade_bill,
    refund_number,
)

if TYPE_CHECKING:
    from pintuan.config import Settings

API_BASE = "https://api.mch.weixin.qq.com"
WEBHOOK_PATH = "/v1/webhooks/wechatpay"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
TOLERANCE = timedelta(minutes=5)
# WeChat's own words for "busy or broken, try again later" (besides any 5xx).
TRANSIENT_CODES = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED"})
KINDS = {"native": WeChatPayType.NATIVE, "h5": WeChatPayType.H5, "jsapi": WeChatPayType.JSAPI}
DESCRIPTION_LIMIT = 127  # characters WeChat keeps of an order's description

_SETTINGS = (
    "wechatpay_app_id",
    "wechatpay_private_key",
    "wechatpay_cert_serial",
    "wechatpay_apiv3_key",
    "wechatpay_public_key",
    "wechatpay_public_key_id",
)


class UntrustedPlatformKey(Exception):
    """A response named a platform key other than the configured one."""


class _PinnedKeyCore(Core):  # type: ignore[misc]
    """The SDK's request core, pointed at ``api_base`` and held to the configured public key.

    The SDK has no setting for either: its API base is a fixed attribute, and the one place it
    looks for unknown keys is ``_update_certificates``, which downloads them.
    """

    def __init__(self, *, api_base: str, **options: Any) -> None:
        super().__init__(**options)
        self._gate_way = api_base

    def _update_certificates(self) -> None:
        raise UntrustedPlatformKey(
            "the answer is signed with a platform key other than the configured public key id; "
            "platform certificates are never downloaded to trust it"
        )


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: str | bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def data(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    @property
    def code(self) -> str:
        return str(self.data().get("code", ""))

    @property
    def transient(self) -> bool:
        return self.status >= 500 or self.code in TRANSIENT_CODES


class WeChatPayProvider:
    """WeChat Pay v3 for a directly connected merchant (not the service-provider mode)."""

    name = "wechatpay"
    blocking_io = True
    webhook_ack_body: bytes | None = None
    capabilities = Capabilities(
        styles=frozenset({PaymentStyle.CHARGE}),
        longest_hold=None,
        partial_refunds=True,
        currencies=frozenset({"CNY"}),
        checkout_kinds=tuple(KINDS),
        bill_time_zone="Asia/Shanghai",
    )

    def __init__(
        self,
        *,
        mch_id: str,
        app_id: str,
        private_key: SecretStr,
        cert_serial: str,
        apiv3_key: SecretStr,
        public_key: str,
        public_key_id: str,
        base_url: str,
        api_base: str = API_BASE,
        timeout: tuple[float, float] = (5.0, 15.0),
    ) -> None:
        if len(apiv3_key.get_secret_value().encode()) != 32:
            raise ValueError("The WeChat Pay APIv3 key must be exactly 32 bytes long.")
        try:
            self._public_key = load_public_key(public_key)
        except Exception as exc:  # the SDK raises a bare Exception for any unreadable key
            raise ValueError("The WeChat Pay platform public key is not a PEM public key.") from exc
        self.mch_id = mch_id
        self.app_id = app_id
        self.public_key_id = public_key_id
        self.api_base = api_base.rstrip("/")
        self._apiv3_key = apiv3_key
        self._timeout = timeout
        options: dict[str, Any] = {
            "mchid": mch_id,
            "cert_serial_no": cert_serial,
            "private_key": private_key.get_secret_value(),
            "apiv3_key": apiv3_key.get_secret_value(),
            "timeout": timeout,
            "public_key": public_key,
            "public_key_id": public_key_id,
        }
        try:
            client = WeChatPay(
                wechatpay_type=WeChatPayType.NATIVE,
                appid=app_id,
                notify_url=base_url.rstrip("/") + WEBHOOK_PATH,
                **options,
            )
            client._core = _PinnedKeyCore(api_base=self.api_base, **options)
        except Exception as exc:
            raise ValueError(
                "The WeChat Pay merchant private key is not a PEM PKCS#8 private key."
            ) from exc
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> WeChatPayProvider:
        """The provider as configured; names the missing settings rather than half-working."""
        s = settings
        if not (
            s.wechatpay_mch_id
            and s.wechatpay_app_id
            and s.wechatpay_private_key
            and s.wechatpay_cert_serial
            and s.wechatpay_apiv3_key
            and s.wechatpay_public_key
            and s.wechatpay_public_key_id
        ):
            missing = [f"PINTUAN_{name.upper()}" for name in _SETTINGS if not getattr(s, name)]
            raise ValueError(
                "WeChat Pay is enabled by PINTUAN_WECHATPAY_MCH_ID but these are not set: "
                + ", ".join(missing)
            )
        return cls(
            mch_id=s.wechatpay_mch_id,
            app_id=s.wechatpay_app_id,
            private_key=s.wechatpay_private_key,
            cert_serial=s.wechatpay_cert_serial,
            apiv3_key=s.wechatpay_apiv3_key,
            public_key=s.wechatpay_public_key,
            public_key_id=s.wechatpay_public_key_id,
            base_url=s.base_url,
            api_base=s.wechatpay_api_base or API_BASE,
        )

    def __repr__(self) -> str:
        return f"WeChatPayProvider(mch_id={self.mch_id!r}, api_base={self.api_base!r})"

    def default_style(self) -> PaymentStyle:
        return PaymentStyle.CHARGE

    # ------------------------------------------------------------------ paying

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        kind = request.kind or self.capabilities.checkout_kinds[0]
        if kind not in KINDS:
            raise InvalidInput(
                f"WeChat Pay offers the checkout kinds {', '.join(KINDS)}, not {kind!r}.",
                code="unsupported_checkout_kind",
            )
        if request.currency != "CNY" or request.style is not PaymentStyle.CHARGE:
            raise InvalidInput(
                "WeChat Pay charges CNY only, in one step (no authorisation holds).",
                code="unsupported_payment",
            )
        params: dict[str, Any] = {
            "description": request.description[:DESCRIPTION_LIMIT] or request.payment_id,
            "out_trade_no": request.payment_id,
            "amount": {"total": request.amount, "currency": "CNY"},
            "pay_type": KINDS[kind],
        }
        if request.expires_at is not None:
            params["time_expire"] = china_time(request.expires_at)
        if kind == "h5":
            if not request.client_ip:
                raise InvalidInput(
                    "A WeChat Pay H5 checkout needs the payer's IP address.",
                    code="client_ip_required",
                )
            params["scene_info"] = {
                "payer_client_ip": request.client_ip,
                "h5_info": {"type": "Wap"},
            }
        if kind == "jsapi":
            if not request.payer_ref:
                raise InvalidInput(
                    "A WeChat Pay JSAPI checkout needs the payer's openid for this app.",
                    code="payer_ref_required",
                )
            params["payer"] = {"openid": request.payer_ref}
        what = f"create the {kind} checkout of {request.payment_id}"
        answer = self._call(what, lambda: self._client.pay(**params))
        if not answer.ok:
            raise _refusal(what, answer)
        data = answer.data()
        ref = request.payment_id
        if kind == "native":
            return Checkout(provider_ref=ref, qr_code=_field(data, "code_url", what))
        if kind == "h5":
            url = _field(data, "h5_url", what)
            if request.return_url:
                url += "&redirect_url=" + quote(request.return_url, safe="")
            return Checkout(provider_ref=ref, url=url)
        return Checkout(
            provider_ref=ref, client_params=self.jsapi_params(_field(data, "prepay_id", what))
        )

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What the WeChat in-app browser's ``requestPayment`` needs, signed with our key."""
        params = {
            "appId": self.app_id,
            "timeStamp": str(int(utc_now().timestamp())),
            "nonceStr": secrets.token_hex(16),
            "package": f"prepay_id={prepay_id}",
            "signType": "RSA",
        }
        signed = [params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]
        params["paySign"] = self._client.sign(signed)
        return params

    # ------------------------------------------------------------------ money back

    def capture(self, provider_ref: str, amount: int, idempotency_key: str) -> None:
        raise ProviderError(
            "wechatpay: charges in one step, so there is no hold to capture; "
            f"{provider_ref} needs no capture"
        )

    def void(self, provider_ref: str, idempotency_key: str) -> None:
        raise ProviderError(
            f"wechatpay: charges in one step, so there is no hold to void; refund {provider_ref}"
        )

    def refund(self, provider_ref: str, amount: int, idempotency_key: str) -> None:
        number = refund_number(idempotency_key)
        order = self._order(provider_ref)
        if order is None:
            raise ProviderError(
                f"wechatpay: refund {number}: WeChat Pay has no order {provider_ref}"
            )
        total, _ = _amount(order.get("amount"), "total")
        what = f"refund {amount} of {provider_ref} as {number}"
        if total is None:
            raise ProviderError(f"wechatpay: {what}: the order shows no total")
        answer = self._call(
            what,
            lambda: self._client.refund(
                out_refund_no=number,
                out_trade_no=provider_ref,
                amount={"refund": amount, "total": total, "currency": "CNY"},
            ),
        )
        if not answer.ok:
            failure = _refusal(what, answer)
            # A repeat of the number answers with the refund made, so a refusal means none was.
            raise failure if answer.transient else ProviderRefused(str(failure))
        # A repeat of the same number answers with the refund already made: that counts as done.
        status = answer.data().get("status")
        if status not in ("SUCCESS", "PROCESSING"):
            raise ProviderRefused(
                f"wechatpay: {what}: the refund is {status}; it needs a look in the merchant "
                "platform (a closed or abnormal refund is not retried by WeChat Pay)"
            )

    # ------------------------------------------------------------------ news of payments

    def verify_webhook(
        self, body: bytes, headers: Mapping[str, str], now: datetime
    ) -> ProviderEvent:
        given = {k.lower(): v for k, v in headers.items()}
        serial = given.get("wechatpay-serial", "")
        if serial != self.public_key_id:
            raise WebhookRejected(
                f"The notification is signed with platform key {serial!r}, not the configured "
                f"{self.public_key_id!r}; no other key is trusted or fetched."
            )
        if given.get("wechatpay-signature-type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
            raise WebhookRejected(f"Only {SIGNATURE_TYPE} signatures are accepted.")
        timestamp, nonce = given.get("wechatpay-timestamp", ""), given.get("wechatpay-nonce", "")
        try:
            text = body.decode("utf-8")
            signed_at = int(timestamp)
        except ValueError as exc:
            raise WebhookRejected("Missing or malformed signature headers.") from exc
        signature = given.get("wechatpay-signature", "")
        if not (
            nonce and signature and rsa_verify(timestamp, nonce, text, signature, self._public_key)
        ):
            raise WebhookRejected("The signature does not match the notification.")
        if abs(now.timestamp() - signed_at) > TOLERANCE.total_seconds():
            raise WebhookRejected(
                "The signature's timestamp is outside the 5-minute tolerance.",
                code="stale_signature",
            )
        notice, resource = self._open(text)
        return notice_event(notice, resource)

    def _open(self, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The notification and its decrypted resource; refuses what is not ours to read."""
        try:
            notice = json.loads(text)
            sealed = notice["resource"]
            if notice.get("resource_type") != "encrypt-resource" or (
                sealed.get("algorithm") != "AEAD_AES_256_GCM"
            ):
                raise ValueError("not an AEAD_AES_256_GCM resource")
            opened = aes_decrypt(
                nonce=sealed["nonce"],
                ciphertext=sealed["ciphertext"],
                associated_data=sealed.get("associated_data") or "",
                apiv3_key=self._apiv3_key.get_secret_value(),
            )
            if opened is None:
                raise ValueError("the resource does not open with our APIv3 key")
            resource = json.loads(opened)
            if not isinstance(resource, dict) or resource.get("mchid") != self.mch_id:
                raise ValueError("the resource is not about this merchant")
        except (ValueError, KeyError, TypeError, AttributeError, UnsupportedAlgorithm) as exc:
            raise WebhookRejected(
                f"The body is not a WeChat Pay notification for this merchant ({exc}).",
                code="invalid_event",
            ) from exc
        return notice, resource

    def fetch_status(self, provider_ref: str) -> ProviderEvent | None:
        order = self._order(provider_ref)
        if order is None:  # never reached WeChat Pay: nothing can be paid
            return _poll_event(provider_ref, EventKind.FAILED, "ORDER_NOT_EXIST", None)
        state = str(order.get("trade_state", ""))
        if state in ("NOTPAY", "USERPAYING"):
            return None
        kind = {
            "SUCCESS": EventKind.CHARGED,
            "CLOSED": EventKind.FAILED,
            "PAYERROR": EventKind.FAILED,
            "REVOKED": EventKind.FAILED,
        }.get(state, EventKind.OTHER)
        return _poll_event(provider_ref, kind, state, order.get("amount"))

    def _order(self, out_trade_no: str) -> dict[str, Any] | None:
        """The order as WeChat Pay sees it, or None when it has none by that number."""
        what = f"look up {out_trade_no}"
        answer = self._call(what, lambda: self._client.query(out_trade_no=out_trade_no))
        if answer.status == 404 and answer.code == "ORDER_NOT_EXIST":
            return None
        if not answer.ok:
            raise _refusal(what, answer)
        return answer.data()

    # ------------------------------------------------------------------ statements

    def records_for_day(self, day: date) -> list[ProviderRecord]:
        what = f"ask for the trade bill of {day.isoformat()}"
        answer = self._call(
            what,
            lambda: self._client.trade_bill(
                bill_date=day.isoformat(), bill_type="ALL", tar_type="GZIP"
            ),
        )
        if answer.status == 400 and answer.code == "NO_STATEMENT_EXIST":
            return []  # no trade that day, so WeChat Pay made no bill
        if not answer.ok:
            raise _refusal(what, answer)
        bill = answer.data()
        url = str(bill.get("download_url", ""))
        # Our signed Authorization goes with the download: only ever to the API itself.
        if not url.startswith(self.api_base + "/"):
            raise ProviderError(f"wechatpay: {what}: the bill is offered outside {self.api_base}")
        what = f"download the trade bill of {day.isoformat()}"
        download = self._call(what, lambda: self._client.download_bill(url))
        if not download.ok or not isinstance(download.body, bytes):
            raise _refusal(what, download)
        try:
            raw = gzip.decompress(download.body)
        except (OSError, EOFError, zlib.error) as exc:
            raise ProviderError(f"wechatpay: {what}: the file is not gzip") from exc
        if bill.get("hash_type") != "SHA1" or (
            hashlib.sha1(raw, usedforsecurity=False).hexdigest()
            != str(bill.get("hash_value", "")).lower()
        ):
            raise ProviderError(f"wechatpay: {what}: the file does not match its SHA1 digest")
        try:
            return parse_trade_bill(raw.decode("utf-8-sig"))
        except ValueError as exc:
            raise ProviderError(f"wechatpay: {what}: {exc}") from exc

    # ------------------------------------------------------------------ the wire

    def _call(self, what: str, send: Callable[[], tuple[int, str | bytes]]) -> _Answer:
        try:
            status, body = send()
        except requests.Timeout as exc:
            raise ProviderError(
                f"wechatpay: {what}: no answer within {self._timeout[1]:g} s; retried later"
            ) from exc
        except requests.RequestException as exc:
            raise ProviderError(
                f"wechatpay: {what}: cannot reach {self.api_base} ({type(exc).__name__})"
            ) from exc
        except Exception as exc:
            # The SDK raises a bare Exception for an answer whose signature fails; ours
            # (UntrustedPlatformKey) is for one that names a key other than the configured one.
            raise ProviderError(f"wechatpay: {what}: {exc}") from exc
        return _Answer(status, body)


def _refusal(what: str, answer: _Answer) -> ProviderError:
    message = str(answer.data().get("message", ""))[:200]
    reason = f"HTTP {answer.status} {answer.code} {message}".strip()
    later = "WeChat Pay is busy or failing; retried later" if answer.transient else "refused"
    return ProviderError(f"wechatpay: {what}: {reason} ({later})")


def _field(data: Mapping[str, Any], name: str, what: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ProviderError(f"wechatpay: {what}: the answer has no {name}")
    return value


def _amount(amount: object, field: str) -> tuple[int | None, str | None]:
    if not isinstance(amount, Mapping):
        return None, None
    value = amount.get(field)
    currency = amount.get("currency")
    return (
        value if isinstance(value, int) and not isinstance(value, bool) else None,
        str(currency) if currency else None,
    )


def _poll_event(ref: str, kind: EventKind, state: str, amount: object) -> ProviderEvent:
    total, currency = _amount(amount, "total")
    # One id per outcome, so asking twice stores the news once.
    outcome = state.lower() if kind is EventKind.OTHER else kind.value
    return ProviderEvent(
        event_id=f"poll:{ref}:{outcome}",
        kind=kind,
        raw_type=f"TRADE_STATE.{state}",
        provider_ref=ref,
        amount=total,
        currency=currency,
    )


def notice_event(notice: Mapping[str, Any], resource: Mapping[str, Any]) -> ProviderEvent:
    """The news in a verified, decrypted notification."""
    event_type = str(notice.get("event_type", ""))
    event_id = notice.get("id")
    ref = resource.get("out_trade_no")
    if not event_id or not isinstance(ref, str):
        raise WebhookRejected("The notification has no id or order number.", code="invalid_event")
    if event_type in ("REFUND.ABNORMAL", "REFUND.CLOSED"):
        kind, field = EventKind.REFUND_FAILED, "refund"
    elif event_type.startswith("REFUND."):
        kind, field = EventKind.OTHER, "refund"
    else:
        kind = {
            "SUCCESS": EventKind.CHARGED,
            "CLOSED": EventKind.FAILED,
            "PAYERROR": EventKind.FAILED,
        }.get(str(resource.get("trade_state", "")), EventKind.OTHER)
        field = "total"
    amount, currency = _amount(resource.get("amount"), field)
    return ProviderEvent(
        event_id=str(event_id),
        kind=kind,
        raw_type=event_type,
        provider_ref=ref,
        amount=amount,
        currency=currency or "CNY",  # refund notifications name no currency: always CNY here
        notices=_refund_notices(event_type, resource, amount),
    )


def _refund_notices(
    event_type: str, resource: Mapping[str, Any], amount: int | None
) -> tuple[MoneyNotice, ...]:
    """A refund that reached the payer, or one that could not: its WeChat id, its amount and
    its ``out_refund_no`` (ours, when we asked: our key with its colon made a hyphen, which our
    ids never hold); a failure names its event as its reason."""
    refund_id, number = resource.get("refund_id"), resource.get("out_refund_no")
    kind = _REFUND_NOTICE_KINDS.get(event_type)
    if kind is None or not isinstance(refund_id, str) or amount is None:
        return ()
    request_no = number.replace("-", ":") if isinstance(number, str) else None
    reason = event_type if kind is NoticeKind.REFUND_FAILED else None
    return (MoneyNotice(kind, refund_id, amount, request_no=request_no, reason=reason),)


# A refund that reached the payer, and one that could not (a closed card) or was closed.
_REFUND_NOTICE_KINDS = {
    "REFUND.SUCCESS": NoticeKind.REFUNDED,
    "REFUND.ABNORMAL": NoticeKind.REFUND_FAILED,
    "REFUND.CLOSED": NoticeKind.REFUND_FAILED,
}
