"""Events out: which webhook event types exist, which outbox events they come from, when a failed
delivery is tried again, and which addresses a webhook may never be sent to."""

from __future__ import annotations

import random
from datetime import timedelta
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address, ip_address


class WebhookEventType(StrEnum):
    TEAM_SUCCEEDED = "team.succeeded"
    TEAM_FAILED = "team.failed"
    SEAT_PAID = "seat.paid"
    SEAT_REFUNDED = "seat.refunded"
    ORDER_CREATED = "order.created"
    VOUCHER_REDEEMED = "voucher.redeemed"
    OFFER_PUBLISHED = "offer.published"
    OFFER_UPDATED = "offer.updated"
    OFFER_WITHDRAWN = "offer.withdrawn"


EVENT_TYPES: frozenset[str] = frozenset(t.value for t in WebhookEventType)


def event_types_named(name: str) -> frozenset[str]:
    """The event types a subscription name stands for: itself, or for a family like ``offer.*``
    every type of that family; empty when it names none."""
    if name.endswith(".*"):
        family = name[:-1]
        return frozenset(t for t in EVENT_TYPES if t.startswith(family))
    return frozenset({name}) & EVENT_TYPES


# Outbox events heard under the same name. ``seat.held`` (a new order line) is heard as
# ``order.created``; a seat that costs nothing is created paid (``seat.paid`` at once), and is
# heard as ``order.created`` followed by ``seat.paid``. Any other outbox event (``seat.released``,
# ``payment.*``) stays inside.
_SAME_NAME = frozenset(EVENT_TYPES - {WebhookEventType.ORDER_CREATED.value})


def webhook_types_of(outbox_type: str, *, created_paid: bool = False) -> list[str]:
    """The webhook event types an outbox event is heard as, in the order they are sent."""
    if outbox_type == "seat.held":
        return [WebhookEventType.ORDER_CREATED.value]
    if outbox_type == "seat.paid" and created_paid:
        return [WebhookEventType.ORDER_CREATED.value, WebhookEventType.SEAT_PAID.value]
    if outbox_type in _SAME_NAME:
        return [outbox_type]
    return []


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt in the retry window failed: given up


FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(hours=6)


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt: 5 s doubling up to 6 h, each
    drawn between half and all of that ("equal jitter"), so that many deliveries failing at once
    do not all come back at the same moment."""
    doublings: int = min(max(attempts - 1, 0), 30)
    ceiling = min(FIRST_RETRY * (1 << doublings), LONGEST_RETRY)
    draw: float = (rng or _RNG).uniform(0.5, 1.0)
    return ceiling * draw


_RNG = random.Random()  # noqa: S311 - jitter, not a secret


def is_public_address(address: str) -> bool:
    """Whether a webhook may reach ``address`` in production: not private, loopback, link-local,
    multicast, reserved or unspecified (an IPv4 address inside IPv6 is judged as itself)."""
    ip: IPv4Address | IPv6Address = ip_address(address.split("%", 1)[0])
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )
