"""The port every payment provider adapter implements, and the facts that cross it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pintuan.errors import AppError


class PaymentStyle(StrEnum):
    HOLD = "hold"  # authorise on join, capture on success, void on failure (cards)
    CHARGE = "charge"  # charge on join, refund on failure (wallets)


@dataclass(frozen=True, slots=True)
class Capabilities:
    styles: frozenset[PaymentStyle]
    longest_hold: timedelta | None
    partial_refunds: bool
    currencies: frozenset[str] | None  # None: any ISO 4217 currency
    checkout_kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    payment_id: str
    amount: int
    currency: str
    style: PaymentStyle
    description: str


@dataclass(frozen=True, slots=True)
class Checkout:
    provider_ref: str
    url: str


class EventKind(StrEnum):
    AUTHORIZED = "authorized"
    CHARGED = "charged"
    FAILED = "failed"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    event_id: str
    kind: EventKind
    raw_type: str
    provider_ref: str | None


class ProviderError(Exception):
    """A provider call that did not go through; the worker retries it with backoff."""


class WebhookRejected(AppError):
    status = 400
    code = "invalid_signature"
    title = "Webhook rejected"


class PaymentProvider(Protocol):
    name: str
    capabilities: Capabilities
    # Whether calls wait on the network (then they run on a worker thread, never the event loop).
    blocking_io: bool

    def default_style(self) -> PaymentStyle: ...

    def create_checkout(self, request: CheckoutRequest) -> Checkout: ...

    def capture(self, provider_ref: str, amount: int, idempotency_key: str) -> None: ...

    def void(self, provider_ref: str, idempotency_key: str) -> None: ...

    def refund(self, provider_ref: str, amount: int, idempotency_key: str) -> None: ...

    def verify_webhook(
        self, body: bytes, headers: Mapping[str, str], now: datetime
    ) -> ProviderEvent: ...
