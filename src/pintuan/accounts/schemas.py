"""Request and response bodies of the accounts API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field

from pintuan.accounts.models import ApiToken, User, WebSession
from pintuan.kit.passwords import MIN_PASSWORD_LENGTH
from pintuan.kit.schemas import StrictModel, TimeZoneName

Locale = Literal["en", "zh-Hans"]
DisplayName = Annotated[str, Field(min_length=1, max_length=80)]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)]


class SignupIn(StrictModel):
    email: EmailStr
    password: Password
    display_name: DisplayName
    locale: Locale = "en"
    time_zone: TimeZoneName = "UTC"


class LoginIn(StrictModel):
    email: EmailStr
    password: Annotated[str, Field(min_length=1, max_length=1024)]


TokenDays = Annotated[
    int,
    Field(
        ge=1, le=3650, description="Days until the token expires; at most the platform's default"
    ),
]


class PasswordTokenIn(LoginIn):
    name: Annotated[str, Field(min_length=1, max_length=80)] = "API token"
    expires_in_days: TokenDays | None = None


class ProfileIn(StrictModel):
    display_name: DisplayName | None = None
    locale: Locale | None = None
    time_zone: TimeZoneName | None = None


class TokenIn(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=80)] = "API token"
    expires_in_days: TokenDays | None = None


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str
    role: str
    locale: str
    time_zone: str
    merchant_ids: list[str]
    created_at: datetime
    disabled_at: datetime | None = None

    @classmethod
    def of(cls, user: User, merchant_ids: list[str]) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            role=user.role,
            locale=user.locale,
            time_zone=user.time_zone,
            merchant_ids=merchant_ids,
            created_at=user.created_at,
            disabled_at=user.disabled_at,
        )


class TokenOut(BaseModel):
    id: str
    name: str
    hint: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="Recorded to the minute")

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            id=token.id,
            name=token.name,
            hint=token.hint,
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            last_used_at=token.last_used_at,
        )


class NewTokenOut(TokenOut):
    token: str = Field(description="The secret, shown only in this answer")


class TokenList(BaseModel):
    data: list[TokenOut]


class SessionOut(BaseModel):
    id: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = Field(description="Recorded to the minute")

    @classmethod
    def of(cls, web_session: WebSession) -> SessionOut:
        return cls(
            id=web_session.id,
            created_at=web_session.created_at,
            expires_at=web_session.expires_at,
            last_used_at=web_session.last_used_at,
        )


class SessionList(BaseModel):
    data: list[SessionOut]


class RevokedOut(BaseModel):
    sessions_revoked: int
    tokens_revoked: int
