"""A fake of the part of Stripe's HTTP API that Pintuan uses, for the real SDK to talk to.

It keeps PaymentIntents, charges, refunds and balance transactions in memory and answers the
way Stripe does: form-encoded requests, a Bearer secret key, ``Idempotency-Key`` replays,
Stripe-shaped JSON and errors, cursor pages (``has_more``/``starting_after``) and
``expand[]=data.source`` on balance transactions. Tests drive the shopper's side (confirming an
intent), inject outages (500s, or answers that never come in time), count calls per endpoint
and build signed webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pintuan.kit.money import exponent
from tests.fakes.loopback import QuietHandler, serving

Json = dict[str, Any]

# endpoint name, HTTP method, path pattern
ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    ("payment_intents.create", "POST", re.compile(r"/v1/payment_intents")),
    ("payment_intents.list", "GET", re.compile(r"/v1/payment_intents")),
    ("payment_intents.retrieve", "GET", re.compile(r"/v1/payment_intents/(?P<id>[^/]+)")),
    ("payment_intents.capture", "POST", re.compile(r"/v1/payment_intents/(?P<id>[^/]+)/capture")),
    ("payment_intents.cancel", "POST", re.compile(r"/v1/payment_intents/(?P<id>[^/]+)/cancel")),
    ("refunds.create", "POST", re.compile(r"/v1/refunds")),
    ("refunds.list", "GET", re.compile(r"/v1/refunds")),
    ("balance_transactions.list", "GET", re.compile(r"/v1/balance_transactions")),
]
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)


class StripeRefusal(Exception):
    """An error answer, shaped like Stripe's ``{"error": {...}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: Json = {"type": kind, "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param

    def answer(self) -> bytes:
        return json.dumps({"error": self.body}).encode()


