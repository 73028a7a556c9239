"""State machines of merchants and deals: which action moves which status where.

A deal is ``draft → live → ended``, with ``paused`` reachable from and back to ``live`` by its
merchant's staff. ``moderated`` is the operators' stop: reachable from ``live`` and ``paused``,
left only by an operator's ``unmoderate`` (back to ``paused``, for the merchant to publish again)
or ``end``. A moderated deal takes no joins and is hidden from public lists; teams already
forming keep their window, as under a pause.
"""

from __future__ import annotations

from enum import StrEnum

from pintuan.errors import Conflict


class MerchantStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    SUSPENDED = "suspended"


class DealStatus(StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    PAUSED = "paused"
    ENDED = "ended"
    MODERATED = "moderated"


MERCHANT_TRANSITIONS: dict[str, dict[MerchantStatus, MerchantStatus]] = {
    "approve": {
        MerchantStatus.PENDING: MerchantStatus.APPROVED,
        MerchantStatus.SUSPENDED: MerchantStatus.APPROVED,
    },
    "suspend": {
        MerchantStatus.PENDING: MerchantStatus.SUSPENDED,
        MerchantStatus.APPROVED: MerchantStatus.SUSPENDED,
    },
}

DEAL_TRANSITIONS: dict[str, dict[DealStatus, DealStatus]] = {
    "publish": {DealStatus.DRAFT: DealStatus.LIVE, DealStatus.PAUSED: DealStatus.LIVE},
    "pause": {DealStatus.LIVE: DealStatus.PAUSED},
    "end": {DealStatus.LIVE: DealStatus.ENDED, DealStatus.PAUSED: DealStatus.ENDED},
}

# Operators only: a stop the merchant's staff cannot undo by publishing again.
MODERATION_TRANSITIONS: dict[str, dict[DealStatus, DealStatus]] = {
    "moderate": {DealStatus.LIVE: DealStatus.MODERATED, DealStatus.PAUSED: DealStatus.MODERATED},
    "unmoderate": {DealStatus.MODERATED: DealStatus.PAUSED},
    "end": {DealStatus.MODERATED: DealStatus.ENDED},
}

# Fields that may change once shoppers can see a deal; prices and team terms are fixed then,
# because teams already forming were promised them.
DEAL_FIELDS_EDITABLE_WHEN_PUBLISHED = frozenset(
    {"title", "description", "image_urls", "stock", "ends_at", "allow_solo"}
)


def next_merchant_status(current: MerchantStatus, action: str) -> MerchantStatus:
    allowed = MERCHANT_TRANSITIONS[action]
    if current not in allowed:
        verb = {"approve": "approved", "suspend": "suspended"}[action]
        raise Conflict(
            f"This merchant is {current.value}; it cannot be {verb}.",
            code="invalid_merchant_transition",
        )
    return allowed[current]


def next_deal_status(current: DealStatus, action: str, *, operator: bool = False) -> DealStatus:
    """Where ``action`` moves a deal; operators may also moderate, unmoderate and end a
    moderated deal."""
    allowed = dict(DEAL_TRANSITIONS.get(action, {}))
    if operator:
        allowed.update(MODERATION_TRANSITIONS.get(action, {}))
    if current not in allowed:
        verb = {
            "publish": "published",
            "pause": "paused",
            "end": "ended",
            "moderate": "moderated",
            "unmoderate": "released from moderation",
        }[action]
        raise Conflict(
            f"This deal is {current.value}; it cannot be {verb}.", code="invalid_deal_transition"
        )
    return allowed[current]
