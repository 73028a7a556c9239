"""The port every payment provider adapter implements, the facts that cross it, and the rule
for how money owed back travels (a hold is voided, a charge refunded, or the wallet credited)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pintuan.domain.refunds import MoneyNotice
from pintuan.errors import AppError


class PaymentStyle(StrEnum):
    HOLD = "hold"  # authorise on join, capture on success, void on failure (cards)
    CHARGE = "charge"  # charge on join, refund on failure (wallets)


# The provider name of the stored balance: a payment from it needs no outside call.
WALLET = "wallet"


class PaymentStatus(StrEnum):
    REQUIRES_ACTION = "requires_action"  # waiting for the payer at the provider
    AUTHORIZED = "authorized"  # a hold
    CAPTURED = "captured"
    VOIDED = "voided"
    CHARGED = "charged"  # money taken at once
    REFUNDED = "refunded"
    FAILED = "failed"
    # A hold the provider let go before it was captured or voided (its end of the hold passed,
    # or the provider cancelled it): no money was taken. Always with ``end_reason``.
    EXPIRED = "expired"


class EndReason(StrEnum):
    """Why a payment left its usual course: set when an owed call ran out of attempts or time,
    or when the provider's news made the usual course impossible. A payment with a reason and
    nothing owed is ended for the worker; those an operator must look at are in the queue."""

    CAPTURE_FAILED = "capture_failed"  # the capture ran out of attempts; the hold may live on
    HOLD_EXPIRED = "hold_expired"  # the hold lapsed (or was cancelled) before its capture
    AMOUNT_MISMATCH = "amount_mismatch"  # the provider took another sum; it went back at once
    REFUND_FAILED = "refund_failed"  # the refund was refused or ran out of attempts or time
    VOID_FAILED = "void_failed"  # the void ran out of attempts before the hold lapsed
    NO_NEWS = "no_news"  # polls ran out with no word of the checkout from the provider
    UNPAID = "unpaid"  # its shopper, asked to pay for the seat again, did not in time
    # The provider cancelled the checkout before its money was ours: a cancelled intent never
    # comes back, so news of a hold on it that arrives later is older than the cancel, and stale.
    CANCELLED = "cancelled"


class PaymentPurpose(StrEnum):
    SEAT = "seat"
    TOPUP = "topup"  # money into the payer's own wallet


class RefundTo(StrEnum):
    ORIGINAL = "original"  # back the way it came
    WALLET = "wallet"  # into the payer's wallet at once


class ProviderAction(StrEnum):
    """The call a payment is owed at its provider (its ``pending_action``)."""

    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    POLL = "poll"  # ask what became of a checkout whose notification never came


class MoneyBack(StrEnum):
    VOID = "void"  # the provider lets the hold go
    REFUND = "refund"  # the provider pays the charge back
    TO_WALLET = "to_wallet"  # the payer's wallet is credited at once, no provider call


def money_back(status: str, provider: str, refund_to: str) -> MoneyBack:
    """How money taken for a seat goes back to its payer: a hold is voided and a charge
    refunded by the provider, except that a charge paid from the wallet, or whose payer asked
    for the wallet (``refund_to == "wallet"``), is back in the wallet at once. Only a hold or a
    charge has money to give back."""
    if status == PaymentStatus.AUTHORIZED:
        return MoneyBack.VOID
    if status != PaymentStatus.CHARGED:
        raise ValueError(f"a {status} payment keeps no money to give back")
    if provider == WALLET or refund_to == RefundTo.WALLET:
        return MoneyBack.TO_WALLET
    return MoneyBack.REFUND


@dataclass(frozen=True, slots=True)
class Capabilities:
    styles: frozenset[PaymentStyle]
    longest_hold: timedelta | None
    partial_refunds: bool
    currencies: frozenset[str] | None  # None: any ISO 4217 currency
    checkout_kinds: tuple[str, ...]  # the first is the default
    # The time zone whose calendar days the provider's statements (bills) follow.
    bill_time_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    payment_id: str
    amount: int
    currency: str
    style: PaymentStyle
    description: str
    kind: str | None = None  # one of the provider's checkout_kinds; None: its default
    expires_at: datetime | None = None  # the checkout must not take money after this
    return_url: str | None = None  # where the shopper lands after paying
    payer_ref: str | None = None  # the payer's id at the provider (WeChat JSAPI openid)
    client_ip: str | None = None  # the payer's address (WeChat H5 requires it)


@dataclass(frozen=True, slots=True)
class Checkout:
    provider_ref: str
    url: str | None = None  # a page to send the shopper to
    qr_code: str | None = None  # a text to show as a QR code (Alipay QR, WeChat Native)
    # What a client-side SDK needs to finish paying (Stripe client_secret, WeChat JSAPI params).
    client_params: Mapping[str, str] | None = None


class EventKind(StrEnum):
    AUTHORIZED = "authorized"
    CHARGED = "charged"
    FAILED = "failed"
    CANCELED = "canceled"  # the provider cancelled the payment (a hold let go, by it or a person)
    REFUND_FAILED = "refund_failed"  # a refund the provider had accepted did not go through
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    event_id: str
    kind: EventKind
    raw_type: str
    provider_ref: str | None
    amount: int | None = None
    currency: str | None = None
    # The provider's end of a hold (Stripe's ``capture_before``), when it says.
    capture_before: datetime | None = None
    # News of refunds and disputes of the payment that the event carries (often none).
    notices: tuple[MoneyNotice, ...] = ()


class RecordKind(StrEnum):
    PAYMENT = "payment"  # money in: a charge, or the capture of a hold
    REFUND = "refund"  # money back out to the payer
    # A refund that came back to us (Stripe's ``refund_failure``), or a correction the
    # provider made by hand (``adjustment``): kept for reconciliation, signed as the provider
    # books it.
    REFUND_FAILURE = "refund_failure"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    """One money movement as the provider's own statement shows it."""

    record_id: str
    provider_ref: str  # the provider's id of the payment (our payments.provider_ref)
    kind: RecordKind
    amount: int  # minor units, always positive
    currency: str
    occurred_at: datetime


