"""The OAuth 2 authorization server of the open platform, on Authlib's generic server.

Authlib decides the protocol: client authentication, the grants (client credentials,
authorization code with PKCE, refresh token), scope checks, PKCE verification, revocation and
the error responses. This module only tells it where things are stored and what our policy is:
PKCE with S256 on every code, refresh tokens that rotate, codes and tokens kept hashed, and
only approved apps as clients.

Authlib is synchronous, so the HTTP layer reads the request first (:class:`CapturedRequest`)
and runs one server call inside one database transaction (:func:`token_response`,
:func:`revocation_response`, :func:`consent`, :func:`authorization_response`).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Request,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.apps.models import App, OAuthCode, OAuthToken
from pintuan.apps.service import digest, install_app, live_secrets, secret_matches
from pintuan.config import Settings
from pintuan.domain.apps import (
    ACCESS_TOKEN_PREFIX,
    ALL_SCOPES,
    REFRESH_TOKEN_PREFIX,
    AppStatus,
    parse_scope,
)
from pintuan.kit.ids import new_id
from pintuan.kit.time import utc_now

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")
# The scope an app acting as itself cannot have: there is no person whose profile it would be.
PERSONAL_SCOPES = frozenset({"profile"})


# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class CapturedRequest:
    """What Authlib needs of an HTTP request, read before the transaction starts."""

    method: str
    uri: str
    headers: Mapping[str, str]
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)


class _Payload(BasicOAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        lists: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            lists[name].append(value)
        super().__init__({name: values[0] for name, values in lists.items()})
        self._datalist = lists


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, captured: CapturedRequest) -> None:
        super().__init__(captured.method, captured.uri, headers=captured.headers)
        self._args = dict(captured.query)
        self._form = dict(captured.form)
        self.payload = _Payload(captured.query + captured.form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(frozen=True)
class Answer:
    """An Authlib response: status, JSON body (or nothing) and headers."""

    status: int
    body: Any
    headers: list[tuple[str, str]]

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)


# ---------------------------------------------------------------------------- stored things


@dataclass(frozen=True)
class Grantee:
    """Whom a grant acts for: the person who consented, and the shop they installed the app on
    (None when a shopper connected their own account). ``family`` is the code the grant
    started from, carried along refreshes so a replay can revoke them all."""

    user_id: str
    merchant_id: str | None = None
    family: str | None = None


class AppClient(ClientMixin):  # type: ignore[misc]
    """An approved app as Authlib sees it."""

    def __init__(self, app: App, secret_hashes: list[str]) -> None:
        self.app = app
        self.secret_hashes = secret_hashes

    def get_client_id(self) -> str:
        return self.app.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.app.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        # Asking for more than the manifest is refused (invalid_scope), never quietly trimmed.
        registered = set(self.app.scopes)
        if not scope:
            return " ".join(sorted(registered))
        wanted = set(parse_scope(scope))
        if not wanted <= registered:
            return None
        return " ".join(sorted(wanted))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.app.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(self.secret_hashes, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES


class _Code:
    def __init__(self, row: OAuthCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class StoredToken(TokenMixin):  # type: ignore[misc]
    """An access or refresh token's row, as Authlib sees it."""

    def __init__(self, row: OAuthToken, *, refresh: bool = False) -> None:
        self.row = row
        self.refresh = refresh

    def check_client(self, client: AppClient) -> bool:
        return self.row.app_id == client.app.id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((self.row.expires_at - self.row.issued_at).total_seconds())

    def is_expired(self) -> bool:
        ends = self.row.refresh_expires_at if self.refresh else self.row.expires_at
        return ends is None or ends <= utc_now()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or (self.refresh and self.row.rotated_at is not None)


def _enabled(session: Session, user_id: str) -> bool:
    """A disabled person's grants give nothing more (their tokens are refused at the lookup)."""
    disabled = session.scalar(select(User.disabled_at).where(User.id == user_id))
    return disabled is None