def decode_form(pairs: list[tuple[str, str]]) -> Json:
    """``metadata[payment_id]=x&expand[0]=y`` → ``{"metadata": {...}, "expand": ["y"]}``."""
    tree: Json = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def lists(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if node and all(k.isdigit() for k in node):
            return [lists(node[k]) for k in sorted(node, key=int)]
        return {k: lists(v) for k, v in node.items()}

    result: Json = lists(tree)
    return result


def _int(params: Json, name: str, *, required: bool = False) -> int | None:
    raw = params.get(name)
    if raw is None:
        if required:
            raise StripeRefusal(400, f"Missing required param: {name}.", param=name)
        return None
    if not (isinstance(raw, str) and raw.isdigit()):
        raise StripeRefusal(400, f"Invalid integer: {raw}", param=name)
    return int(raw)


@dataclass
class Fault:
    how: str  # "500" or "hang"
    left: int


class FakeStripe:
    """Stripe's state and behaviour; ``handler()`` serves it over HTTP."""

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        now: Callable[[], float] = time.time,
        hang_seconds: float = 3.0,
    ) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.hang_seconds = hang_seconds
        self.base_url = ""
        self._clock = now
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self.reset()

    def reset(self) -> None:
        """Forget every object, key, count and fault (one fake serves many tests)."""
        self.now = self._clock
        self.page_cap = 100  # Stripe's largest page
        # When set, balance transactions are in this currency (lower case), converted at
        # exchange_rate major units per major unit of the charge's currency.
        self.settlement_currency: str | None = None
        self.exchange_rate = Decimal(1)
        self.intents: dict[str, Json] = {}
        self.charges: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        self.disputes: dict[str, Json] = {}
        self.balance_transactions: list[Json] = []  # in creation order
        self.calls: Counter[str] = Counter()  # requests received, per endpoint
        self.performed: Counter[str] = Counter()  # requests that took effect (not replays)
        self.idempotency_keys: list[str] = []
        self._replays: dict[str, tuple[str, Json, int, bytes]] = {}
        self._faults: dict[str, Fault] = {}

    # ------------------------------------------------------------------ test controls

    def forget_keys(self) -> None:
        """Idempotency keys are forgotten (Stripe keeps them for 24 hours)."""
        with self._lock:
            self._replays.clear()

    def fail_next(self, endpoint: str, times: int = 1, *, how: str = "500") -> None:
        """The next ``times`` calls to ``endpoint`` answer 500 before doing anything
        (``how="500"``), or take effect and then answer only after ``hang_seconds``, when
        the client has given up (``how="hang"``)."""
        assert endpoint in {name for name, _, _ in ROUTES}, endpoint
        assert how in ("500", "hang"), how
        self._faults[endpoint] = Fault(how, times)

    def confirm(self, intent_id: str, *, succeed: bool = True) -> Json:
        """The shopper confirms the intent in the Payment Element: a hold becomes capturable,
        a charge succeeds (money moves), or the card is declined."""
        with self._lock:
            intent = self.intents[intent_id]
            assert intent["status"] == "requires_payment_method", intent["status"]
            if not succeed:
                intent["last_payment_error"] = {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "generic_decline",
                    "message": "Your card was declined.",
                }
                return dict(intent)
            charge = self._new_charge(intent)
            intent["latest_charge"] = charge["id"]
            intent["last_payment_error"] = None
            if intent["capture_method"] == "manual":
                intent["status"] = "requires_capture"
                intent["amount_capturable"] = intent["amount"]
            else:
                intent["status"] = "succeeded"
                intent["amount_received"] = intent["amount"]
                charge["captured"] = True
                charge["amount_captured"] = intent["amount"]
                self._money_moved("charge", charge["amount"], charge["currency"], charge["id"])
            return dict(intent)

    def expire_hold(self, intent_id: str) -> None:
        """Stripe cancels an uncaptured authorisation whose ``capture_before`` passed."""
        with self._lock:
            intent = self.intents[intent_id]
            assert intent["status"] == "requires_capture", intent["status"]
            intent.update(
                status="canceled",
                amount_capturable=0,
                canceled_at=int(self.now()),
                cancellation_reason="automatic",
            )

    def fail_refund(self, refund_id: str) -> tuple[bytes, dict[str, str]]:
        """The bank sends a refund back: the refund fails, its money returns to the balance
        (a ``refund_failure`` balance transaction), and ``refund.failed`` is signed."""
        with self._lock:
            refund = self.refunds[refund_id]
            refund.update(status="failed", failure_reason="expired_or_canceled_card")
            charge = self.charges[refund["charge"]]
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
            self._money_moved("refund_failure", refund["amount"], refund["currency"], refund_id)
            snapshot = json.loads(json.dumps(refund))
        body = json.dumps(
            {
                "id": f"evt_{secrets.token_hex(12)}",
                "object": "event",
                "api_version": "2025-01-27.acacia",
                "created": int(self.now()),
                "data": {"object": snapshot},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": "refund.failed",
            }
        ).encode()
        return body, {"Stripe-Signature": self.sign(body), "Content-Type": "application/json"}

    def add_balance_transaction(self, kind: str, amount: int, currency: str) -> Json:
        """A balance transaction that is neither a payment nor a refund (a payout, a fee)."""
        with self._lock:
            return self._money_moved(kind, amount, currency.lower(), None)

    def event(self, event_type: str, intent_id: str) -> bytes:
        """The body of the event Stripe sends about the intent as it is now."""
        with self._lock:
            snapshot = json.loads(json.dumps(self.intents[intent_id]))
        return json.dumps(
            {
                "id": f"evt_{secrets.token_hex(12)}",
                "object": "event",
                "api_version": "2025-01-27.acacia",
                "created": int(self.now()),
                "data": {"object": snapshot},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
        ).encode()

    def sign(self, body: bytes, *, timestamp: int | None = None, secret: str | None = None) -> str:
        """A ``Stripe-Signature`` header for ``body``."""
        t = int(self.now()) if timestamp is None else timestamp
        key = (secret or self.webhook_secret).encode()
        mac = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={t},v1={mac}"

    def webhook(self, event_type: str, intent_id: str) -> tuple[bytes, dict[str, str]]:
        """A signed webhook delivery, exactly as Stripe would post it."""
        body = self.event(event_type, intent_id)
        return body, {"Stripe-Signature": self.sign(body), "Content-Type": "application/json"}

    def object_event(self, event_type: str, obj: Json) -> tuple[bytes, dict[str, str]]:
        """A signed event about any object as it is now (a charge, a dispute)."""
        body = json.dumps(
            {
                "id": f"evt_{secrets.token_hex(12)}",
                "object": "event",
                "api_version": "2025-01-27.acacia",
                "created": int(self.now()),
                "data": {"object": json.loads(json.dumps(obj))},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
        ).encode()
        return body, {"Stripe-Signature": self.sign(body), "Content-Type": "application/json"}

    def charge_refunded(self, intent_id: str) -> tuple[bytes, dict[str, str]]:
        """``charge.refunded`` for the intent's charge, listing every refund of it so far."""
        with self._lock:
            charge = dict(self.charges[self.intents[intent_id]["latest_charge"]])
            refunds = [r for r in self.refunds.values() if r["charge"] == charge["id"]]
            charge["refunds"] = {"object": "list", "data": refunds, "has_more": False}
        return self.object_event("charge.refunded", charge)

    def refund_in_dashboard(self, intent_id: str, amount: int) -> Json:
        """Someone refunds part of the intent's charge in Stripe's dashboard."""
        with self._lock:
            return self._refunds_create({"payment_intent": intent_id, "amount": str(amount)})

    def open_dispute(self, intent_id: str, amount: int, reason: str = "fraudulent") -> Json:
        """The payer's bank disputes ``amount`` of the intent's charge: Stripe takes it back."""
        with self._lock:
            charge = self.charges[self.intents[intent_id]["latest_charge"]]
            dispute: Json = {
                "id": f"dp_{secrets.token_hex(12)}",
                "object": "dispute",
                "amount": amount,
                "charge": charge["id"],
                "created": int(self.now()),
                "currency": charge["currency"],
                "payment_intent": intent_id,
                "reason": reason,
                "status": "needs_response",
            }
            self.disputes[dispute["id"]] = dispute
            self._money_moved("adjustment", -amount, charge["currency"], dispute["id"])
            return dict(dispute)

    def close_dispute(self, dispute_id: str, status: str) -> Json:
        """The bank decides: ``won`` gives the money back, ``lost`` keeps it."""
        assert status in ("won", "lost"), status
        with self._lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = status
            if status == "won":
                self._money_moved("adjustment", dispute["amount"], dispute["currency"], dispute_id)
            return dict(dispute)

    def captures_of(self, intent_id: str) -> int:
        with self._lock:
            return self.intents[intent_id]["_captures"]

    def refunds_of(self, intent_id: str) -> list[Json]:
        with self._lock:
            return [r for r in self.refunds.values() if r["payment_intent"] == intent_id]

    def close(self) -> None:
        """Release requests still hanging, so the server can stop."""
        self._closing.set()

    # ------------------------------------------------------------------ HTTP

    def handler(self) -> type[QuietHandler]:
        fake = self

        class Handler(QuietHandler):
            def setup(self) -> None:
                super().setup()
                # Headers and body go out as two writes; without this each answer would wait
                # for the client's delayed acknowledgement.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                fake.answer(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake.answer(self, "POST")

        return Handler

    def answer(self, request: QuietHandler, method: str) -> None:
        url = urlsplit(request.path)
        body = request.read_body() if method == "POST" else b""
        fault: Fault | None = None
        try:
            endpoint, path_params = self._route(method, url.path)
            fault = self._take_fault(endpoint)
            self._authorize(request)
            if fault is not None and fault.how == "500":
                raise StripeRefusal(500, "An unknown error occurred.", kind="api_error")
            raw = body.decode() if method == "POST" else url.query
            params = decode_form(parse_qsl(raw, keep_blank_values=True))
            key = request.headers.get("Idempotency-Key") if method == "POST" else None
            status, answer, replayed = self._perform(endpoint, path_params, params, key, url.path)
        except StripeRefusal as refusal:
            status, answer, replayed = refusal.status, refusal.answer(), False
        if fault is not None and fault.how == "hang":
            self._closing.wait(self.hang_seconds)  # it happened; the answer comes too late
        self._send(request, status, answer, replayed=replayed)

    def _route(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        for name, verb, pattern in ROUTES:
            match = pattern.fullmatch(path)
            if verb == method and match:
                return name, match.groupdict()
        raise StripeRefusal(404, f"Unrecognized request URL ({method}: {path}).")

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            self.calls[endpoint] += 1
            fault = self._faults.get(endpoint)
            if fault is None or fault.left == 0:
                return None
            fault.left -= 1
            return fault

    def _authorize(self, request: QuietHandler) -> None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if given != self.secret_key:
            shown = f"{given[:8]}{'*' * 8}{given[-4:]}" if len(given) > 12 else "(none)"
            raise StripeRefusal(401, f"Invalid API Key provided: {shown}")

    def _perform(
        self, endpoint: str, path_params: dict[str, str], params: Json, key: str | None, path: str
    ) -> tuple[int, bytes, bool]:
        with self._lock:
            if key is not None:
                self.idempotency_keys.append(key)
                seen = self._replays.get(key)
                if seen is not None:
                    first_path, first_params, status, answer = seen
                    if (first_path, first_params) != (path, params):
                        raise StripeRefusal(
                            400,
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with.",
                            kind="idempotency_error",
                        )
                    return status, answer, True
            operation = getattr(self, "_" + endpoint.replace(".", "_"))
            try:
                status, answer = 200, json.dumps(operation(params, **path_params)).encode()
                self.performed[endpoint] += 1
            except StripeRefusal as refusal:
                status, answer = refusal.status, refusal.answer()
            if key is not None:
                self._replays[key] = (path, params, status, answer)
        return status, answer, False

    def _send(
        self, request: QuietHandler, status: int, body: bytes, *, replayed: bool = False
    ) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(body)))
            request.send_header("Request-Id", f"req_{secrets.token_hex(7)}")
            if replayed:
                request.send_header("Idempotent-Replayed", "true")
            request.end_headers()
            request.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped waiting (a "hang" fault)

    # ------------------------------------------------------------------ endpoints

    def _payment_intents_create(self, params: Json) -> Json:
        amount = _int(params, "amount", required=True)
        assert amount is not None
        if amount < 1:
            raise StripeRefusal(400, "Amount must be at least 1.", param="amount")
        currency = params.get("currency")
        if not (isinstance(currency, str) and re.fullmatch(r"[a-z]{3}", currency)):
            raise StripeRefusal(400, f"Invalid currency: {currency}.", param="currency")
        capture_method = params.get("capture_method", "automatic_async")
        if capture_method not in ("automatic", "automatic_async", "manual"):
            raise StripeRefusal(400, "Invalid capture_method.", param="capture_method")
        intent_id = f"pi_{secrets.token_hex(12)}"
        intent: Json = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": capture_method,
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
            "created": int(self.now()),
            "currency": currency,
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "payment_method_types": ["card"],
            "status": "requires_payment_method",
            "_captures": 0,
        }
        self.intents[intent_id] = intent
        return _public(intent)

    def _payment_intents_retrieve(self, params: Json, id: str) -> Json:
        intent = _public(self._intent(id))
        expand = params.get("expand") or []
        if "latest_charge" in expand and intent["latest_charge"]:
            intent["latest_charge"] = dict(self.charges[intent["latest_charge"]])
        return intent

    def _payment_intents_capture(self, params: Json, id: str) -> Json:
        intent = self._intent(id)
        if intent["status"] != "requires_capture":
            raise StripeRefusal(
                400,
                "This PaymentIntent could not be captured because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                "may be captured: requires_capture.",
                code="payment_intent_unexpected_state",
            )
        amount = _int(params, "amount_to_capture") or intent["amount_capturable"]
        if amount > intent["amount_capturable"]:
            raise StripeRefusal(
                400,
                "The amount to capture exceeds the amount capturable.",
                code="amount_too_large",
                param="amount_to_capture",
            )
        charge = self.charges[intent["latest_charge"]]
        charge["captured"] = True
        charge["amount_captured"] = amount
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        intent["_captures"] += 1
        self._money_moved("charge", amount, charge["currency"], charge["id"])
        return _public(intent)

    def _payment_intents_cancel(self, params: Json, id: str) -> Json:
        intent = self._intent(id)
        if intent["status"] not in CANCELABLE:
            raise StripeRefusal(
                400,
                "You cannot cancel this PaymentIntent because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                f"may be canceled: {', '.join(CANCELABLE)}.",
                code="payment_intent_unexpected_state",
            )
        intent.update(
            status="canceled",
            amount_capturable=0,
            canceled_at=int(self.now()),
            cancellation_reason=params.get("cancellation_reason"),
        )
        return _public(intent)

    def _refunds_create(self, params: Json) -> Json:
        intent = self._intent(str(params.get("payment_intent")))
        if intent["status"] != "succeeded":
            raise StripeRefusal(
                400,
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                code="charge_not_refundable",
            )
        charge = self.charges[intent["latest_charge"]]
        left = charge["amount_captured"] - charge["amount_refunded"]
        if left == 0:
            raise StripeRefusal(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = _int(params, "amount") or left
        if amount > left:
            raise StripeRefusal(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
                code="amount_too_large",
                param="amount",
            )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        refund: Json = {
            "id": f"re_{secrets.token_hex(12)}",
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "created": int(self.now()),
            "currency": charge["currency"],
            "metadata": params.get("metadata", {}),
            "payment_intent": intent["id"],
            "reason": params.get("reason"),
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        self._money_moved("refund", -amount, refund["currency"], refund["id"])
        return refund

    def _page(self, params: Json, newest_first: list[Json], kind: str, url: str) -> Json:
        """One page of a list, newest first, after ``starting_after`` when given, as Stripe
        pages its lists."""
        after = params.get("starting_after")
        if after is not None:
            ids = [found["id"] for found in newest_first]
            if after not in ids:
                raise StripeRefusal(404, f"No such {kind}: '{after}'", code="resource_missing")
            newest_first = newest_first[ids.index(after) + 1 :]
        limit = min(_int(params, "limit") or 10, self.page_cap)
        return {
            "object": "list",
            "data": newest_first[:limit],
            "has_more": len(newest_first) > limit,
            "url": url,
        }

    def _payment_intents_list(self, params: Json) -> Json:
        newest_first = [_public(intent) for intent in reversed(list(self.intents.values()))]
        return self._page(params, newest_first, "payment_intent", "/v1/payment_intents")

    def _refunds_list(self, params: Json) -> Json:
        intent = params.get("payment_intent")
        newest_first = [
            r for r in reversed(list(self.refunds.values())) if r["payment_intent"] == intent
        ]
        return self._page(params, newest_first, "refund", "/v1/refunds")

    def _balance_transactions_list(self, params: Json) -> Json:
        created = params.get("created", {})
        bounds = {op: int(created[op]) for op in ("gt", "gte", "lt", "lte") if op in created}
        checks = {
            "gt": lambda a, b: a > b,
            "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b,
        }
        newest_first = [
            tx
            for tx in reversed(self.balance_transactions)
            if all(checks[op](tx["created"], bound) for op, bound in bounds.items())
        ]
        after = params.get("starting_after")
        if after is not None:
            ids = [tx["id"] for tx in newest_first]
            if after not in ids:
                raise StripeRefusal(
                    404,
                    f"No such balance transaction: '{after}'",
                    code="resource_missing",
                    param="starting_after",
                )
            newest_first = newest_first[ids.index(after) + 1 :]
        limit = min(_int(params, "limit") or 10, self.page_cap)
        page = [dict(tx) for tx in newest_first[:limit]]
        if "data.source" in params.get("expand", []):
            for tx in page:
                source = tx["source"]
                if source is not None:
                    tx["source"] = dict(
                        self.charges.get(source)
                        or self.refunds.get(source)
                        or self.disputes[source]
                    )
        return {
            "object": "list",
            "data": page,
            "has_more": len(newest_first) > limit,
            "url": "/v1/balance_transactions",
        }

    # ------------------------------------------------------------------ state helpers

    def _intent(self, intent_id: str) -> Json:
        intent = self.intents.get(intent_id)
        if intent is None:
            raise StripeRefusal(
                404,
                f"No such payment_intent: '{intent_id}'",
                code="resource_missing",
                param="intent",
            )
        return intent

    def _new_charge(self, intent: Json) -> Json:
        charge: Json = {
            "id": f"ch_{secrets.token_hex(12)}",
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": 0,
            "amount_refunded": 0,
            "captured": False,
            "created": int(self.now()),
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "refunded": False,
            "status": "succeeded",
            "payment_method_details": {
                "type": "card",
                "card": {
                    # Stripe's end of an uncaptured card authorisation: seven days.
                    "capture_before": (
                        int(self.now()) + 7 * 86400
                        if intent["capture_method"] == "manual"
                        else None
                    ),
                },
            },
        }
        self.charges[charge["id"]] = charge
        return charge

    def _money_moved(self, kind: str, amount: int, currency: str, source: str | None) -> Json:
        settled, settled_currency = amount, currency
        if self.settlement_currency and self.settlement_currency != currency:
            settled_currency = self.settlement_currency
            major = Decimal(amount).scaleb(-exponent(currency.upper())) * self.exchange_rate
            settled = int(
                major.scaleb(exponent(settled_currency.upper())).quantize(
                    Decimal(1), rounding=ROUND_HALF_EVEN
                )
            )
        fee = (abs(settled) * 29 // 1000 + 30) if kind == "charge" else 0
        tx: Json = {
            "id": f"txn_{secrets.token_hex(12)}",
            "object": "balance_transaction",
            "amount": settled,
            "available_on": int(self.now()) + 2 * 86400,
            "created": int(self.now()),
            "currency": settled_currency,
            "exchange_rate": None if settled_currency == currency else str(self.exchange_rate),
            "fee": fee,
            "net": settled - fee,
            "reporting_category": kind,
            "source": source,
            "status": "pending",
            "type": kind,
        }
        self.balance_transactions.append(tx)
        return tx


def _public(intent: Json) -> Json:
    return {k: v for k, v in intent.items() if not k.startswith("_")}


@contextmanager
def running_fake_stripe(
    *, now: Callable[[], float] = time.time, hang_seconds: float = 3.0
) -> Iterator[FakeStripe]:
    """A fake Stripe on loopback with freshly generated keys; ``fake.base_url`` is its address."""
    fake = FakeStripe(
        secret_key=f"sk_test_{secrets.token_urlsafe(24)}",
        webhook_secret=f"whsec_{secrets.token_urlsafe(24)}",
        now=now,
        hang_seconds=hang_seconds,
    )
    with serving(fake.handler()) as base_url:
        fake.base_url = base_url
        try:
            yield fake
        finally:
            fake.close()
