"""Outside apps on the open platform: their review states, the scopes they may ask for, and
the principal a request made with an app's access token acts as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AppStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    SUSPENDED = "suspended"


class Scope(StrEnum):
    OFFERS_READ = "offers:read"
    OFFERS_WRITE = "offers:write"
    ORDERS_READ = "orders:read"
    VOUCHERS_REDEEM = "vouchers:redeem"
    WEBHOOKS_MANAGE = "webhooks:manage"
    PROFILE = "profile"


ALL_SCOPES: frozenset[str] = frozenset(scope.value for scope in Scope)


@dataclass(frozen=True, slots=True)
class AppPrincipal:
    """Who an app access token acts for.

    ``user_id`` is the person who authorised the app (None when the app acts as itself through
    client credentials); ``merchant_id`` is the shop it was installed on, when a merchant's staff
    authorised it for their shop.
    """

    app_id: str
    scopes: frozenset[str]
    user_id: str | None = None
    merchant_id: str | None = None

    def has(self, scope: Scope | str) -> bool:
        return str(scope) in self.scopes
