"""Stripe: one PaymentIntent per payment, through Stripe's official SDK.

A hold is a PaymentIntent with manual capture (authorised when the shopper pays, captured when
the team succeeds, cancelled when it fails); a charge is one with automatic capture, refunded on
failure. The shopper finishes paying in Stripe's client-side Payment Element with the intent's
client secret, so a checkout has no page of ours to send them to.

Every call that moves money carries the caller's idempotency key, and the SDK's own retries are
off: the worker retries with backoff, and Stripe replays the first answer to a repeated key. The
few refusals that only mean "this was already done" (capturing a captured intent, cancelling a
cancelled one, refunding a refunded charge) count as done, so that retries converge.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any, TypeVar

import stripe
from stripe.params import RefundListParams

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
from pintuan.kit.money import ISO_4217_CODES, exponent
from pintuan.kit.secrets import same_secret

SIGNATURE_HEADER = "stripe-signature"
TOLERANCE = timedelta(minutes=5)
# Stripe cancels an uncaptured card authorisation after seven days.
LONGEST_HOLD = timedelta(days=7)
PAGE_SIZE = 100  # the most Stripe returns in one page of a list
UNEXPECTED_STATE = "payment_intent_unexpected_state"

# The currencies Stripe can charge in (its presentment currencies), by Stripe's own codes.
# São Tomé's dobra appears there under its retired ISO code STD, so it never matches ours (STN).
_PRESENTMENT = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL
    BSD BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CVE CZK DJF DKK DOP DZD EGP ETB EUR
    FJD FKP GBP GEL GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR ISK JMD JOD JPY
    KES KGS KHR KMF KRW KWD KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP
    MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG
    QAR RON RSD RUB RWF SAR SBD SCR SEK SGD SHP SLE SOS SRD STD SZL THB TJS TND TOP
    TRY TTD TWD TZS UAH UGX USD UYU UZS VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW
    """.split()  # noqa: SIM905 - a table reads better as text
)
# Digits after the decimal point in Stripe's API amounts, where they are not 2.
_STRIPE_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split(),  # noqa: SIM905
        0,
    ),
    # Three-decimal amounts must also end in 0 at Stripe; other amounts are refused there.
    **dict.fromkeys(("BHD", "JOD", "KWD", "OMR", "TND"), 3),
    # Where Stripe and ISO 4217 disagree, and which Pintuan therefore does not offer:
    # ISK is zero-decimal in ISO but two-decimal (in whole hundreds) at Stripe; MGA is
    # two-decimal in ISO but zero-decimal at Stripe; UGX is zero-decimal in ISO, while Stripe
    # asks for it in two-decimal form for backwards compatibility (its documentation has also
    # listed it as zero-decimal, so it stays out until a live account settles which).
    "ISK": 2,
    "UGX": 2,
}


def stripe_exponent(currency: str) -> int:
    """Digits after the decimal point in Stripe's amounts for ``currency`` (upper case)."""
    return _STRIPE_EXPONENTS.get(currency, 2)


CURRENCIES = frozenset(
    code
    for code in _PRESENTMENT
    if code in ISO_4217_CODES and stripe_exponent(code) == exponent(code)
)

