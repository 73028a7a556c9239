"""Use cases of merchants: onboarding, approval and staff membership."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.accounts.service import normalize_email
from pintuan.domain.lifecycle import MerchantStatus, next_merchant_status
from pintuan.domain.roles import Principal, Role
from pintuan.errors import Conflict, Forbidden, NotFound
from pintuan.kit.ids import new_id
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant, MerchantStaff


@dataclass(frozen=True, slots=True)
class NewMerchant:
    name: str
    slug: str
    country: str
    currency: str
    time_zone: str
    commission_bps: int = 0


def require_operator(principal: Principal) -> None:
    if not principal.is_operator:
        raise Forbidden("Only platform operators may do this.", code="operator_only")


def create_merchant(session: Session, principal: Principal, new: NewMerchant) -> Merchant:
    """Register a merchant (operators only). It starts ``pending`` until approved."""
    require_operator(principal)
    if session.scalar(select(Merchant.id).where(Merchant.slug == new.slug)) is not None:
        raise Conflict(f"The slug {new.slug!r} is taken.", code="slug_taken")
    now = utc_now()
    merchant = Merchant(
        id=new_id("mch"),
        name=new.name,
        slug=new.slug,
        country=new.country,
        currency=new.currency,
        time_zone=new.time_zone,
        commission_bps=new.commission_bps,
        status=MerchantStatus.PENDING.value,
        created_at=now,
        updated_at=now,
    )
    session.add(merchant)
    session.flush()
    return merchant


def get_merchant(session: Session, merchant_id: str) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    return merchant


def find_merchant_by_slug(session: Session, slug: str) -> Merchant | None:
    return session.scalar(select(Merchant).where(Merchant.slug == slug))


def visible_merchant(session: Session, principal: Principal | None, merchant_id: str) -> Merchant:
    """A merchant as the caller may see it: approved ones are public, others only to their own."""
    merchant = get_merchant(session, merchant_id)
    if merchant.status != MerchantStatus.APPROVED and not (
        principal is not None and principal.can_manage(merchant_id)
    ):
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    return merchant


def list_merchants(
    session: Session,
    principal: Principal | None,
    *,
    status: MerchantStatus | None,
    cursor: str | None,
    limit: int,
) -> list[Merchant]:
    """Merchants newest first. The public sees approved ones; operators see all."""
    query = select(Merchant).order_by(Merchant.id.desc()).limit(limit + 1)
    if principal is None or not principal.is_operator:
        if status not in (None, MerchantStatus.APPROVED):
            raise Forbidden(
                "Only operators can list merchants that are not approved.", code="operator_only"
            )
        status = MerchantStatus.APPROVED
    if status is not None:
        query = query.where(Merchant.status == status.value)
    if cursor is not None:
        query = query.where(Merchant.id < decode_cursor(cursor))
    return list(session.scalars(query))


def change_merchant_status(
    session: Session, principal: Principal, merchant_id: str, action: str
) -> Merchant:
    """Approve or suspend a merchant (operators only)."""
    require_operator(principal)
    merchant = get_merchant(session, merchant_id)
    merchant.status = next_merchant_status(MerchantStatus(merchant.status), action).value
    merchant.updated_at = utc_now()
    session.flush()
    return merchant


def add_staff(session: Session, principal: Principal, merchant_id: str, email: str) -> User:
    """Make the user with ``email`` staff of the merchant (operators only)."""
    require_operator(principal)
    get_merchant(session, merchant_id)
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"No user with the email address {email}.", code="user_not_found")
    attach_staff(session, merchant_id, user)
    return user


def attach_staff(session: Session, merchant_id: str, user: User) -> None:
    """Record ``user`` as staff of the merchant; shoppers become merchant users."""
    if user.role == Role.OPERATOR.value:
        raise Conflict("Operators cannot also be merchant staff.", code="operator_cannot_be_staff")
    user.role = Role.MERCHANT.value
    if session.get(MerchantStaff, (merchant_id, user.id)) is None:
        session.add(MerchantStaff(merchant_id=merchant_id, user_id=user.id, created_at=utc_now()))
    session.flush()


def list_staff(session: Session, principal: Principal, merchant_id: str) -> list[User]:
    """The merchant's staff, visible to the merchant's own staff and operators."""
    if not principal.can_manage(merchant_id):
        raise NotFound(f"No merchant {merchant_id}.", code="merchant_not_found")
    query = (
        select(User)
        .join(MerchantStaff, MerchantStaff.user_id == User.id)
        .where(MerchantStaff.merchant_id == merchant_id)
        .order_by(User.display_name)
    )
    return list(session.scalars(query))
