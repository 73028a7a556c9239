"""Every table, imported in one place so metadata is complete for migrations and tests."""

from pintuan.accounts.models import ApiToken, LoginThrottle, RateLimitCounter, User, WebSession
from pintuan.apps.models import App, AppInstallation, AppSecret, OAuthCode, OAuthToken
from pintuan.audit.models import AuditRun
from pintuan.auditlog.models import AuditEntry
from pintuan.bargains.models import Bargain, BargainCut, BargainTerms
from pintuan.commissions.models import Commission
from pintuan.coupons.models import Coupon
from pintuan.deals.models import Deal
from pintuan.events.models import OutboxEvent
from pintuan.feed.models import FeedImpression, FeedModel, FeedReward
from pintuan.feed.state import FeedConfig, FeedCursor
from pintuan.fills.models import FillBudget
from pintuan.fulfilment.models import Address, Shipment
from pintuan.growth.models import GrowthDaily, GrowthRollup, GrowthSample
from pintuan.idempotency.models import IdempotencyKey
from pintuan.kit.claims import WorkerLease
from pintuan.kit.orm import Base
from pintuan.ledger.models import (
    CommissionRate,
    Entry,
    Journal,
    Payout,
    ReconciliationDay,
    ReconciliationFinding,
    SettlementLine,
    SettlementStatement,
    Wallet,
)
from pintuan.merchants.models import Merchant, MerchantApplication, MerchantStaff
from pintuan.notifications.models import Notification
from pintuan.payments.models import Payment, PaymentAttempt, WebhookEvent
from pintuan.payments.providers.sandbox import SandboxIntent, SandboxOperation
from pintuan.payments.refund_models import Dispute, Refund
from pintuan.pickups.models import Pickup, PickupPoint
from pintuan.shares.models import (
    AttributionCursor,
    Invite,
    Share,
    ShareConversion,
    ShareVisit,
    VisitorLink,
)
from pintuan.teams.models import DealShopperCount, Seat, Team
from pintuan.vouchers.models import Voucher
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
    "Bargain",
    "BargainCut",
    "BargainTerms",
    "Base",
    "Commission",
    "CommissionRate",
    "Coupon",
    "Deal",
    "DealShopperCount",
    "Dispute",
    "Entry",
    "FeedConfig",
    "FeedCursor",
    "FeedImpression",
    "FeedModel",
    "FeedReward",
    "FillBudget",
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
    "PaymentAttempt",
    "Payout",
    "Pickup",
    "PickupPoint",
    "RateLimitCounter",
    "ReconciliationDay",
    "ReconciliationFinding",
    "Refund",
    "SandboxIntent",
    "SandboxOperation",
    "Seat",
    "SettlementLine",
    "SettlementStatement",
    "Share",
    "ShareConversion",
    "ShareVisit",
    "Shipment",
    "Team",
    "User",
    "VisitorLink",
    "Voucher",
    "Wallet",
    "WebSession",
    "WebhookAttempt",
    "WebhookCursor",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WorkerLease",
]
