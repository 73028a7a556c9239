"""HTTP endpoints of bargains: a deal's bargain terms (its merchant's staff), opening a bargain,
reading one by its link, cutting it (friends) and buying at the price reached (its owner)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request, Response
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal, MaybePrincipal
from pintuan.bargains import service
from pintuan.bargains.schemas import BargainOut, BargainTermsIn, BargainTermsOut, CutOut
from pintuan.config import Settings
from pintuan.domain.roles import Principal
from pintuan.idempotency.http import run_raw_write, run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery, client_address
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.rawsql import RawTx
from pintuan.kit.routing import Router
from pintuan.kit.time import utc_now
from pintuan.services import ServicesDep
from pintuan.teams.schemas import SeatOut, StartedTeamOut, TeamOut

router = Router(prefix="/v1", tags=["bargains"])

DEVICE_HEADER = "X-Device-Id"
DEVICE_COOKIE = "pt_device"


def cut_limits(settings: Settings) -> service.CutLimits:
    return service.CutLimits(
        new_account=timedelta(hours=settings.bargain_new_account_hours),
        new_account_cuts_per_day=settings.bargain_new_account_cuts_per_day,
        cuts_per_address_per_day=settings.bargain_cuts_per_address_per_day,
    )


def helper_of(request: Request, settings: Settings, principal: Principal) -> service.Helper:
    """The helper behind a request: the client's address (trusted proxies honoured) and its
    device, from ``X-Device-Id`` (API clients) or the pages' ``pt_device`` cookie."""
    device = request.headers.get(DEVICE_HEADER) or request.cookies.get(DEVICE_COOKIE)
    return service.helper_of(
        settings.secret_key, principal.user_id, client_address(request), device
    )


# ---------------------------------------------------------------------------- terms


@router.put("/deals/{deal_id}/bargain", response_model=BargainTermsOut)
async def set_terms(
    deal_id: str,
    body: BargainTermsIn,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    """Give a draft or live deal bargain terms, or change them (the merchant's staff). Open
    bargains keep the terms they were opened with. 422 when the floor is not below the list
    price by one minor unit per helper or its currency is not the deal's; 409
    ``bargain_terms_not_editable`` on a paused or ended deal."""

    def work(session: Session) -> BargainTermsOut:
        terms = service.set_terms(
            session, principal, deal_id, body.to_terms(), body.floor_price.currency, utc_now()
        )
        return BargainTermsOut.of(terms)

    return await run_write(request, services, principal, work)


@router.get("/deals/{deal_id}/bargain", response_model=BargainTermsOut)
async def read_terms(
    deal_id: str, principal: MaybePrincipal, services: ServicesDep
) -> BargainTermsOut:
    """A deal's bargain terms; 404 ``bargain_terms_not_found`` when it offers no bargain."""
    return BargainTermsOut.of(await services.db.read(service.terms_of, principal, deal_id))


@router.delete("/deals/{deal_id}/bargain", status_code=204)
async def remove_terms(
    deal_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Take a deal's bargain terms away (nothing to do when it has none); 409
    ``bargain_terms_in_use`` once a shopper opened a bargain on them."""
    await services.db.run(service.remove_terms, principal, deal_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------------- bargains


@router.post("/deals/{deal_id}/bargains", status_code=201, response_model=BargainOut)
async def open_bargain(
    deal_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Open a bargain on a live deal with bargain terms, at its list price; share its link
    for friends to cut. 409 ``bargain_already_open`` (with its ``bargain_id``),
    ``bargain_not_offered`` or ``deal_not_live``."""

    def work(tx: RawTx) -> BargainOut:
        bargain = service.open_bargain(tx, principal.user_id, deal_id, utc_now())
        return BargainOut.of(bargain, owner=True, helpers=[])

    return await run_raw_write(request, services, principal, work, status_code=201)


@router.get("/bargains/{bargain_id}", response_model=BargainOut)
async def read_bargain(
    bargain_id: str, principal: MaybePrincipal, services: ServicesDep
) -> BargainOut:
    """A bargain, for anyone with its link: the price reached, the floor, the deadline and
    its helpers by display name (never their accounts)."""

    def read(tx: RawTx) -> BargainOut:
        bargain = service.get_bargain(tx, bargain_id, utc_now())
        owner = principal is not None and principal.user_id == bargain.owner_id
        return BargainOut.of(bargain, owner=owner, helpers=service.helpers_of(tx, bargain_id))

    return await services.db.run_raw(read, write=False)


@router.get("/me/bargains", response_model=Page[BargainOut])
async def my_bargains(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[BargainOut]:
    """The bargains you opened, newest first."""
    after = decode_cursor(cursor) if cursor else None
    rows = await services.db.run_raw(
        service.bargains_of_owner, principal.user_id, after, limit + 1, utc_now(), write=False
    )
    return page_of(rows, limit, lambda b: BargainOut.of(b, owner=True))


@router.post("/bargains/{bargain_id}/cuts", status_code=201, response_model=CutOut)
async def cut_bargain(
    bargain_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Help a friend: cut their bargain by its next amount. Send ``X-Device-Id`` (a stable
    random id of the device). 403 ``bargain_own``; 409 ``bargain_already_cut``,
    ``bargain_device_used``, ``bargain_address_used``, ``bargain_complete`` or
    ``bargain_closed``; 429 ``bargain_new_account_limit`` or ``bargain_address_limit`` (with
    ``Retry-After``)."""
    helper = helper_of(request, services.settings, principal)
    limits = cut_limits(services.settings)

    def work(tx: RawTx) -> CutOut:
        return CutOut.of(service.cut(tx, helper, bargain_id, utc_now(), limits))

    return await run_raw_write(request, services, principal, work, status_code=201)


@router.post("/bargains/{bargain_id}/purchase", status_code=201, response_model=StartedTeamOut)
async def buy_at_bargain(
    bargain_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Buy one unit at the price your bargain reached, before its deadline: a team of one, as
    buying alone, whose seat you hold until you pay it (``POST /v1/seats/{id}/payments``).
    403 ``bargain_not_owner``; 409 ``bargain_already_bought`` (with the ``seat_id``),
    ``bargain_closed``, ``sold_out``, ``limit_reached`` or ``deal_not_live``."""
    hold = timedelta(minutes=services.settings.seat_hold_minutes)

    def work(tx: RawTx) -> StartedTeamOut:
        start = service.purchase(tx, principal.user_id, bargain_id, utc_now(), hold=hold)
        return StartedTeamOut(
            team=TeamOut.started(start, principal.display_name), seat=SeatOut.of(start.seat)
        )

    return await run_raw_write(request, services, principal, work, status_code=201)