def _revoke_family(session: Session, family: str | None, now: datetime) -> None:
    """Revoke every token that came from one authorization code (a replay was seen)."""
    if family is None:
        return
    session.execute(
        update(OAuthToken)
        .where(OAuthToken.code_id == family, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


# ---------------------------------------------------------------------------- grants


class _S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE on every authorization request, and only with S256 (never ``plain``)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE with S256 is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class _AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    server: PintuanServer

    def save_authorization_code(self, code: str, request: Any) -> None:
        grantee: Grantee = request.user
        now = utc_now()
        data = request.payload.data
        self.server.session.add(
            OAuthCode(
                id=new_id("code"),
                code_hash=digest(code),
                app_id=request.client.app.id,
                user_id=grantee.user_id,
                merchant_id=grantee.merchant_id,
                redirect_uri=request.payload.redirect_uri or request.client.app.redirect_uris[0],
                scope=request.scope,
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                created_at=now,
                expires_at=now + timedelta(minutes=self.server.settings.oauth_code_minutes),
            )
        )
        self.server.session.flush()

    def query_authorization_code(self, code: str, client: AppClient) -> _Code | None:
        session = self.server.session
        row = session.scalar(
            select(OAuthCode).where(
                OAuthCode.code_hash == digest(code), OAuthCode.app_id == client.app.id
            )
        )
        if row is None:
            return None
        now = utc_now()
        if row.used_at is not None:
            # A second use: the code leaked. What it gave is taken back (RFC 6749 §4.1.2).
            _revoke_family(session, row.id, now)
            return None
        if row.expires_at <= now:
            return None
        return _Code(row)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        session = self.server.session
        now = utc_now()
        used = session.execute(
            update(OAuthCode)
            .where(OAuthCode.id == authorization_code.row.id, OAuthCode.used_at.is_(None))
            .values(used_at=now)
        )
        if not used.rowcount:  # type: ignore[attr-defined]
            # Another request redeemed it at the same time: both lose what they were given.
            _revoke_family(session, authorization_code.row.id, now)
            raise InvalidGrantError("The code was already used.")

    def authenticate_user(self, authorization_code: _Code) -> Grantee | None:
        row = authorization_code.row
        if not _enabled(self.server.session, row.user_id):
            return None
        return Grantee(row.user_id, row.merchant_id, row.id)


class _ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


class _RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: PintuanServer

    def authenticate_refresh_token(self, refresh_token: str) -> StoredToken | None:
        session = self.server.session
        row = session.scalar(
            select(OAuthToken).where(OAuthToken.refresh_hash == digest(refresh_token))
        )
        if row is None:
            return None
        token = StoredToken(row, refresh=True)
        if row.rotated_at is not None and row.revoked_at is None:
            # An old refresh token came back after rotation: whoever holds the chain now may
            # be a thief, so the whole chain is revoked (RFC 9700 §4.14.2).
            _revoke_family(session, row.code_id, utc_now())
            return None
        if token.is_revoked() or token.is_expired():
            return None
        return token

    def authenticate_user(self, refresh_token: StoredToken) -> Grantee | None:
        row = refresh_token.row
        if row.user_id is None or not _enabled(self.server.session, row.user_id):
            return None
        return Grantee(row.user_id, row.merchant_id, row.code_id)

    def revoke_old_credential(self, refresh_token: StoredToken) -> None:
        session = self.server.session
        now = utc_now()
        rotated = session.execute(
            update(OAuthToken)
            .where(
                OAuthToken.id == refresh_token.row.id,
                OAuthToken.rotated_at.is_(None),
                OAuthToken.revoked_at.is_(None),
            )
            .values(rotated_at=now)
        )
        if not rotated.rowcount:  # type: ignore[attr-defined]
            _revoke_family(session, refresh_token.row.code_id, now)
            raise InvalidGrantError("The refresh token was already used.")


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS
    server: PintuanServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        session = self.server.session
        hashed = digest(token_string)
        if token_type_hint != "refresh_token":  # noqa: S105 - a hint's name
            row = session.scalar(select(OAuthToken).where(OAuthToken.access_hash == hashed))
            if row is not None:
                return StoredToken(row)
        row = session.scalar(select(OAuthToken).where(OAuthToken.refresh_hash == hashed))
        return StoredToken(row, refresh=True) if row is not None else None

    def revoke_token(self, token: StoredToken, request: Any) -> None:
        # Revoking either half revokes the grant's row: access and refresh token together. A
        # refresh token stands for its whole grant (RFC 7009 §2.1): every token its rotations
        # gave is revoked with it, so one rotated meanwhile does not live on.
        now = utc_now()
        if token.row.revoked_at is None:
            token.row.revoked_at = now
            self.server.session.flush()
        if token.refresh:
            _revoke_family(self.server.session, token.row.code_id, now)


# ---------------------------------------------------------------------------- the server


class PintuanServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's server bound to one transaction's session."""

    def __init__(self, session: Session, settings: Settings) -> None:
        super().__init__(scopes_supported=sorted(ALL_SCOPES))
        self.session = session
        self.settings = settings
        self.register_grant(_AuthorizationCodeGrant, [_S256Only(required=True)])
        self.register_grant(_ClientCredentialsGrant)
        self.register_grant(_RefreshTokenGrant)
        self.register_endpoint(_Revocation)
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_: ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32),
                refresh_token_generator=lambda **_: (
                    REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
                ),
                expires_generator=lambda *_: settings.oauth_access_token_minutes * 60,
            ),
        )

    def query_client(self, client_id: str) -> AppClient | None:
        app = self.session.scalar(select(App).where(App.client_id == client_id))
        if app is None or app.status != AppStatus.APPROVED.value:
            return None
        return AppClient(app, [s.secret_hash for s in live_secrets(self.session, app.id)])

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        grantee: Grantee | None = request.user
        client: AppClient = request.client
        now = utc_now()
        refresh = token.get("refresh_token")
        scope = token.get("scope") or " ".join(client.app.scopes)
        if grantee is None:
            scope = " ".join(s for s in parse_scope(scope) if s not in PERSONAL_SCOPES)
        self.session.add(
            OAuthToken(
                id=new_id("otk"),
                app_id=client.app.id,
                user_id=grantee.user_id if grantee else None,
                merchant_id=grantee.merchant_id if grantee else None,
                scope=scope,
                access_hash=digest(token["access_token"]),
                refresh_hash=digest(refresh) if refresh else None,
                code_id=grantee.family if grantee else None,
                issued_at=now,
                expires_at=now + timedelta(seconds=int(token["expires_in"])),
                refresh_expires_at=(
                    now + timedelta(days=self.settings.oauth_refresh_token_days)
                    if refresh
                    else None
                ),
            )
        )
        self.session.flush()

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return _Request(request)

    def handle_response(self, status: int, body: Any, headers: Any) -> Answer:
        return Answer(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


# ---------------------------------------------------------------------------- use cases


def token_response(session: Session, settings: Settings, request: CapturedRequest) -> Answer:
    """Answer ``POST /oauth/token`` (every grant), in the caller's transaction."""
    answer: Answer = PintuanServer(session, settings).create_token_response(request)
    return answer


def revocation_response(session: Session, settings: Settings, request: CapturedRequest) -> Answer:
    """Answer ``POST /oauth/revoke`` (RFC 7009)."""
    answer: Answer = PintuanServer(session, settings).create_endpoint_response(
        RevocationEndpoint.ENDPOINT_NAME, request
    )
    return answer


@dataclass(frozen=True)
class Consent:
    """What the consent page shows: the app, the scopes it asks for, where it goes back to."""

    app: App
    scopes: list[str]
    redirect_uri: str


class ConsentRefused(Exception):
    """The authorization request is not valid. With ``answer`` it goes back to the app (the
    redirect URI was checked); without, the page says so and sends nobody anywhere."""

    def __init__(self, error: OAuth2Error, answer: Answer | None) -> None:
        super().__init__(error.description or error.error)
        self.error = error
        self.answer = answer


def _refused(server: PintuanServer, request: Any, error: OAuth2Error) -> ConsentRefused:
    back: Answer | None = None
    if error.redirect_uri:
        back = server.handle_error_response(request, error)
    return ConsentRefused(error, back)


def consent(
    session: Session, settings: Settings, request: CapturedRequest, user_id: str
) -> Consent:
    """Check an authorization request before asking the person (``GET /oauth/authorize``)."""
    server = PintuanServer(session, settings)
    oauth_request = server.create_oauth2_request(request)
    try:
        grant = server.get_consent_grant(oauth_request, end_user=Grantee(user_id))
    except OAuth2Error as error:
        raise _refused(server, oauth_request, error) from None
    client: AppClient = grant.client
    return Consent(client.app, parse_scope(oauth_request.scope), grant.redirect_uri)


def authorization_response(
    session: Session,
    settings: Settings,
    request: CapturedRequest,
    grantee: Grantee | None,
) -> Answer:
    """The person allowed (``grantee``) or denied (None) the request: a redirect to the app
    with a code or an error. Allowing for a shop records the app's installation there."""
    server = PintuanServer(session, settings)
    oauth_request = server.create_oauth2_request(request)
    try:
        grant = server.get_consent_grant(oauth_request, end_user=grantee)
    except OAuth2Error as error:
        raise _refused(server, oauth_request, error) from None
    answer: Answer = server.create_authorization_response(
        oauth_request, grant_user=grantee, grant=grant
    )
    if grantee is not None and grantee.merchant_id is not None and answer.status == 302:
        install_app(
            session,
            grant.client.app.id,
            grantee.merchant_id,
            grantee.user_id,
            parse_scope(oauth_request.scope),
        )
    return answer
