"""Use cases of apps: registration by developers, review by operators, client secrets.

Every function takes a session inside an open transaction and never commits. A client secret is
returned once, when it is made, and stored only hashed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from pintuan.apps.models import App, AppInstallation, AppSecret, OAuthToken
from pintuan.domain.apps import (
    APP_APPROVED,
    APP_TRANSITIONS,
    CLIENT_SECRET_PREFIX,
    AppStatus,
    next_app_status,
    unknown_scopes,
)
from pintuan.domain.roles import Principal
from pintuan.domain.webhooks import event_types_named
from pintuan.errors import Conflict, Forbidden, NotFound, field_error
from pintuan.events.service import record_event
from pintuan.kit.ids import new_id
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.rawsql import raw_tx
from pintuan.kit.time import utc_now

MAX_REDIRECT_URIS = 10
MAX_WEBHOOK_EVENTS = 50
# Event types are dotted lower-case names (``team.succeeded``); ``offer.*`` names a family.
EVENT_TYPE = re.compile(r"^[a-z][a-z_]*\.([a-z][a-z_]*|\*)$")
LOOPBACK_NAMES = frozenset({"localhost"})


def digest(secret: str) -> str:
    """How every credential of the open platform is stored: its SHA-256, never itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a developer says about their app when registering it."""

    name: str
    homepage: str
    redirect_uris: list[str]
    scopes: list[str]
    webhook_url: str | None = None
    webhook_events: tuple[str, ...] = ()


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host is None:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def check_app_url(field: str, url: str, *, allow_loopback: bool) -> None:
    """An app's URL must be https; plain http only to a loopback address, and only where
    ``allow_loopback`` (development and tests), since a browser or the server is sent there."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise field_error(field, "is not a URL", code="invalid_app_url") from None
    if not host or parts.scheme not in ("https", "http"):
        raise field_error(field, "must be an absolute https URL", code="invalid_app_url")
    if parts.fragment or parts.username or parts.password:
        raise field_error(field, "must not have a #fragment or a user name", code="invalid_app_url")
    if parts.scheme == "http" and not (allow_loopback and is_loopback_host(host)):
        raise field_error(
            field,
            "must use https (http only to a loopback address, in development)",
            code="invalid_app_url",
        )


def check_manifest(manifest: Manifest, *, allow_loopback: bool) -> None:
    """Refuse a manifest with a field that is not valid (422, naming the field)."""
    if not manifest.name.strip():
        raise field_error("name", "must not be blank")
    check_app_url("homepage", manifest.homepage, allow_loopback=True)
    if not 1 <= len(manifest.redirect_uris) <= MAX_REDIRECT_URIS:
        raise field_error("redirect_uris", f"give 1 to {MAX_REDIRECT_URIS} redirect URIs")
    for index, uri in enumerate(manifest.redirect_uris):
        check_app_url(f"redirect_uris.{index}", uri, allow_loopback=allow_loopback)
    if not manifest.scopes:
        raise field_error("scopes", "ask for at least one scope")
    if unknown := unknown_scopes(manifest.scopes):
        raise field_error("scopes", f"unknown scopes {unknown}", code="unknown_scope")
    if manifest.webhook_url is not None:
        check_app_url("webhook_url", manifest.webhook_url, allow_loopback=allow_loopback)
    if len(manifest.webhook_events) > MAX_WEBHOOK_EVENTS:
        raise field_error("webhook_events", f"at most {MAX_WEBHOOK_EVENTS} event types")
    for index, event in enumerate(manifest.webhook_events):
        if not EVENT_TYPE.match(event):
            raise field_error(f"webhook_events.{index}", "is not an event type like team.succeeded")
        if not event_types_named(event):
            raise field_error(
                f"webhook_events.{index}",
                f"Pintuan sends no '{event}' events",
                code="unknown_event_type",
            )


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A client secret as made: ``secret`` is shown once and never stored."""

    row: AppSecret
    secret: str


def _new_secret(session: Session, app_id: str, now: datetime) -> IssuedSecret:
    secret = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
    row = AppSecret(
        id=new_id("sec"),
        app_id=app_id,
        secret_hash=digest(secret),
        hint=secret[:8],
        created_at=now,
    )
    session.add(row)
    return IssuedSecret(row, secret)


def register_app(
    session: Session, principal: Principal, manifest: Manifest, *, allow_loopback: bool
) -> tuple[App, IssuedSecret]:
    """Register an app for its developer (any signed-in user). It is ``pending`` until an
    operator approves it; its client id is public, its first secret returned once."""
    check_manifest(manifest, allow_loopback=allow_loopback)
    now = utc_now()
    app = App(
        id=new_id("app"),
        owner_user_id=principal.user_id,
        name=manifest.name.strip(),
        homepage=manifest.homepage,
        redirect_uris=list(dict.fromkeys(manifest.redirect_uris)),
        scopes=sorted(set(manifest.scopes)),
        webhook_url=manifest.webhook_url,
        webhook_events=sorted(set(manifest.webhook_events)),
        status=AppStatus.PENDING.value,
        client_id="cli_" + secrets.token_urlsafe(18),
        created_at=now,
        updated_at=now,
    )
    session.add(app)
    session.flush()
    issued = _new_secret(session, app.id, now)
    session.flush()
    return app, issued


def visible_app(session: Session, principal: Principal, app_id: str) -> App:
    """The app, to its developer and to operators; to anybody else it does not exist."""
    app = session.get(App, app_id)
    if app is None or not (principal.is_operator or app.owner_user_id == principal.user_id):
        raise NotFound(f"No app {app_id}.", code="app_not_found")
    return app


def own_app(session: Session, principal: Principal, app_id: str) -> App:
    """The app, to its developer alone (operators review apps, they do not hold their keys)."""
    app = session.get(App, app_id)
    if app is None or app.owner_user_id != principal.user_id:
        if app is not None and principal.is_operator:
            raise Forbidden("Only the app's developer may do this.", code="app_owner_only")
        raise NotFound(f"No app {app_id}.", code="app_not_found")
    return app


def list_apps(
    session: Session,
    principal: Principal,
    *,
    status: AppStatus | None,
    cursor: str | None,
    limit: int,
    everyone: bool = False,
) -> list[App]:
    """Apps newest first: the caller's own, or with ``everyone`` every app (operators)."""
    query = select(App).order_by(App.id.desc()).limit(limit + 1)
    if everyone:
        if not principal.is_operator:
            raise Forbidden("Only operators can list every app.", code="operator_only")
    else:
        query = query.where(App.owner_user_id == principal.user_id)
    if status is not None:
        query = query.where(App.status == status.value)
    if cursor is not None:
        query = query.where(App.id < decode_cursor(cursor))
    return list(session.scalars(query))


