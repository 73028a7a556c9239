"""The operator's directory of users: who has an account, in which role, for which merchants."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.domain.roles import Principal, Role
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.sql import contains_pattern
from pintuan.merchants.models import Merchant, MerchantStaff
from pintuan.merchants.service import require_operator


@dataclass(frozen=True, slots=True)
class StaffOf:
    merchant_id: str
    merchant_name: str


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    email: str
    display_name: str
    role: str
    locale: str
    time_zone: str
    created_at: datetime
    staff_of: list[StaffOf]


def list_users(
    session: Session,
    principal: Principal,
    *,
    role: Role | None = None,
    text: str | None = None,
    cursor: str | None,
    limit: int,
) -> list[UserRow]:
    """Users newest first (operators only), ``limit + 1`` rows so the caller knows whether more
    follow; ``text`` finds a user by id, or by part of the email or display name."""
    require_operator(principal)
    query = select(User).order_by(User.id.desc()).limit(limit + 1)
    if role is not None:
        query = query.where(User.role == role.value)
    if text and text.strip():
        pattern = contains_pattern(text.strip())
        query = query.where(
            or_(
                User.id == text.strip(),
                User.email.ilike(pattern, escape="\\"),
                User.display_name.ilike(pattern, escape="\\"),
            )
        )
    if cursor is not None:
        query = query.where(User.id < decode_cursor(cursor))
    users = list(session.scalars(query))
    staff: dict[str, list[StaffOf]] = defaultdict(list)
    if users:
        for user_id, merchant_id, name in session.execute(
            select(MerchantStaff.user_id, Merchant.id, Merchant.name)
            .join(Merchant, Merchant.id == MerchantStaff.merchant_id)
            .where(MerchantStaff.user_id.in_([u.id for u in users]))
            .order_by(Merchant.name)
        ):
            staff[user_id].append(StaffOf(merchant_id, name))
    return [
        UserRow(
            u.id,
            u.email,
            u.display_name,
            u.role,
            u.locale,
            u.time_zone,
            u.created_at,
            staff.get(u.id, []),
        )
        for u in users
    ]
