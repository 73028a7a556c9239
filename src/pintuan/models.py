"""Every table, imported in one place so metadata is complete for migrations and tests."""

from pintuan.accounts.models import ApiToken, LoginThrottle, RateLimitCounter, User, WebSession
from pintuan.apps.models import App, AppInstallation
from pintuan.audit.models import AuditRun
from pintuan.auditlog.models import AuditEntry
from pintuan.deals.models import Deal
from pintuan.events.models import OutboxEvent
from pintuan.growth.models import GrowthDaily, GrowthRollup, GrowthSample
from pintuan.idempotency.models import IdempotencyKey
from pintuan.kit.orm import Base
from pintuan.ledger.models import Entry, Journal, SettlementStatement, Wallet
from pintuan.merchants.models import Merchant, MerchantApplication, MerchantStaff
from pintuan.notifications.models import Notification
from pintuan.payments.models import Payment, WebhookEvent
from pintuan.payments.providers.sandbox import SandboxIntent, SandboxOperation
from pintuan.shares.models import (
    AttributionCursor,
    Invite,
    Share,
    ShareConversion,
    ShareVisit,
    VisitorLink,
)
from pintuan.teams.models import DealShopperCount, Seat, Team

__all__ = [
    "ApiToken",
    "App",
    "AppInstallation",
    "AttributionCursor",
    "AuditEntry",
    "AuditRun",
    "Base",
    "Deal",
    "DealShopperCount",
    "Entry",
    "GrowthDaily",
    "GrowthRollup",
    "GrowthSample",
    "IdempotencyKey",
    "Invite",
    "Journal",
    "LoginThrottle",
    "Merchant",
    "MerchantApplication",
    "MerchantStaff",
    "Notification",
    "OutboxEvent",
    "Payment",
    "RateLimitCounter",
    "SandboxIntent",
    "SandboxOperation",
    "Seat",
    "SettlementStatement",
    "Share",
    "ShareConversion",
    "ShareVisit",
    "Team",
    "User",
    "VisitorLink",
    "Wallet",
    "WebSession",
    "WebhookEvent",
]
