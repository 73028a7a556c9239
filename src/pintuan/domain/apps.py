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


# The outbox event an app's approval records.
APP_APPROVED = "app.approved"

ALL_SCOPES: frozenset[str] = frozenset(scope.value for scope in Scope)


@dataclass(frozen=True, slots=True)
class AppPrincipal:
    """Who an app access token acts for.

    ``user_id`` is the person who authorised the app (None when the app acts as itself through
    client credentials); ``merchant_id`` is the shop it was installed on, when a merchant's staff
    authorised it for their shop. ``subject`` is how this app (and no other) knows that person.
    """

    app_id: str
    scopes: frozenset[str]
    user_id: str | None = None
    merchant_id: str | None = None
    # The token the request came with, and the person's pseudonymous id for this app.
    token_id: str | None = None
    subject: str | None = None

    def has(self, scope: Scope | str) -> bool:
        return str(scope) in self.scopes


# Opaque credentials carry a prefix, so that a leaked one is recognised for what it is and a
# route can tell an app's access token from a user's API token (``pt_``) without a lookup.
CLIENT_SECRET_PREFIX = "pts_"  # noqa: S105 - a prefix, not a secret
ACCESS_TOKEN_PREFIX = "pta_"  # noqa: S105
REFRESH_TOKEN_PREFIX = "ptr_"  # noqa: S105


def is_app_access_token(secret: str) -> bool:
    """Whether a bearer credential is shaped like an app's access token."""
    return secret.startswith(ACCESS_TOKEN_PREFIX)


# Operators' review: which status each action moves an app from, and to.
APP_TRANSITIONS: dict[str, dict[AppStatus, AppStatus]] = {
    "approve": {AppStatus.PENDING: AppStatus.APPROVED, AppStatus.SUSPENDED: AppStatus.APPROVED},
    "suspend": {AppStatus.APPROVED: AppStatus.SUSPENDED, AppStatus.PENDING: AppStatus.SUSPENDED},
}


def next_app_status(current: AppStatus, action: str) -> AppStatus | None:
    """The status ``action`` moves an app to, or None when it cannot from ``current``."""
    return APP_TRANSITIONS.get(action, {}).get(current)


def parse_scope(text: str | None) -> list[str]:
    """A space-separated scope string as a list, in a stable order, without repeats."""
    return sorted(set((text or "").split()))


def unknown_scopes(scopes: list[str]) -> list[str]:
    """Which of ``scopes`` the platform does not know."""
    return sorted(set(scopes) - ALL_SCOPES)
