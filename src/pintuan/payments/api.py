"""HTTP endpoints of payments: pay for a seat, provider webhooks, the sandbox's own pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import anyio.to_thread
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.config import Environment as Env
from pintuan.domain.payments import CheckoutRequest, PaymentProvider, PaymentStyle, ProviderError
from pintuan.domain.roles import Principal
from pintuan.errors import AppError, NotFound, ProviderUnavailable, field_error
from pintuan.idempotency.http import run_steps_write, run_write
from pintuan.kit.money import Money
from pintuan.kit.rawsql import raw_tx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.payments import service
from pintuan.payments.models import Payment
from pintuan.payments.pay_links import issue_pay_link, read_pay_link
from pintuan.payments.providers.sandbox import SandboxProvider
from pintuan.payments.schemas import (
    PayLinkOut,
    PayLinkView,
    PaymentIn,
    PaymentOut,
    TopupIn,
    WebhookAck,
)
from pintuan.services import Services, ServicesDep
from pintuan.teams import reads as team_reads
from pintuan.teams import service as teams
from pintuan.teams.models import Seat

router = Router(tags=["payments"])

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


@router.post("/v1/seats/{seat_id}/payments", status_code=201, response_model=PaymentOut)
async def pay_for_seat(
    seat_id: str,
    body: PaymentIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Start paying for your held seat. Follow ``next_action``: open its ``url``, show its
    ``qr_code``, or hand its ``client_params`` to the provider's client SDK. With provider
    ``wallet`` the seat is paid from your balance at once."""
    return await _pay(
        request,
        services,
        principal,
        body,
        lambda s: team_reads.owned_seat(s, principal.user_id, seat_id),
    )


async def _pay(
    request: Request,
    services: Services,
    principal: Principal,
    body: PaymentIn,
    find_seat: Callable[[Session], Seat],
) -> Response:
    """Pay for the seat ``find_seat`` finds (and authorises), as ``principal``."""
    payer_id = principal.user_id
    if body.provider == "wallet":
        if body.checkout_kind is not None:
            raise field_error("checkout_kind", "the wallet has no checkout")

        def pay_from_wallet(session: Session) -> PaymentOut:
            seat_id = find_seat(session).id
            payment_id = service.pay_from_wallet(
                raw_tx(session), payer_id, seat_id, body.refund_to, utc_now()
            )
            return PaymentOut.of(service.get_payment(session, payment_id))

        return await run_write(request, services, principal, pay_from_wallet, status_code=201)

    provider = services.provider(body.provider)

    def begin(session: Session, now: datetime) -> tuple[str, service.NewPayment]:
        seat = find_seat(session)
        kind = service.check_checkout(provider.capabilities, seat.currency, body.checkout_kind)
        team_ends = team_reads.team_expiry(session, seat.team_id)
        style = service.choose_style(
            provider.capabilities, provider.default_style(), team_ends, now
        )
        started = service.start_payment(
            session, payer_id, seat, provider.name, kind, style, body.refund_to, now
        )
        return kind, started

    async def steps() -> PaymentOut:
        kind, started = await services.db.run(begin, utc_now())
        payment = started.payment
        if started.new:
            await _open_checkout(
                services,
                provider,
                payment,
                CheckoutRequest(
                    payment.id,
                    payment.amount,
                    payment.currency,
                    PaymentStyle(payment.style),
                    f"Pintuan seat {payment.seat_id}",
                    kind=kind,
                    expires_at=started.expires_at,
                    return_url=f"{services.settings.base_url}/teams/{payment.team_id}",
                    client_ip=request.client.host if request.client else None,
                    payer_ref=body.payer_ref,
                ),
            )
        return await _payment_out(services, payment.id)

    # The key is claimed before the payment is made and the checkout opened: a repeat gets the
    # first answer (or 409 while it runs), never a second payment.
    return await run_steps_write(request, services, principal, steps, status_code=201)


async def _payment_out(services: Services, payment_id: str) -> PaymentOut:
    return PaymentOut.of(await services.db.read(service.get_payment, payment_id))


async def _open_checkout(
    services: Services, provider: PaymentProvider, payment: Payment, request: CheckoutRequest
) -> None:
    """Ask the provider for a checkout between two transactions, never inside one (a call
    inside would hold the write lock for as long as the provider takes)."""
    try:
        if provider.blocking_io:
            checkout = await anyio.to_thread.run_sync(provider.create_checkout, request)
        else:
            checkout = provider.create_checkout(request)
    except ProviderError as exc:
        await services.db.run(service.checkout_failed, payment.id, utc_now())
        raise ProviderUnavailable(
            f"{provider.name} could not open a checkout; try again or pay another way.",
        ) from exc
    except AppError:
        # Refused before any money could move (a missing payer id, say): the payment ends.
        await services.db.run(service.checkout_failed, payment.id, utc_now())
        raise
    await services.db.run(service.attach_checkout, payment.id, request.kind or "", checkout)