_T = TypeVar("_T")


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """A ``Stripe-Signature`` value as Stripe computes it: HMAC-SHA256 of "t.body"."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class StripeProvider:
    """Stripe behind the PaymentProvider port; ``api_base`` points the SDK at another address
    (a local fake in tests), ``timeout_seconds`` bounds every call."""

    name = "stripe"
    blocking_io = True
    webhook_ack_body: bytes | None = None
    capabilities = Capabilities(
        styles=frozenset({PaymentStyle.HOLD, PaymentStyle.CHARGE}),
        longest_hold=LONGEST_HOLD,
        partial_refunds=True,
        currencies=CURRENCIES,
        checkout_kinds=("payment_element",),
        bill_time_zone="UTC",
    )

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str | None,
        publishable_key: str | None = None,
        api_base: str | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._secret_key = secret_key
        self._webhook_secret = webhook_secret
        self._publishable_key = publishable_key
        self._api_base = api_base.rstrip("/") if api_base else None
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": self._api_base} if self._api_base else None,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout_seconds),
        )
        # The SDK logs whole request and response bodies at debug level, client secrets
        # included; keep its log at info (method, path, status) whatever the root level.
        sdk_log = logging.getLogger("stripe")
        if sdk_log.level < logging.INFO:
            sdk_log.setLevel(logging.INFO)

    def __repr__(self) -> str:
        mode = "live" if self._secret_key.startswith(("sk_live_", "rk_live_")) else "test"
        return f"StripeProvider(mode={mode!r}, api_base={self._api_base or 'stripe'!r})"

    def default_style(self) -> PaymentStyle:
        return PaymentStyle.HOLD

    # ------------------------------------------------------------------ money movements

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        intent = self._call(
            "create a payment intent",
            lambda: self._client.v1.payment_intents.create(
                {
                    "amount": request.amount,
                    "currency": request.currency.lower(),
                    "capture_method": (
                        "manual" if request.style is PaymentStyle.HOLD else "automatic"
                    ),
                    "automatic_payment_methods": {"enabled": True},
                    "description": request.description,
                    "metadata": {"payment_id": request.payment_id},
                },
                {"idempotency_key": f"{request.payment_id}:create"},
            ),
        )
        params = {"client_secret": intent.client_secret or ""}
        if self._publishable_key:
            params["publishable_key"] = self._publishable_key
        return Checkout(provider_ref=intent.id, client_params=params)

    def capture(self, provider_ref: str, amount: int, idempotency_key: str) -> None:
        try:
            self._client.v1.payment_intents.capture(
                provider_ref,
                {"amount_to_capture": amount},
                {"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as exc:
            # An earlier try whose answer was lost may have captured it already.
            if exc.code != UNEXPECTED_STATE or self._status(provider_ref) != "succeeded":
                raise self._failure("capture", exc) from exc
        except stripe.StripeError as exc:
            raise self._failure("capture", exc) from exc

    def void(self, provider_ref: str, idempotency_key: str) -> None:
        try:
            self._client.v1.payment_intents.cancel(
                provider_ref, None, {"idempotency_key": idempotency_key}
            )
        except stripe.InvalidRequestError as exc:
            if exc.code != UNEXPECTED_STATE or self._status(provider_ref) != "canceled":
                raise self._failure("cancel", exc) from exc
        except stripe.StripeError as exc:
            raise self._failure("cancel", exc) from exc

    def refund(self, provider_ref: str, amount: int, idempotency_key: str) -> None:
        # Stripe forgets an idempotency key after a day, and an operator's retry may come
        # later: a refund an earlier try made under our key is looked for first (by the key in
        # its metadata), so that asking again never makes a second one.
        earlier = self._refund_under(provider_ref, idempotency_key)
        if earlier in ("failed", "canceled"):
            raise ProviderRefused(f"stripe: the refund {idempotency_key} is {earlier} at Stripe")
        if earlier is not None:
            return
        try:
            self._client.v1.refunds.create(
                # Our key rides along, so that Stripe's notice of the refund names it.
                {
                    "payment_intent": provider_ref,
                    "amount": amount,
                    "metadata": {REFUND_KEY: idempotency_key},
                },
                {"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as exc:
            # Refunded in full already, by hand (none of ours is there, looked for above): the
            # payer has it all back, ours with it. The notice of that refund records it so
            # (payments/refunds.py, a refund of the whole payment).
            if exc.code == "charge_already_refunded":
                return
            failure = self._failure("refund", exc)
            # A 400: Stripe will not make it (more than is left, a charge it cannot refund).
            raise (ProviderRefused(str(failure)) if exc.http_status == 400 else failure) from exc
        except stripe.StripeError as exc:
            raise self._failure("refund", exc) from exc

    def _refund_under(self, provider_ref: str, idempotency_key: str) -> str | None:
        """The status of the payment intent's refund made under our key, if there is one (every
        page of its refunds read, newest first: a payment may be refunded in many parts)."""
        asked: RefundListParams = {"payment_intent": provider_ref, "limit": REFUNDS_A_PAGE}
        while True:
            listed = self._call(
                "list a payment's refunds", partial(self._client.v1.refunds.list, asked)
            )
            for refund in listed.data:
                metadata = refund.metadata.to_dict() if refund.metadata is not None else {}
                if metadata.get(REFUND_KEY) == idempotency_key:
                    return str(refund.status)
            if not listed.has_more or not listed.data:
                return None
            asked = {**asked, "starting_after": listed.data[-1].id}

    # ------------------------------------------------------------------ what became of it

    def verify_webhook(
        self, body: bytes, headers: Mapping[str, str], now: datetime
    ) -> ProviderEvent:
        header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), "")
        timestamp, signatures = _parse_signature_header(header)
        if not self._webhook_secret:
            raise WebhookRejected("No Stripe webhook secret is configured.")
        expected = signature_header(self._webhook_secret, body, timestamp).split("v1=", 1)[1]
        if not any(same_secret(given, expected) for given in signatures):
            raise WebhookRejected("The signature does not match the body.")
        # Checked both ways: a timestamp from the future is as suspect as an old one.
        if abs(now.timestamp() - timestamp) > TOLERANCE.total_seconds():
            raise WebhookRejected(
                "The signature's timestamp is outside the 5-minute tolerance.",
                code="stale_signature",
            )
        try:
            event = json.loads(body)
            event_id, raw_type = event["id"], event["type"]
            obj = event["data"]["object"]
            if not (isinstance(event_id, str) and isinstance(raw_type, str)):
                raise TypeError("id and type must be strings")
            if not isinstance(obj, dict):
                raise TypeError("data.object must be an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected("The body is not a Stripe event.", code="invalid_event") from exc
        return _event_of(event_id, raw_type, obj)

    def fetch_status(self, provider_ref: str) -> ProviderEvent | None:
        # The latest charge comes along: a hold's end (``capture_before``) is written on it.
        intent = self._call(
            "retrieve a payment intent",
            lambda: self._client.v1.payment_intents.retrieve(
                provider_ref, {"expand": ["latest_charge"]}
            ),
        )
        status = intent.status
        if status == "requires_capture":
            kind = EventKind.AUTHORIZED
        elif status == "succeeded" and intent.capture_method != "manual":
            kind = EventKind.CHARGED
        elif status == "canceled":
            kind = EventKind.CANCELED
        elif status == "requires_payment_method" and intent.last_payment_error is not None:
            kind = EventKind.FAILED
        else:
            return None
        found = intent.to_dict()
        return ProviderEvent(
            event_id=f"poll:{intent.id}:{kind.value}",
            kind=kind,
            raw_type=f"poll.{status}",
            provider_ref=intent.id,
            amount=_amount_for(kind, found),
            currency=intent.currency.upper(),
            capture_before=_capture_before(found),
        )

    def records_for_day(self, day: date) -> list[ProviderRecord]:
        start = datetime.combine(day, time.min, tzinfo=UTC)
        end = start + timedelta(days=1)

        def fetch() -> list[ProviderRecord]:
            page = self._client.v1.balance_transactions.list(
                {
                    "created": {"gte": int(start.timestamp()), "lt": int(end.timestamp())},
                    "limit": PAGE_SIZE,
                    "expand": ["data.source"],
                }
            )
            found = (_record_of(tx.to_dict()) for tx in page.auto_paging_iter())
            return [record for record in found if record is not None]

        return self._call("list balance transactions", fetch)

    def open_holds(self) -> list[tuple[str, int, str]]:
        """Every PaymentIntent still waiting for its capture: (id, amount, currency), for the
        reconciliation of holds."""

        def fetch() -> list[tuple[str, int, str]]:
            page = self._client.v1.payment_intents.list({"limit": PAGE_SIZE})
            return [
                (str(i["id"]), int(i["amount"]), str(i["currency"]).upper())
                for i in (intent.to_dict() for intent in page.auto_paging_iter())
                if i.get("status") == "requires_capture"
            ]

        return self._call("list payment intents", fetch)

    # ------------------------------------------------------------------ helpers

    def _status(self, provider_ref: str) -> str:
        intent = self._call(
            "retrieve a payment intent",
            lambda: self._client.v1.payment_intents.retrieve(provider_ref),
        )
        return intent.status

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except stripe.StripeError as exc:
            raise self._failure(what, exc) from exc

    def _failure(self, what: str, exc: stripe.StripeError) -> ProviderError:
        """A ProviderError that says what failed and why, with no secret in it."""
        detail = " ".join((exc.user_message or "no message").split())
        where = f"HTTP {exc.http_status}" if exc.http_status else "no answer"
        code = f", {exc.code}" if exc.code else ""
        message = f"stripe: could not {what} ({type(exc).__name__}, {where}{code}): {detail}"
        # Stripe masks keys in its messages; a base address that is not Stripe might not.
        return ProviderError(message.replace(self._secret_key, "[redacted]"))


def _parse_signature_header(header: str) -> tuple[int, list[str]]:
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not signatures or not timestamps[0].isdigit():
        raise WebhookRejected("Missing or malformed Stripe-Signature header.")
    return int(timestamps[0]), signatures


# The metadata key of a refund that names our idempotency key (a refund's own id here).
REFUND_KEY = "pintuan_refund"
REFUNDS_A_PAGE = 100  # Stripe's largest page
_DISPUTE_CLOSED = {"won": NoticeKind.DISPUTE_WON, "lost": NoticeKind.DISPUTE_LOST}


def _notices(raw_type: str, obj: Mapping[str, Any]) -> tuple[MoneyNotice, ...]:
    """News of refunds (``charge.refunded``, listing the charge's refunds; a refund's own
    notice when it failed) and of disputes (``charge.dispute.created`` and ``.closed``) in a
    Stripe event."""
    if obj.get("object") == "refund" and raw_type in _REFUND_NEWS:
        return _refund_failure(obj)
    if raw_type == "charge.refunded" and obj.get("object") == "charge":
        listed = obj.get("refunds")
        refunds = listed.get("data") if isinstance(listed, dict) else None
        # What the charge has given back in all, ours included: a refund of the whole payment
        # made in the dashboard while ours were owed is recorded for the part ours do not
        # count (payments/refunds.py).
        total = obj.get("amount_refunded")
        found = []
        for refund in refunds if isinstance(refunds, list) else []:
            if not isinstance(refund, dict) or refund.get("status") != "succeeded":
                continue
            ref, amount, metadata = refund.get("id"), refund.get("amount"), refund.get("metadata")
            if isinstance(ref, str) and isinstance(amount, int) and amount > 0:
                key = metadata.get(REFUND_KEY) if isinstance(metadata, dict) else None
                found.append(
                    MoneyNotice(
                        NoticeKind.REFUNDED,
                        ref,
                        amount,
                        request_no=key if isinstance(key, str) else None,
                        refunded_total=total if isinstance(total, int) else None,
                    )
                )
        return tuple(found)
    if obj.get("object") != "dispute":
        return ()
    status = obj.get("status")
    if raw_type == "charge.dispute.created":
        kind: NoticeKind | None = NoticeKind.DISPUTE_OPENED
    elif raw_type == "charge.dispute.closed":
        kind = _DISPUTE_CLOSED.get(str(status))
    else:
        kind = None
    ref, amount, reason = obj.get("id"), obj.get("amount"), obj.get("reason")
    if kind is None or not isinstance(ref, str) or not isinstance(amount, int) or amount <= 0:
        return ()  # an inquiry closed without money moving, or not a dispute we can read
    return (MoneyNotice(kind, ref, amount, reason=reason if isinstance(reason, str) else None),)


def _refund_failure(refund: Mapping[str, Any]) -> tuple[MoneyNotice, ...]:
    """A refund that did not reach the payer (``failed``, or ``canceled`` before it was sent),
    naming our key when we asked for it."""
    ref, amount, metadata = refund.get("id"), refund.get("amount"), refund.get("metadata")
    if refund.get("status") not in ("failed", "canceled") or not isinstance(ref, str):
        return ()
    key = metadata.get(REFUND_KEY) if isinstance(metadata, dict) else None
    reason = refund.get("failure_reason")
    return (
        MoneyNotice(
            NoticeKind.REFUND_FAILED,
            ref,
            amount if isinstance(amount, int) else None,
            request_no=key if isinstance(key, str) else None,
            reason=reason if isinstance(reason, str) else None,
        ),
    )


def _event_of(event_id: str, raw_type: str, obj: Mapping[str, Any]) -> ProviderEvent:
    """Our reading of a verified Stripe event about a PaymentIntent (or anything else)."""
    is_intent = obj.get("object") == "payment_intent"
    ref = obj.get("id") if is_intent else obj.get("payment_intent")
    kind = EventKind.OTHER
    if is_intent and raw_type == "payment_intent.amount_capturable_updated":
        kind = EventKind.AUTHORIZED
    elif is_intent and raw_type == "payment_intent.succeeded":
        # With manual capture this is the echo of our own capture, not news of a payment.
        if obj.get("capture_method") != "manual":
            kind = EventKind.CHARGED
    elif is_intent and raw_type == "payment_intent.payment_failed":
        kind = EventKind.FAILED
    elif is_intent and raw_type == "payment_intent.canceled":
        kind = EventKind.CANCELED
    elif (
        obj.get("object") == "refund"
        and raw_type in _REFUND_NEWS
        and obj.get("status")
        in (
            "failed",
            "canceled",
        )
    ):
        kind = EventKind.REFUND_FAILED
    currency = obj.get("currency")
    return ProviderEvent(
        event_id=event_id,
        kind=kind,
        raw_type=raw_type,
        provider_ref=ref if isinstance(ref, str) else None,
        amount=_amount_for(kind, obj) if is_intent else None,
        currency=currency.upper() if isinstance(currency, str) else None,
        capture_before=_capture_before(obj) if kind is EventKind.AUTHORIZED else None,
        notices=_notices(raw_type, obj),
    )


# The notices that tell a refund's fate (a refund that fails says so in each of them).
_REFUND_NEWS = frozenset({"refund.failed", "refund.updated", "charge.refund.updated"})


def _capture_before(intent: Mapping[str, Any]) -> datetime | None:
    """A hold's end, from the intent's latest charge when it came expanded."""
    charge = intent.get("latest_charge")
    if not isinstance(charge, Mapping):
        return None
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    at = card.get("capture_before")
    return datetime.fromtimestamp(at, tz=UTC) if isinstance(at, int) else None


def _amount_for(kind: EventKind, intent: Mapping[str, Any]) -> int | None:
    field = {EventKind.AUTHORIZED: "amount_capturable", EventKind.CHARGED: "amount_received"}
    value = intent.get(field.get(kind, "amount"))
    return value if isinstance(value, int) else None


_PAYMENT_TYPES = frozenset({"charge", "payment"})
_REFUND_TYPES = frozenset({"refund", "payment_refund"})
# Kept too, never dropped: a refund that came back, and a correction Stripe made by hand.
_OTHER_TYPES = {
    "refund_failure": RecordKind.REFUND_FAILURE,
    "adjustment": RecordKind.ADJUSTMENT,
}


def _record_of(tx: Mapping[str, Any]) -> ProviderRecord | None:
    """One balance transaction as a statement line: payments, refunds, refunds that came back
    and adjustments; None for the rest (payouts, fees)."""
    kind_of = tx.get("type")
    if kind_of in _PAYMENT_TYPES:
        kind = RecordKind.PAYMENT
    elif kind_of in _REFUND_TYPES:
        kind = RecordKind.REFUND
    elif kind_of in _OTHER_TYPES:
        kind = _OTHER_TYPES[kind_of]
    else:
        return None
    source = tx.get("source")
    amount, currency = abs(int(tx["amount"])), str(tx["currency"])
    ref = source if isinstance(source, str) else None
    if isinstance(source, dict):
        intent = source.get("payment_intent")
        if isinstance(intent, dict):
            intent = intent.get("id")
        ref = intent if isinstance(intent, str) else source.get("id")
        # The balance transaction is in the account's settlement currency; our ledger keeps
        # what the shopper was charged, which the charge or refund itself states.
        presented = source.get("amount_captured" if kind is RecordKind.PAYMENT else "amount")
        if isinstance(presented, int) and isinstance(source.get("currency"), str):
            amount, currency = presented, source["currency"]
    return ProviderRecord(
        record_id=str(tx["id"]),
        provider_ref=str(ref or ""),
        kind=kind,
        amount=amount,
        currency=currency.upper(),
        occurred_at=datetime.fromtimestamp(int(tx["created"]), tz=UTC),
    )
