"""Every table, imported in one place so metadata is complete for migrations and tests."""

from pintuan.accounts.models import ApiToken, RateLimitCounter, User, WebSession
from pintuan.deals.models import Deal
from pintuan.idempotency.models import IdempotencyKey
from pintuan.kit.orm import Base
from pintuan.merchants.models import Merchant, MerchantStaff

__all__ = [
    "ApiToken",
    "Base",
    "Deal",
    "IdempotencyKey",
    "Merchant",
    "MerchantStaff",
    "RateLimitCounter",
    "User",
    "WebSession",
]