@router.post("/v1/me/wallet/topups", status_code=201, response_model=PaymentOut)
async def top_up_wallet(
    body: TopupIn, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Put money into your wallet through a provider; it lands when the provider confirms."""
    provider = services.provider(body.provider)
    if PaymentStyle.CHARGE not in provider.capabilities.styles:
        raise field_error("provider", "cannot charge at once, so cannot top up a wallet")
    kind = service.check_checkout(provider.capabilities, body.amount.currency, body.checkout_kind)

    async def steps() -> PaymentOut:
        payment = await services.db.run(
            service.start_topup,
            principal.user_id,
            provider.name,
            body.amount.amount,
            body.amount.currency,
            utc_now(),
        )
        await _open_checkout(
            services,
            provider,
            payment,
            CheckoutRequest(
                payment.id,
                payment.amount,
                payment.currency,
                PaymentStyle.CHARGE,
                "Pintuan wallet top-up",
                kind=kind,
                return_url=f"{services.settings.base_url}/me/wallet",
                client_ip=request.client.host if request.client else None,
            ),
        )
        return await _payment_out(services, payment.id)

    return await run_steps_write(request, services, principal, steps, status_code=201)


# ------------------------------------------------------------------ friend pays


@router.post("/v1/seats/{seat_id}/pay-links", status_code=201, response_model=PayLinkOut)
async def create_pay_link(
    seat_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> PayLinkOut:
    """A link to share so that a friend can pay for your held seat; it dies with the hold."""
    # Nothing is written and the link is a function of the seat's hold, so a repeat gets the
    # same link without a key; a capability is never copied into the idempotency store.
    seat = await services.db.read(team_reads.owned_seat, principal.user_id, seat_id)
    teams.require_held(seat, utc_now())
    assert seat.hold_expires_at is not None
    token = issue_pay_link(services.settings.secret_key, seat.id, seat.hold_expires_at)
    return PayLinkOut(
        token=token,
        url=f"{services.settings.base_url}/pay/{token}",
        seat_id=seat.id,
        expires_at=seat.hold_expires_at,
    )


@router.get("/v1/pay-links/{token}", response_model=PayLinkView)
async def read_pay_link_details(token: str, services: ServicesDep) -> PayLinkView:
    """What a pay link asks for: whose seat, in which deal, how much, until when."""
    seat_id, expires_at = read_pay_link(services.settings.secret_key, token, utc_now())
    seat = await services.db.read(team_reads.seat_for_friend, seat_id)
    return PayLinkView.of(seat, expires_at)


@router.post("/v1/pay-links/{token}/payments", status_code=201, response_model=PaymentOut)
async def pay_by_link(
    token: str,
    body: PaymentIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Pay for a friend's held seat. Money owed back (if the team fails) returns to you."""
    seat_id, _ = read_pay_link(services.settings.secret_key, token, utc_now())
    return await _pay(
        request, services, principal, body, lambda s: team_reads.seat_by_id(s, seat_id)
    )


@router.get("/v1/payments/{payment_id}", response_model=PaymentOut)
async def read_payment(
    payment_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> PaymentOut:
    payment = await services.db.read(service.owned_payment, principal.user_id, payment_id)
    return PaymentOut.of(payment)


async def deliver_webhook(
    services: Services, provider_name: str, body: bytes, headers: dict[str, str]
) -> WebhookAck:
    """Verify, store once and apply one provider notification (the HTTP endpoint's path too)."""
    provider = services.provider(provider_name)
    now = utc_now()
    event = provider.verify_webhook(body, headers, now)
    handled = await services.db.run_raw(
        service.handle_provider_event, provider_name, event, body.decode("utf-8", "replace"), now
    )
    return WebhookAck(duplicate=handled.duplicate)


@router.post("/v1/webhooks/{provider_name}", response_model=WebhookAck)
async def receive_webhook(provider_name: str, request: Request, services: ServicesDep) -> Response:
    """Provider notifications. Bad or stale signatures are refused and stored nowhere."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    ack = await deliver_webhook(services, provider_name, await request.body(), headers)
    answer = services.provider(provider_name).webhook_ack_body
    if answer is not None:
        return Response(answer, media_type="text/plain")
    return Response(ack.model_dump_json(), media_type="application/json")


# ------------------------------------------------------------------ the sandbox's own side


def _sandbox(services: Services) -> SandboxProvider:
    provider = services.providers.get("sandbox")
    if not isinstance(provider, SandboxProvider):
        raise NotFound("The sandbox provider is disabled.", code="sandbox_disabled")
    return provider


@router.get("/sandbox/checkout/{ref}", response_class=HTMLResponse, include_in_schema=False)
async def sandbox_checkout(ref: str, services: ServicesDep) -> HTMLResponse:
    intent = _sandbox(services).intent(ref)
    amount = Money(intent.amount, intent.currency).format("en")
    html = _templates.get_template("sandbox_checkout.html").render(intent=intent, amount=amount)
    return HTMLResponse(html)


@router.post("/sandbox/checkout/{ref}/{choice}", include_in_schema=False)
async def sandbox_complete(ref: str, choice: str, services: ServicesDep) -> Response:
    if choice not in ("pay", "decline"):
        raise NotFound("No such checkout action.")
    body, headers = _sandbox(services).complete_checkout(ref, approve=choice == "pay")
    await deliver_webhook(services, "sandbox", body, headers)
    return RedirectResponse(f"/sandbox/checkout/{ref}", status_code=303)


@router.post("/v1/test_helpers/payments/{payment_id}/{outcome}", response_model=PaymentOut)
async def drive_sandbox_payment(
    payment_id: str, outcome: str, principal: CurrentPrincipal, services: ServicesDep
) -> PaymentOut:
    """Outside production: make a sandbox payment succeed or fail, as a shopper would, through
    the same signed-webhook path."""
    if services.settings.env is Env.PROD or outcome not in ("succeed", "fail"):
        raise NotFound("No such endpoint.")
    payment = await services.db.read(service.owned_payment, principal.user_id, payment_id)
    if payment.provider != "sandbox" or payment.provider_ref is None:
        raise NotFound(f"No sandbox payment {payment_id}.", code="payment_not_found")
    body, headers = _sandbox(services).complete_checkout(
        payment.provider_ref, approve=outcome == "succeed"
    )
    await deliver_webhook(services, "sandbox", body, headers)
    return PaymentOut.of(await services.db.read(service.get_payment, payment_id))
