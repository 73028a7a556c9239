"""The shopper's wallet and referral commissions: what the wallet holds, withdrawing from it to
their own bank or payment account (and where each withdrawal stands), and the commissions their
shares earned, with what is frozen, paid to the wallet and taken back by refunds.

The withdrawal form is read as ``POST /v1/me/wallet/withdrawals`` reads its body (the same
schema, then ``create_withdrawal``) and takes effect once per form key; a refusal is shown by
the field it is about, in the viewer's language. Every page shows the signed-in shopper's own
money only: no address names another person.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from pintuan.commissions import service as commissions
from pintuan.domain.commissions import CommissionStatus
from pintuan.domain.roles import Principal
from pintuan.errors import AppError
from pintuan.kit.money import exponent
from pintuan.kit.pagination import encode_cursor
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.ledger import payouts, reads
from pintuan.ledger.payouts import MAX_DESTINATION, PayoutStatus
from pintuan.ledger.schemas import WithdrawalIn
from pintuan.web.console.deal_form import amount_text, parse_amount
from pintuan.web.kit.csrf import CsrfProtected
from pintuan.web.kit.errors import error_message
from pintuan.web.kit.forms import form_fields, run_form_write
from pintuan.web.kit.i18n import N_, gettext, request_locale
from pintuan.web.kit.rendering import render
from pintuan.web.kit.services import services_of
from pintuan.web.kit.session import LoggedIn

router = Router(include_in_schema=False)

WALLET = "/me/wallet"
COMMISSIONS = "/me/commissions"
PAGE_SIZE = 20

COMMISSION_STATUSES: dict[str, str] = {
    CommissionStatus.FROZEN.value: N_("Frozen"),
    CommissionStatus.RELEASED.value: N_("Paid to your wallet"),
    CommissionStatus.CLAWED_BACK.value: N_("Taken back by a refund"),
}
COMMISSION_TONES: dict[str, str] = {
    CommissionStatus.RELEASED.value: "good",
    CommissionStatus.CLAWED_BACK.value: "bad",
}
WITHDRAWAL_STATUSES: dict[str, str] = {
    PayoutStatus.PENDING.value: N_("Waiting to be sent"),
    PayoutStatus.SENT.value: N_("Sent to your account"),
    PayoutStatus.PAID.value: N_("Arrived in your account"),
    PayoutStatus.FAILED.value: N_("Failed: the money is back in your wallet"),
    PayoutStatus.RETURNED.value: N_("Came back: the money is back in your wallet"),
}
WITHDRAWAL_TONES: dict[str, str] = {
    PayoutStatus.PAID.value: "good",
    PayoutStatus.FAILED.value: "bad",
    PayoutStatus.RETURNED.value: "bad",
}
WITHDRAWN = N_(
    "Your withdrawal is recorded: the money has left your wallet and waits to be sent to "
    "your account."
)
AMOUNT_NOT_READ = N_("Type an amount like %(example)s, with at most %(digits)d decimals.")
AMOUNT_LIMITS = N_("Type an amount above zero, at most what your wallet holds.")
DESTINATION_NEEDED = N_(
    "Say where the money goes: your bank or payment account, in at most %(max)d characters."
)
CURRENCY_NEEDED = N_("Choose one of the currencies your wallet holds.")


# ---------------------------------------------------------------------------- the wallet


def _wallet_context(session: Session, user_id: str, cursor: str | None) -> dict[str, Any]:
    rows = payouts.list_withdrawals(session, user_id, status=None, cursor=cursor, limit=PAGE_SIZE)
    shown = rows[:PAGE_SIZE]
    return {
        "balances": reads.wallet_balances(session, user_id),
        "withdrawals": shown,
        "next_cursor": encode_cursor(shown[-1].id) if len(rows) > PAGE_SIZE else None,
    }


async def _wallet_page(
    request: Request,
    principal: Principal,
    *,
    cursor: str | None = None,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = await services_of(request).db.read(_wallet_context, principal.user_id, cursor)
    locale = request_locale(request, principal)
    context.update(
        typed=typed or {},
        errors=errors or {},
        statuses=WITHDRAWAL_STATUSES,
        tones=WITHDRAWAL_TONES,
        max_destination=MAX_DESTINATION,
        examples={c: amount_text(10 ** exponent(c) * 10, c) for _, c in context["balances"]},
    )
    if request.query_params.get("done") == "withdrawn":
        context["notice"] = gettext(locale, WITHDRAWN)
    return await render(request, "shopper/wallet.html", context, status_code=status_code)


@router.get(WALLET, response_class=HTMLResponse)
async def wallet_page(request: Request, principal: LoggedIn, cursor: str | None = None) -> Response:
    """What the wallet holds, the form to withdraw, and the shopper's withdrawals."""
    return await _wallet_page(request, principal, cursor=cursor)


