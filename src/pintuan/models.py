"""Every table, imported in one place so metadata is complete for migrations and tests."""

from pintuan.accounts.models import ApiToken, LoginThrottle, RateLimitCounter, User, WebSession
from pintuan.apps.models import App, AppInstallation, AppSecret, OAuthCode, OAuthToken
from pintuan.audit.models import AuditRun
from pintuan.auditlog.models import AuditEntry
from pintuan.deals.models import Deal
from pintuan.events.models import OutboxEvent
from pintuan.fulfilment.models import Address, Shipment
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
from pintuan.webhooks.models import (
    WebhookAttempt,
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "Address",
    "ApiToken",
    "App",
    "AppInstallation",
    "AppSecret",
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
    "OAuthCode",
    "OAuthToken",
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
    "Shipment",
    "Team",
    "User",
    "VisitorLink",
    "Wallet",
    "WebSession",
    "WebhookAttempt",
    "WebhookCursor",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
