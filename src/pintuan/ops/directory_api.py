"""HTTP endpoint of the operators' user directory."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.domain.roles import Role
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page
from pintuan.kit.routing import Router
from pintuan.ops import directory
from pintuan.ops.directory import UserRow
from pintuan.services import ServicesDep

router = Router(prefix="/v1/users", tags=["users"])


class StaffOfOut(BaseModel):
    merchant_id: str
    merchant_name: str


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str
    role: str
    locale: str
    time_zone: str
    created_at: datetime
    staff_of: list[StaffOfOut]

    @classmethod
    def of(cls, row: UserRow) -> UserOut:
        return cls(
            id=row.id,
            email=row.email,
            display_name=row.display_name,
            role=row.role,
            locale=row.locale,
            time_zone=row.time_zone,
            created_at=row.created_at,
            staff_of=[
                StaffOfOut(merchant_id=s.merchant_id, merchant_name=s.merchant_name)
                for s in row.staff_of
            ],
        )


@router.get("", response_model=Page[UserOut])
async def list_users(
    principal: CurrentPrincipal,
    services: ServicesDep,
    role: Role | None = None,
    text: Annotated[
        str | None, Query(max_length=100, description="An id, or part of an email or name")
    ] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[UserOut]:
    """Users newest first (operators), by role and by id, email or name."""
    rows = await services.db.read(
        lambda s: directory.list_users(
            s, principal, role=role, text=text, cursor=cursor, limit=limit
        )
    )
    return page_of(rows, limit, UserOut.of)