def _read_withdrawal(
    typed: dict[str, str], currencies: list[str], locale: str
) -> tuple[WithdrawalIn | None, dict[str, str]]:
    """The form as the API's body, or the message of each field that is wrong."""
    errors: dict[str, str] = {}
    currency = typed["currency"] if typed["currency"] in currencies else None
    if currency is None:
        errors["currency"] = gettext(locale, CURRENCY_NEEDED)
        currency = currencies[0] if currencies else "USD"
    amount = 0
    try:
        amount = parse_amount(typed["amount"], currency)
    except ValueError:
        errors["amount"] = gettext(locale, AMOUNT_NOT_READ) % {
            "example": amount_text(10 ** exponent(currency) * 10, currency),
            "digits": exponent(currency),
        }
    try:
        body = WithdrawalIn.model_validate(
            {
                "amount": {"amount": amount, "currency": currency},
                "destination": " ".join(typed["destination"].split()),
            }
        )
    except ValidationError as invalid:
        for problem in invalid.errors():
            if problem["loc"] and problem["loc"][0] == "destination":
                errors.setdefault(
                    "destination", gettext(locale, DESTINATION_NEEDED) % {"max": MAX_DESTINATION}
                )
            else:
                errors.setdefault("amount", gettext(locale, AMOUNT_LIMITS))
        return None, errors
    return (None if errors else body), errors


@router.post(WALLET + "/withdrawals", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def withdraw(request: Request, principal: LoggedIn) -> Response:
    """Withdraw from the wallet to the shopper's own account: the wallet is debited now, never
    below zero, and the withdrawal waits for operators to send it."""
    fields = await form_fields(request)
    typed = {name: fields.get(name, "") for name in ("amount", "currency", "destination")}
    locale = request_locale(request, principal)
    services = services_of(request)
    balances = await services.db.read(reads.wallet_balances, principal.user_id)
    body, errors = _read_withdrawal(typed, [c for _, c in balances], locale)
    if body is None:
        return await _wallet_page(request, principal, typed=typed, errors=errors, status_code=422)
    valid = body

    def work(session: Session) -> dict[str, str]:
        payout = payouts.create_withdrawal(
            session,
            principal.user_id,
            valid.amount.amount,
            valid.amount.currency,
            valid.destination,
            utc_now(),
        )
        return {"id": payout.id}

    try:
        await run_form_write(request, services, principal, work)
    except AppError as refused:
        if refused.status == 404 or refused.status >= 500:
            raise
        field = "destination" if refused.code == "validation_error" else "amount"
        message = (
            gettext(locale, DESTINATION_NEEDED) % {"max": MAX_DESTINATION}
            if field == "destination"
            else error_message(refused, locale)
        )
        return await _wallet_page(
            request,
            principal,
            typed=typed,
            errors={field: message},
            status_code=refused.status,
        )
    return RedirectResponse(WALLET + "?done=withdrawn", status_code=303)


# ---------------------------------------------------------------------------- commissions


@router.get(COMMISSIONS, response_class=HTMLResponse)
async def commissions_page(
    request: Request, principal: LoggedIn, cursor: str | None = None
) -> Response:
    """The commissions the shopper's shares earned, newest first, with their totals."""
    user_id = principal.user_id

    def read(session: Session) -> dict[str, Any]:
        rows = commissions.list_of_sharer(
            session, user_id, status=None, cursor=cursor, limit=PAGE_SIZE
        )
        shown = rows[:PAGE_SIZE]
        return {
            "totals": commissions.totals_of_sharer(session, user_id),
            "rows": shown,
            "next_cursor": encode_cursor(shown[-1].id) if len(rows) > PAGE_SIZE else None,
        }

    context = await services_of(request).db.read(read)
    context.update(statuses=COMMISSION_STATUSES, tones=COMMISSION_TONES)
    return await render(request, "shopper/commissions.html", context)