def review_app(session: Session, principal: Principal, app_id: str, action: str) -> App:
    """Approve or suspend an app (operators). Suspending revokes every token the app holds,
    so nothing it was given keeps working; approving again needs new grants. Approving records
    ``app.approved``, on which the webhook endpoint its manifest declares is set up."""
    if not principal.is_operator:
        raise Forbidden("Only platform operators may review apps.", code="operator_only")
    if action not in APP_TRANSITIONS:
        raise NotFound("No such action.", code="not_found")
    app = visible_app(session, principal, app_id)
    current = AppStatus(app.status)
    status = next_app_status(current, action)
    if status is None:
        verb = {"approve": "approved", "suspend": "suspended"}[action]
        raise Conflict(
            f"This app is {current.value}; it cannot be {verb}.", code="invalid_app_transition"
        )
    now = utc_now()
    app.status = status.value
    app.updated_at = now
    app.reviewed_at = now
    app.reviewed_by = principal.user_id
    if status is AppStatus.APPROVED:
        # The webhooks worker reads this and sets up the endpoint the manifest declares.
        record_event(raw_tx(session), APP_APPROVED, app.id)
    if status is AppStatus.SUSPENDED:
        session.execute(
            update(OAuthToken)
            .where(OAuthToken.app_id == app.id, OAuthToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    session.flush()
    return app


def live_secrets(session: Session, app_id: str, now: datetime | None = None) -> list[AppSecret]:
    """The app's secrets that still work, newest first."""
    now = now or utc_now()
    query = (
        select(AppSecret)
        .where(
            AppSecret.app_id == app_id,
            AppSecret.revoked_at.is_(None),
            or_(AppSecret.expires_at.is_(None), AppSecret.expires_at > now),
        )
        .order_by(AppSecret.created_at.desc(), AppSecret.id.desc())
    )
    return list(session.scalars(query))


def rotate_secret(
    session: Session, principal: Principal, app_id: str, *, overlap: timedelta
) -> IssuedSecret:
    """A new client secret for the app (its developer). The ones it had keep working for
    ``overlap`` (so that running servers can switch over), unless revoked sooner."""
    app = own_app(session, principal, app_id)
    now = utc_now()
    for old in live_secrets(session, app.id, now):
        ends = now + overlap
        if old.expires_at is None or old.expires_at > ends:
            old.expires_at = ends
    issued = _new_secret(session, app.id, now)
    app.updated_at = now
    session.flush()
    return issued


def revoke_secret(session: Session, principal: Principal, app_id: str, secret_id: str) -> AppSecret:
    """Revoke one of the app's secrets at once (its developer); the last one that works stays,
    since an app without a secret could never get a token again."""
    app = own_app(session, principal, app_id)
    row = session.get(AppSecret, secret_id)
    if row is None or row.app_id != app.id:
        raise NotFound(f"No secret {secret_id}.", code="secret_not_found")
    if row.revoked_at is not None:
        return row
    live = live_secrets(session, app.id)
    if [s.id for s in live] == [row.id]:
        raise Conflict(
            "This is the app's only working secret; make a new one before revoking it.",
            code="last_secret",
        )
    row.revoked_at = utc_now()
    session.flush()
    return row


def secret_matches(hashes: list[str], secret: str) -> bool:
    """Whether ``secret`` is one of the live secrets, compared in constant time."""
    candidate = digest(secret)
    return any(hmac.compare_digest(candidate, known) for known in hashes)


def install_app(
    session: Session, app_id: str, merchant_id: str, user_id: str, scopes: list[str]
) -> AppInstallation:
    """Record that a merchant's staff authorised the app for their shop with ``scopes``; a
    second authorisation replaces the scopes and lifts an earlier revocation."""
    now = utc_now()
    found = session.scalar(
        select(AppInstallation).where(
            AppInstallation.app_id == app_id, AppInstallation.merchant_id == merchant_id
        )
    )
    if found is None:
        found = AppInstallation(
            id=new_id("ins"),
            app_id=app_id,
            merchant_id=merchant_id,
            installed_by=user_id,
            scopes=scopes,
            created_at=now,
            updated_at=now,
        )
        session.add(found)
    else:
        found.scopes = scopes
        found.installed_by = user_id
        found.updated_at = now
        found.revoked_at = None
    session.flush()
    return found
