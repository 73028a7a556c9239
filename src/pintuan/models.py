"""Every table, imported in one place so metadata is complete for migrations and tests."""

from pintuan.accounts.models import ApiToken, RateLimitCounter, User, WebSession
from pintuan.deals.models import Deal
from pintuan.events.models import OutboxEvent
from pintuan.idempotency.models import IdempotencyKey
from pintuan.kit.orm import Base
from pintuan.merchants.models import Merchant, MerchantStaff
from pintuan.notifications.models import Notification
from pintuan.payments.models import Payment, WebhookEvent
from pintuan.payments.providers.sandbox import SandboxIntent, SandboxOperation
from pintuan.teams.models import DealShopperCount, Seat, Team

__all__ = [
    "ApiToken",
    "Base",
    "Deal",
    "DealShopperCount",
    "IdempotencyKey",
    "Merchant",
    "MerchantStaff",
    "Notification",
    "OutboxEvent",
    "Payment",
    "RateLimitCounter",
    "SandboxIntent",
    "SandboxOperation",
    "Seat",
    "Team",
    "User",
    "WebSession",
    "WebhookEvent",
]
