"""The merchant console's referral commissions: what the merchant pays the shoppers whose
shares brought its orders, newest first, one status at a time if asked.

For the merchant's staff and operators; ``list_of_merchant`` answers "not found" for anybody
else, as ``GET /v1/merchants/{id}/commissions`` does.
"""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from pintuan.commissions import service as commissions
from pintuan.domain.commissions import CommissionStatus
from pintuan.kit.routing import Router
from pintuan.teams import reports
from pintuan.web.console import shared
from pintuan.web.console.shared import PAGE_SIZE, choice, listing
from pintuan.web.kit.i18n import N_
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import StaffOfMerchant

router = Router(prefix="/console", include_in_schema=False)

COMMISSION_STATUSES: dict[str, str] = {
    CommissionStatus.FROZEN.value: N_("Frozen until the order can no longer be refunded"),
    CommissionStatus.RELEASED.value: N_("Paid to the sharer"),
    CommissionStatus.CLAWED_BACK.value: N_("Taken back by refunds"),
}
COMMISSION_TONES: dict[str, str] = {
    CommissionStatus.RELEASED.value: "good",
    CommissionStatus.CLAWED_BACK.value: "bad",
}


@router.get("/merchants/{merchant_id}/commissions", response_class=HTMLResponse)
async def commission_list(
    request: Request,
    merchant_id: str,
    principal: StaffOfMerchant,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    """The referral commissions the merchant pays, newest first."""
    db = services_of(request).db
    merchant = await db.read(reports.managed_merchant, principal, merchant_id)
    chosen = choice(status, COMMISSION_STATUSES)
    rows = await db.read_stale(
        lambda s: commissions.list_of_merchant(
            s,
            principal,
            merchant_id,
            status=CommissionStatus(chosen) if chosen else None,
            cursor=cursor,
            limit=PAGE_SIZE,
        )
    )
    context = {
        "merchant": merchant,
        "tab": "commissions",
        "labels": shared,
        "tone": lambda s: COMMISSION_TONES.get(s, ""),
        "page": listing(request, rows, PAGE_SIZE, lambda r: r.id),
        "status": chosen,
        "statuses": COMMISSION_STATUSES,
    }
    return await render(request, "merchant/commissions.html", context)
