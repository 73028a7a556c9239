"""The built-in sandbox provider: a hosted checkout page, signed webhooks, test helpers.

It behaves like a real provider seen from outside: it keeps its own records of intents and of
every capture, void and refund (idempotent by the caller's key), and it tells Pintuan about
payments only through signed webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import BigInteger, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

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
from pintuan.errors import Conflict, NotFound
from pintuan.kit.db import Database
from pintuan.kit.ids import new_id
from pintuan.kit.orm import Base, UtcDateTime
from pintuan.kit.secrets import same_secret
from pintuan.kit.sql import upsert_insert
from pintuan.kit.time import utc_now

SIGNATURE_HEADER = "pintuan-sandbox-signature"
TOLERANCE = timedelta(minutes=5)
# The sandbox lets a hold go this long after the payer approved it, like a card network.
HOLD_LASTS = timedelta(days=7)


class SandboxIntent(Base):
    """The sandbox's own record of one payment, as a provider would keep it."""

    __tablename__ = "sandbox_intents"

    ref: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(40), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    style: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    captured: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class SandboxOperation(Base):
    """Each capture, void or refund, once per idempotency key."""

    __tablename__ = "sandbox_operations"

    idempotency_key: Mapped[str] = mapped_column(String(120), primary_key=True)
    ref: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class SandboxProvider:
    name = "sandbox"
    blocking_io = False
    webhook_ack_body: bytes | None = None
    capabilities = Capabilities(
        styles=frozenset({PaymentStyle.HOLD, PaymentStyle.CHARGE}),
        longest_hold=None,
        partial_refunds=True,
        currencies=None,
        checkout_kinds=("hosted_page",),
    )

    def __init__(self, db: Database, *, secret: str, style: PaymentStyle, base_url: str) -> None:
        self._db = db
        self._secret = secret
        self._style = style
        self._base_url = base_url.rstrip("/")

    def default_style(self) -> PaymentStyle:
        return self._style

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        ref = new_id("sbx")
        self._db.run_sync(
            lambda s: s.add(
                SandboxIntent(
                    ref=ref,
                    payment_id=request.payment_id,
                    amount=request.amount,
                    currency=request.currency,
                    style=request.style.value,
                    status="requires_action",
                    captured=0,
                    refunded=0,
                    created_at=utc_now(),
                )
            )
        )
        return Checkout(provider_ref=ref, url=f"{self._base_url}/sandbox/checkout/{ref}")

    # ------------------------------------------------------------------ the shopper's side

    def intent(self, ref: str) -> SandboxIntent:
        def find(session: Session) -> SandboxIntent | None:
            return session.get(SandboxIntent, ref)

        found = self._db.run_sync(find, write=False)
        if found is None:
            raise NotFound(f"No sandbox checkout {ref}.", code="checkout_not_found")
        return found

    def intent_of_payment(self, payment_id: str) -> SandboxIntent:
        def find(session: Session) -> SandboxIntent | None:
            return session.scalar(
                select(SandboxIntent).where(SandboxIntent.payment_id == payment_id)
            )

        found = self._db.run_sync(find, write=False)
        if found is None:
            raise NotFound(f"No sandbox checkout for {payment_id}.", code="checkout_not_found")
        return found

    def complete_checkout(
        self, ref: str, *, approve: bool, amount: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The shopper pays or declines; returns the signed webhook the provider sends.
        ``amount`` makes the sandbox take another sum than asked (a faulty provider)."""

        def complete(session: Session) -> SandboxIntent:
            intent = session.get(SandboxIntent, ref)
            if intent is None:
                raise NotFound(f"No sandbox checkout {ref}.", code="checkout_not_found")
            if intent.status != "requires_action":
                raise Conflict(
                    f"This checkout is already {intent.status}.", code="checkout_completed"
                )
            if not approve:
                intent.status = "declined"
            else:
                intent.status = "authorized" if intent.style == "hold" else "charged"
                intent.amount = amount or intent.amount
            intent.completed_at = utc_now()
            return intent

        intent = self._db.run_sync(complete)
        event_type = f"payment.{intent.status}" if approve else "payment.failed"
        return self.webhook(event_type, intent)

    def webhook(
        self, event_type: str, intent: SandboxIntent, **news: object
    ) -> tuple[bytes, dict[str, str]]:
        """A signed notification, exactly as the sandbox delivers it; ``news`` adds the fields
        of a refund or dispute to its data."""
        body = json.dumps(
            {
                "id": new_id("evt"),
                "type": event_type,
                "created": int(utc_now().timestamp()),
                "data": {
                    "ref": intent.ref,
                    "payment_id": intent.payment_id,
                    "amount": intent.amount,
                    "currency": intent.currency,
                    "capture_before": _hold_end(intent),
                    **news,
                },
            }
        ).encode()
        timestamp = int(utc_now().timestamp())
        return body, {
            SIGNATURE_HEADER: sign(self._secret, body, timestamp),
            "content-type": "application/json",
        }

    def expire_hold(self, ref: str) -> tuple[bytes, dict[str, str]]:
        """The sandbox lets an uncaptured hold go (its time ran out, or the card network
        cancelled it); returns the signed ``payment.canceled`` notification."""

        def expire(session: Session) -> SandboxIntent:
            intent = session.get(SandboxIntent, ref)
            if intent is None or intent.status != "authorized":
                raise Conflict("Only an uncaptured hold can expire.", code="checkout_completed")
            intent.status = "expired"
            return intent

        return self.webhook("payment.canceled", self._db.run_sync(expire))

    def return_refund(self, ref: str) -> tuple[bytes, dict[str, str]]:
        """A refund the sandbox made comes back (the payer's account was closed); returns the
        signed ``refund.failed`` notification."""

        def give_back(session: Session) -> SandboxIntent:
            intent = session.get(SandboxIntent, ref)
            if intent is None or intent.status != "refunded" or intent.style != "charge":
                raise Conflict(
                    "Only a refunded charge can have its refund returned.",
                    code="checkout_completed",
                )
            session.add(_came_back(ref, ref, intent.refunded))
            intent.status, intent.refunded = "charged", 0
            return intent

        return self.webhook("refund.failed", self._db.run_sync(give_back))

    def return_refund_after_success(
        self, ref: str, idempotency_key: str
    ) -> tuple[bytes, dict[str, str]]:
        """A refund after success the sandbox made under ``idempotency_key`` comes back (the
        payer's card was closed); returns the signed ``refund.failed`` notification naming it."""

        def give_back(session: Session) -> tuple[SandboxIntent, int]:
            made = session.get(SandboxOperation, idempotency_key)
            intent = session.get(SandboxIntent, ref)
            if made is None or made.kind != "refund" or made.ref != ref or intent is None:
                raise NotFound(f"No sandbox refund {idempotency_key}.", code="refund_not_found")
            if session.get(SandboxOperation, f"{idempotency_key}:returned") is not None:
                raise Conflict("This refund came back already.", code="checkout_completed")
            session.add(_came_back(idempotency_key, ref, made.amount))
            intent.refunded -= made.amount
            if intent.status == "refunded":
                intent.status = "captured" if intent.style == "hold" else "charged"
            return intent, made.amount

        intent, amount = self._db.run_sync(give_back)
        return self.webhook(
            "refund.failed",
            intent,
            refund_id=f"re_{idempotency_key}",
            request_no=idempotency_key,
            refund_amount=amount,
            reason="the payer's card was closed",
        )

    def refund_notice(self, ref: str, idempotency_key: str) -> tuple[bytes, dict[str, str]]:
        """The notification the sandbox sends once it made a refund asked with this key."""

        def find(session: Session) -> SandboxOperation | None:
            return session.get(SandboxOperation, idempotency_key)

        operation = self._db.run_sync(find, write=False)
        if operation is None or operation.kind != "refund":
            raise NotFound(f"No sandbox refund {idempotency_key}.", code="refund_not_found")
        return self.webhook(
            "refund.succeeded",
            self.intent(ref),
            refund_id=f"re_{idempotency_key}",
            request_no=idempotency_key,
            refund_amount=operation.amount,
        )

    def refund_in_dashboard(self, ref: str, amount: int) -> tuple[bytes, dict[str, str]]:
        """Someone refunds ``amount`` in the sandbox's own dashboard, not through Pintuan;
        returns the notification the sandbox sends of it."""
        key = new_id("dash")
        self._operate(ref, "refund", amount, key)
        return self.webhook(
            "refund.succeeded", self.intent(ref), refund_id=f"re_{key}", refund_amount=amount
        )

    def dispute(
        self, ref: str, dispute_id: str, amount: int, outcome: str = "opened"
    ) -> tuple[bytes, dict[str, str]]:
        """The payer's bank disputes ``amount`` (``outcome="opened"``: the sandbox takes it
        back), or the dispute is decided (``"won"``: the money comes back, ``"lost"``); returns
        the notification the sandbox sends."""
        if outcome not in ("opened", "won", "lost"):
            raise ValueError(outcome)
        if outcome != "lost":
            kind = "dispute" if outcome == "opened" else "reinstate"
            self._operate(ref, kind, amount, f"{kind}:{dispute_id}")
        return self.webhook(
            f"dispute.{outcome}",
            self.intent(ref),
            dispute_id=dispute_id,
            dispute_amount=amount,
            reason="fraudulent",
        )

    # ------------------------------------------------------------------ Pintuan's side

    def capture(self, provider_ref: str, amount: int, idempotency_key: str) -> None:
        self._operate(provider_ref, "capture", amount, idempotency_key)

    def void(self, provider_ref: str, idempotency_key: str) -> None:
        self._operate(provider_ref, "void", 0, idempotency_key)

    def refund(self, provider_ref: str, amount: int, idempotency_key: str) -> None:
        self._operate(provider_ref, "refund", amount, idempotency_key)

    def _operate(self, ref: str, kind: str, amount: int, key: str) -> None:
        def operate(session: Session) -> None:
            first = session.execute(
                upsert_insert(session, SandboxOperation)
                .values(
                    idempotency_key=key, ref=ref, kind=kind, amount=amount, created_at=utc_now()
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(SandboxOperation.idempotency_key)
            ).first()
            if first is None:
                return  # a retry of an operation already done: same effect, nothing more
            intent = session.get(SandboxIntent, ref)
            if intent is None:
                raise ProviderError(f"sandbox: no intent {ref}")
            _lapse_if_due(intent)
            if kind == "void" and intent.status == "expired":
                return  # the hold is gone already: nothing left to let go
            if kind == "capture" and intent.status == "expired":
                raise ProviderRefused("sandbox: the hold has expired")
            if kind == "capture":
                if intent.status != "authorized" or amount > intent.amount:
                    raise ProviderError(f"sandbox: cannot capture a {intent.status} intent")
                intent.status, intent.captured = "captured", amount
            elif kind == "void":
                if intent.status != "authorized":
                    raise ProviderError(f"sandbox: cannot void a {intent.status} intent")
                intent.status = "voided"
            elif kind in ("dispute", "reinstate"):
                return  # kept as an operation only: what a dispute took, and gave back
            else:
                paid = intent.captured if intent.status == "captured" else intent.amount
                if intent.status not in ("charged", "captured") or intent.refunded + amount > paid:
                    raise ProviderRefused(
                        f"sandbox: cannot refund {amount} of a {intent.status} intent"
                    )
                intent.refunded += amount
                if intent.refunded == paid:
                    intent.status = "refunded"

        self._db.run_sync(operate)

    def fetch_status(self, provider_ref: str) -> ProviderEvent | None:
        def look(session: Session) -> SandboxIntent:
            found = session.get(SandboxIntent, provider_ref)
            if found is None:
                raise NotFound(f"No sandbox checkout {provider_ref}.", code="checkout_not_found")
            _lapse_if_due(found)
            return found

        intent = self._db.run_sync(look)
        kind = {
            "authorized": EventKind.AUTHORIZED,
            "captured": EventKind.AUTHORIZED,
            "voided": EventKind.AUTHORIZED,
            "charged": EventKind.CHARGED,
            "declined": EventKind.FAILED,
            "expired": EventKind.CANCELED,
        }.get(intent.status)
        if intent.status == "refunded":
            kind = EventKind.CHARGED if intent.style == "charge" else EventKind.AUTHORIZED
        if kind is None:
            return None
        return ProviderEvent(
            event_id=f"poll:{provider_ref}:{kind.value}",
            kind=kind,
            raw_type=f"poll.{kind.value}",
            provider_ref=provider_ref,
            amount=intent.amount,
            currency=intent.currency,
            capture_before=_hold_end_instant(intent),
        )

    def records_for_day(self, day: date) -> list[ProviderRecord]:
        start = datetime.combine(day, time(), tzinfo=UTC)
        end = start + timedelta(days=1)

        def read(session: Session) -> list[ProviderRecord]:
            charges = session.scalars(
                select(SandboxIntent).where(
                    SandboxIntent.style == "charge",
                    SandboxIntent.status.in_(("charged", "refunded")),
                    SandboxIntent.completed_at >= start,
                    SandboxIntent.completed_at < end,
                )
            ).all()
            operations = session.execute(
                select(SandboxOperation, SandboxIntent.currency)
                .join(SandboxIntent, SandboxIntent.ref == SandboxOperation.ref)
                .where(
                    SandboxOperation.kind.in_(("capture", "refund", "returned")),
                    SandboxOperation.created_at >= start,
                    SandboxOperation.created_at < end,
                )
            ).all()
            return [
                ProviderRecord(
                    f"{i.ref}:charge",
                    i.ref,
                    RecordKind.PAYMENT,
                    i.amount,
                    i.currency,
                    i.completed_at or i.created_at,
                )
                for i in charges
            ] + [
                ProviderRecord(
                    op.idempotency_key,
                    op.ref,
                    _RECORD_KINDS[op.kind],
                    op.amount,
                    currency,
                    op.created_at,
                )
                for op, currency in operations
            ]

        return self._db.run_sync(read, write=False)

    def open_holds(self) -> list[tuple[str, int, str]]:
        """Every hold the sandbox still keeps uncaptured: (ref, amount, currency)."""

        def read(session: Session) -> list[tuple[str, int, str]]:
            return [
                (ref, int(amount), currency)
                for ref, amount, currency in session.execute(
                    select(SandboxIntent.ref, SandboxIntent.amount, SandboxIntent.currency).where(
                        SandboxIntent.style == "hold", SandboxIntent.status == "authorized"
                    )
                )
            ]

        return self._db.run_sync(read, write=False)

    def verify_webhook(
        self, body: bytes, headers: Mapping[str, str], now: datetime
    ) -> ProviderEvent:
        header = headers.get(SIGNATURE_HEADER, "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts["t"])
            given = parts["v1"]
        except (KeyError, ValueError) as exc:
            raise WebhookRejected("Missing or malformed signature header.") from exc
        expected = sign(self._secret, body, timestamp).split("v1=", 1)[1]
        if not same_secret(given, expected):
            raise WebhookRejected("The signature does not match the body.")
        if abs(now.timestamp() - timestamp) > TOLERANCE.total_seconds():
            raise WebhookRejected(
                "The signature's timestamp is outside the 5-minute tolerance.",
                code="stale_signature",
            )
        try:
            event = json.loads(body)
            event_id, raw_type = str(event["id"]), str(event["type"])
            ref = event.get("data", {}).get("ref")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WebhookRejected("The body is not a sandbox event.", code="invalid_event") from exc
        kind = {
            "payment.authorized": EventKind.AUTHORIZED,
            "payment.charged": EventKind.CHARGED,
            "payment.failed": EventKind.FAILED,
            "payment.canceled": EventKind.CANCELED,
            "refund.failed": EventKind.REFUND_FAILED,
        }.get(raw_type, EventKind.OTHER)
        data = event.get("data") or {}
        amount, currency, hold_end = data.get("amount"), data.get("currency"), None
        if isinstance(data.get("capture_before"), int):
            hold_end = datetime.fromtimestamp(data["capture_before"], tz=UTC)
        return ProviderEvent(
            event_id=event_id,
            kind=kind,
            raw_type=raw_type,
            provider_ref=str(ref) if ref else None,
            amount=amount if isinstance(amount, int) else None,
            currency=currency if isinstance(currency, str) else None,
            capture_before=hold_end if kind is EventKind.AUTHORIZED else None,
            notices=_notices(raw_type, event.get("data", {})),
        )


_RECORD_KINDS = {
    "capture": RecordKind.PAYMENT,
    "refund": RecordKind.REFUND,
    "returned": RecordKind.REFUND_FAILURE,
}


def _lapse_if_due(intent: SandboxIntent) -> None:
    """An uncaptured hold past its end is let go, as a card network does."""
    end = _hold_end_instant(intent)
    if intent.status == "authorized" and end is not None and utc_now() >= end:
        intent.status = "expired"


def _hold_end_instant(intent: SandboxIntent) -> datetime | None:
    """When the sandbox lets an approved hold go."""
    if intent.style != "hold" or intent.completed_at is None:
        return None
    return intent.completed_at + HOLD_LASTS


def _hold_end(intent: SandboxIntent) -> int | None:
    end = _hold_end_instant(intent)
    return None if end is None else int(end.timestamp())


def _came_back(key: str, ref: str, amount: int) -> SandboxOperation:
    """The operation that records ``amount`` of a refund made under ``key`` coming back."""
    return SandboxOperation(
        idempotency_key=f"{key}:returned",
        ref=ref,
        kind="returned",
        amount=amount,
        created_at=utc_now(),
    )


_NOTICE_KINDS = {
    "refund.succeeded": NoticeKind.REFUNDED,
    "refund.failed": NoticeKind.REFUND_FAILED,
    "dispute.opened": NoticeKind.DISPUTE_OPENED,
    "dispute.won": NoticeKind.DISPUTE_WON,
    "dispute.lost": NoticeKind.DISPUTE_LOST,
}


def _notices(raw_type: str, data: Mapping[str, object]) -> tuple[MoneyNotice, ...]:
    """The news of a refund or dispute in a sandbox event (none for other events)."""
    kind = _NOTICE_KINDS.get(raw_type)
    if kind is None or (kind is NoticeKind.REFUND_FAILED and "refund_id" not in data):
        return ()  # the whole payment's refund came back: the event itself says so
    refund = kind in (NoticeKind.REFUNDED, NoticeKind.REFUND_FAILED)
    ref = data.get("refund_id" if refund else "dispute_id")
    amount = data.get("refund_amount" if refund else "dispute_amount")
    request_no = data.get("request_no")
    if not isinstance(ref, str) or not ref or not isinstance(amount, int) or amount <= 0:
        raise WebhookRejected("The refund or dispute has no id or amount.", code="invalid_event")
    reason = data.get("reason")
    return (
        MoneyNotice(
            kind=kind,
            ref=ref[:120],
            amount=amount,
            request_no=request_no if isinstance(request_no, str) else None,
            reason=reason if isinstance(reason, str) else None,
        ),
    )
