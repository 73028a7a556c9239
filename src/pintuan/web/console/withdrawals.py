"""The operator console's withdrawals: shoppers' money leaving their wallets for their own
accounts, those waiting to be sent first, one status at a time, and the buttons that record
what became of each (sent, paid, failed, returned) through ``move_payout``.

A failed or returned withdrawal puts the money back in the shopper's wallet (the ledger's
reversing journal, in ``ledger.payouts``); the bank's reference and the reason are optional.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from pintuan.accounts.models import User
from pintuan.errors import NotFound
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.ledger import payouts
from pintuan.ledger.models import Payout
from pintuan.ledger.payouts import NEXT, PayoutStatus
from pintuan.web.console import shared
from pintuan.web.console.shared import PAGE_SIZE, choice, clean_text, listing, with_done
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import Operator, safe_next

router = Router(prefix="/console/operator", include_in_schema=False)

LIST = "/console/operator/withdrawals"

WITHDRAWAL_STATUSES: dict[str, str] = {
    PayoutStatus.PENDING.value: N_("Waiting to be sent"),
    PayoutStatus.SENT.value: N_("Sent"),
    PayoutStatus.PAID.value: N_("Paid"),
    PayoutStatus.FAILED.value: N_("Failed, money back in the wallet"),
    PayoutStatus.RETURNED.value: N_("Returned, money back in the wallet"),
}
WITHDRAWAL_TONES: dict[str, str] = {
    PayoutStatus.PAID.value: "good",
    PayoutStatus.FAILED.value: "bad",
    PayoutStatus.RETURNED.value: "bad",
}
# The buttons, by the status a withdrawal moves to.
MOVES: dict[str, str] = {
    PayoutStatus.SENT.value: N_("Mark sent"),
    PayoutStatus.PAID.value: N_("Mark paid"),
    PayoutStatus.FAILED.value: N_("Mark failed"),
    PayoutStatus.RETURNED.value: N_("Mark returned"),
}
MOVED: dict[str, str] = {
    PayoutStatus.SENT.value: N_("The withdrawal is marked sent."),
    PayoutStatus.PAID.value: N_("The withdrawal is marked paid."),
    PayoutStatus.FAILED.value: N_(
        "The withdrawal is marked failed; its money is back in the wallet."
    ),
    PayoutStatus.RETURNED.value: N_(
        "The withdrawal is marked returned; its money is back in the wallet."
    ),
}


def _shoppers(session: Session, rows: Sequence[Payout]) -> dict[str, tuple[str, str]]:
    """Each withdrawing shopper's name and email address."""
    ids = {p.user_id for p in rows if p.user_id is not None}
    if not ids:
        return {}
    found = session.execute(
        select(User.id, User.display_name, User.email).where(User.id.in_(ids))
    ).all()
    return {str(user_id): (str(name), str(email)) for user_id, name, email in found}


@router.get("/withdrawals", response_class=HTMLResponse)
async def withdrawal_list(
    request: Request, principal: Operator, status: str | None = None, cursor: str | None = None
) -> Response:
    """Shoppers' withdrawals of one status, newest first; those waiting to be sent unless
    another status is asked for."""
    chosen = choice(status, WITHDRAWAL_STATUSES) or PayoutStatus.PENDING.value

    def read(session: Session) -> tuple[list[Payout], dict[str, tuple[str, str]]]:
        rows = payouts.list_withdrawals(
            session, None, status=PayoutStatus(chosen), cursor=cursor, limit=PAGE_SIZE
        )
        return rows, _shoppers(session, rows)

    rows, shoppers = await services_of(request).db.read(read)
    locale = request_locale(request, principal)
    context: dict[str, Any] = {
        "tab": "withdrawals",
        "labels": shared,
        "tone": lambda s: WITHDRAWAL_TONES.get(s, ""),
        "page": listing(request, rows, PAGE_SIZE, lambda p: p.id),
        "shoppers": shoppers,
        "status": chosen,
        "statuses": WITHDRAWAL_STATUSES,
        "moves": MOVES,
        "next_moves": {
            p.id: [s.value for s in PayoutStatus if s in NEXT[PayoutStatus(p.status)]] for p in rows
        },
    }
    done = request.query_params.get("done", "")
    if done in MOVED:
        context["notice"] = gettext(locale, MOVED[done])
    return await render(request, "operator/withdrawals.html", context)


@router.post(
    "/withdrawals/{payout_id}/{to}", response_class=HTMLResponse, dependencies=[CsrfProtected]
)
async def move_withdrawal(
    request: Request, payout_id: str, to: str, principal: Operator
) -> Response:
    """Record what became of a withdrawal; failed or returned gives the shopper the money
    back."""
    if to not in MOVES:
        raise NotFound("No such action.", code="not_found")
    fields = await form_fields(request)
    reference = clean_text(fields.get("reference"), 120)
    reason = clean_text(fields.get("reason"), 500)

    def work(session: Session) -> dict[str, str]:
        payout = session.get(Payout, payout_id)
        if payout is None or payout.user_id is None:
            raise NotFound(f"No withdrawal {payout_id}.", code="payout_not_found")
        moved = payouts.move_payout(
            session,
            principal,
            payout_id,
            PayoutStatus(to),
            utc_now(),
            reference=reference,
            reason=reason,
        )
        return {"status": moved.status}

    await run_form_write(request, services_of(request), principal, work)
    back = safe_next(fields.get("next"), LIST)
    if not back.startswith(LIST):
        back = LIST
    return RedirectResponse(with_done(back, to), status_code=303)
