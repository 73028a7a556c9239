"""Use cases of merchants: onboarding, approval and staff membership."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.accounts.service import normalize_email
from pintuan.auditlog import service as auditlog
from pintuan.domain.lifecycle import MerchantStatus, next_merchant_status
from pintuan.domain.roles import Principal, Role
from pintuan.domain.teams import TeamStatus
from pintuan.errors import Conflict, Forbidden, NotFound
from pintuan.kit.ids import new_id
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.rawsql import Sql, raw_tx
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant, MerchantStaff
from pintuan.teams import service as teams


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
    auditlog.record_action(
        session,
        principal,
        action="create",
        target_kind=auditlog.TargetKind.MERCHANT,
        target_id=merchant.id,
        merchant_id=merchant.id,
        reason=None,
    )
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


# Suspension writes every deal row of the merchant, in id order (the one lock order, see
# teams/service.py). A join takes its unit of stock with a conditional write on that same row,
# so the two are serialised by the row: a join that got there first is committed (and its team is
# failed below), one that comes after sees the flag and is refused. A subquery on merchants in the
# join would cost a lookup per join and, on PostgreSQL, read the merchant as of the join's
# snapshot, letting a join that started just before the suspension commit after it.
LOCK_MERCHANT_DEALS = Sql(
    "SELECT id FROM deals WHERE merchant_id = :merchant_id ORDER BY id FOR UPDATE"
)
MARK_MERCHANT_DEALS = Sql(
    "UPDATE deals SET merchant_suspended = :suspended WHERE merchant_id = :merchant_id"
)
FORMING_TEAMS_OF_MERCHANT = Sql(
    """
    SELECT t.id FROM teams t JOIN deals d ON d.id = t.deal_id
    WHERE d.merchant_id = :merchant_id AND t.status = :forming
    ORDER BY t.id
""",
    forming=TeamStatus.FORMING,
)
LOCK_TEAMS = Sql("SELECT id FROM teams WHERE id IN_LIST(:ids) ORDER BY id FOR UPDATE")


def _id(**row: Any) -> str:
    return str(row["id"])


def change_merchant_status(
    session: Session,
    principal: Principal,
    merchant_id: str,
    action: str,
    *,
    reason: str | None = None,
) -> Merchant:
    """Approve or suspend a merchant (operators only).

    Suspending stops selling in the same transaction: every deal of the merchant stops taking
    joins (see ``LOCK_MERCHANT_DEALS``), and its forming teams fail as a closing window fails
    them, so held seats are released and paid ones refunded (the worker makes the provider calls).
    Approving again lets its live deals sell again; the failed teams stay failed. The change
    goes into the audit log with ``reason`` (the console asks for one before a suspension).
    """
    require_operator(principal)
    merchant = get_merchant(session, merchant_id)
    status = next_merchant_status(MerchantStatus(merchant.status), action)
    now = utc_now()
    tx = raw_tx(session)
    suspended = status is MerchantStatus.SUSPENDED
    if not tx.sqlite:
        tx.execute(LOCK_MERCHANT_DEALS, {"merchant_id": merchant_id})
    tx.execute(MARK_MERCHANT_DEALS, {"merchant_id": merchant_id, "suspended": suspended})
    if suspended:
        forming = tx.all_as(_id, FORMING_TEAMS_OF_MERCHANT, {"merchant_id": merchant_id})
        if forming and not tx.sqlite:
            tx.execute(LOCK_TEAMS, {"ids": forming})
        teams.fail_teams(tx, forming, now)
    session.expire_all()  # the deals' rows changed beneath the session
    merchant = get_merchant(session, merchant_id)
    merchant.status = status.value
    merchant.updated_at = now
    session.flush()
    auditlog.record_action(
        session,
        principal,
        action=action,
        target_kind=auditlog.TargetKind.MERCHANT,
        target_id=merchant.id,
        merchant_id=merchant.id,
        reason=reason,
    )
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


def remove_staff(session: Session, principal: Principal, merchant_id: str, user_id: str) -> None:
    """Take ``user_id`` off the merchant's staff (operators only). It takes effect on their next
    request, whatever session or token they use; with no merchant left they are a shopper."""
    require_operator(principal)
    get_merchant(session, merchant_id)
    post = session.get(MerchantStaff, (merchant_id, user_id))
    if post is None:
        raise NotFound(f"{user_id} is not staff of merchant {merchant_id}.", code="staff_not_found")
    session.delete(post)
    session.flush()
    still_staff = session.scalar(
        select(MerchantStaff.merchant_id).where(MerchantStaff.user_id == user_id).limit(1)
    )
    user = session.get(User, user_id)
    if still_staff is None and user is not None and user.role == Role.MERCHANT.value:
        user.role = Role.SHOPPER.value
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
