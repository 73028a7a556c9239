"""HTTP endpoints of payments: pay for a seat, provider webhooks, the sandbox's own pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.config import Environment as Env
from pintuan.domain.payments import CheckoutRequest, PaymentStyle
from pintuan.errors import NotFound
from pintuan.idempotency.http import run_write
from pintuan.kit.money import Money
from pintuan.kit.time import utc_now
from pintuan.payments import service
from pintuan.payments.providers.sandbox import SandboxProvider
from pintuan.payments.schemas import PaymentIn, PaymentOut, WebhookAck
from pintuan.services import Services, ServicesDep

router = APIRouter(tags=["payments"])

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
    """Start paying for your held seat; follow ``next_action.url`` to the provider's checkout."""
    provider = services.provider(body.provider)
    # The provider is called between two transactions, never inside one: a call inside would
    # hold the database's write lock for as long as the provider takes.
    payment, new = await services.db.run(
        lambda s: service.start_payment(
            s, principal.user_id, seat_id, provider.name, provider.default_style(), utc_now()
        )
    )
    if new:
        checkout = provider.create_checkout(
            CheckoutRequest(
                payment.id,
                payment.amount,
                payment.currency,
                PaymentStyle(payment.style),
                f"Seat {seat_id}",
            )
        )
        payment = await services.db.run(service.attach_checkout, payment.id, checkout)
    return await run_write(
        request,
        services,
        principal,
        lambda s: PaymentOut.of(service.get_payment(s, payment.id)),
        status_code=201,
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
async def receive_webhook(
    provider_name: str, request: Request, services: ServicesDep
) -> Response:
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
