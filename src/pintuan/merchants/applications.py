"""Applications to sell on Pintuan: anyone signed in applies, an operator approves or rejects.

Approval is one transaction: the merchant is created and approved, the applicant becomes its
staff, and the application points at the merchant. A rejection keeps the operator's reason,
which the applicant reads on their application page.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.auditlog import service as auditlog
from pintuan.domain.roles import Principal, Role
from pintuan.errors import Conflict, NotFound
from pintuan.kit.ids import new_id
from pintuan.kit.pagination import decode_cursor
from pintuan.kit.time import utc_now
from pintuan.merchants.models import Merchant, MerchantApplication
from pintuan.merchants.service import (
    NewMerchant,
    attach_staff,
    change_merchant_status,
    create_merchant,
    require_operator,
)

DECISIONS = ("approve", "reject")


class ApplicationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class NewApplication:
    name: str
    slug: str
    country: str
    currency: str
    time_zone: str
    pitch: str


def apply_to_sell(
    session: Session, principal: Principal, new: NewApplication
) -> MerchantApplication:
    """File an application for the signed-in person. One pending application at a time
    (409 ``application_pending``); the short name must be free (409 ``slug_taken``)."""
    if principal.role is Role.OPERATOR:
        raise Conflict("Operators cannot also be merchant staff.", code="operator_cannot_be_staff")
    waiting = session.scalar(
        select(MerchantApplication.id).where(
            MerchantApplication.applicant_id == principal.user_id,
            MerchantApplication.status == ApplicationStatus.PENDING.value,
        )
    )
    if waiting is not None:
        raise Conflict(
            "You already have an application waiting for an operator.",
            code="application_pending",
        )
    _refuse_taken_slug(session, new.slug)
    now = utc_now()
    application = MerchantApplication(
        id=new_id("apl"),
        applicant_id=principal.user_id,
        name=new.name,
        slug=new.slug,
        country=new.country,
        currency=new.currency,
        time_zone=new.time_zone,
        pitch=new.pitch,
        status=ApplicationStatus.PENDING.value,
        created_at=now,
        updated_at=now,
    )
    session.add(application)
    session.flush()
    return application


def _refuse_taken_slug(session: Session, slug: str) -> None:
    taken = session.scalar(select(Merchant.id).where(Merchant.slug == slug))
    if taken is not None:
        raise Conflict(f"The slug {slug!r} is taken.", code="slug_taken")


def my_applications(session: Session, principal: Principal) -> list[MerchantApplication]:
    """The signed-in person's applications, newest first."""
    query = (
        select(MerchantApplication)
        .where(MerchantApplication.applicant_id == principal.user_id)
        .order_by(MerchantApplication.id.desc())
    )
    return list(session.scalars(query))


def list_applications(
    session: Session,
    principal: Principal,
    *,
    status: ApplicationStatus | None,
    cursor: str | None,
    limit: int,
) -> list[tuple[MerchantApplication, str, str]]:
    """Applications with their applicant's name and email, newest first (operators only)."""
    require_operator(principal)
    query = (
        select(MerchantApplication, User.display_name, User.email)
        .join(User, User.id == MerchantApplication.applicant_id)
        .order_by(MerchantApplication.id.desc())
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(MerchantApplication.status == status.value)
    if cursor is not None:
        query = query.where(MerchantApplication.id < decode_cursor(cursor))
    return [(row, name, email) for row, name, email in session.execute(query)]


def decide_application(
    session: Session,
    principal: Principal,
    application_id: str,
    decision: str,
    *,
    reason: str | None,
) -> MerchantApplication:
    """Approve (create the merchant, approved, with the applicant as staff) or reject a
    pending application (operators only; 409 ``application_decided`` once decided). A
    rejection needs a reason (422 ``reason_required``)."""
    require_operator(principal)
    if decision not in DECISIONS:
        raise NotFound("No such decision.", code="not_found")
    reason = auditlog.clean_reason(decision, reason)
    application = session.get(MerchantApplication, application_id, with_for_update=True)
    if application is None:
        raise NotFound(f"No application {application_id}.", code="application_not_found")
    if application.status != ApplicationStatus.PENDING.value:
        raise Conflict(
            f"This application was already {application.status}.", code="application_decided"
        )
    now = utc_now()
    if decision == "approve":
        applicant = session.get(User, application.applicant_id)
        assert applicant is not None  # a foreign key
        merchant = create_merchant(
            session,
            principal,
            NewMerchant(
                name=application.name,
                slug=application.slug,
                country=application.country,
                currency=application.currency,
                time_zone=application.time_zone,
            ),
        )
        change_merchant_status(session, principal, merchant.id, "approve", reason=reason)
        attach_staff(session, merchant.id, applicant)
        application.merchant_id = merchant.id
        application.status = ApplicationStatus.APPROVED.value
    else:
        application.status = ApplicationStatus.REJECTED.value
    application.decided_by = principal.user_id
    application.decided_at = now
    application.decision_reason = reason
    application.updated_at = now
    session.flush()
    auditlog.record_action(
        session,
        principal,
        action=decision,
        target_kind=auditlog.TargetKind.APPLICATION,
        target_id=application.id,
        merchant_id=application.merchant_id,
        reason=reason,
    )
    return application