class ProviderError(Exception):
    """A provider call that did not go through; the worker retries it with backoff."""


class ProviderRefused(ProviderError):
    """A provider call that will never go through as asked (a refund the provider closed, a
    hold it no longer has): the worker stops at once and the payment goes to the operators.

    It is also the provider's word that nothing was made under the call's idempotency key, and
    the operators may then pay the money another way (a refund into the wallet): an adapter
    raises it only where its provider answers a repeat with what was made (WeChat Pay, the
    sandbox) or after looking for it (Stripe lists the payment's refunds, Alipay queries the
    refund), never for a repeat of a call whose answer was lost."""


class WebhookRejected(AppError):
    status = 400
    code = "invalid_signature"
    title = "Webhook rejected"


class PaymentProvider(Protocol):
    name: str
    capabilities: Capabilities
    # Whether calls wait on the network (then they run on a worker thread, never the event loop).
    blocking_io: bool
    # The exact body a provider wants back from an accepted notification (Alipay: b"success");
    # None: the usual JSON acknowledgement.
    webhook_ack_body: bytes | None

    def default_style(self) -> PaymentStyle: ...

    def create_checkout(self, request: CheckoutRequest) -> Checkout: ...

    def capture(self, provider_ref: str, amount: int, idempotency_key: str) -> None: ...

    def void(self, provider_ref: str, idempotency_key: str) -> None: ...

    def refund(self, provider_ref: str, amount: int, idempotency_key: str) -> None: ...

    def verify_webhook(
        self, body: bytes, headers: Mapping[str, str], now: datetime
    ) -> ProviderEvent: ...

    def fetch_status(self, provider_ref: str) -> ProviderEvent | None:
        """Ask the provider what became of a payment whose notification never came: the news
        as an event (its id stable, so asking twice stores it once), or None while it waits."""
        ...

    def records_for_day(self, day: date) -> list[ProviderRecord]:
        """Every money movement on the provider's statement for ``day`` (a calendar day in
        ``capabilities.bill_time_zone``), for reconciliation."""
        ...
