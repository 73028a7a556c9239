"""HTTP endpoints of teams and seats: start, join, buy alone, look, cancel, list my orders."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import CurrentPrincipal
from pintuan.errors import InvalidInput
from pintuan.idempotency.http import run_raw_write, run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.rawsql import RawTx, raw_tx
from pintuan.kit.time import utc_now
from pintuan.services import ServicesDep
from pintuan.teams import reads, service
from pintuan.teams.schemas import (
    JoinedOut,
    MySeatOut,
    SeatOut,
    StartedTeamOut,
    TeamList,
    TeamOut,
)

router = APIRouter(prefix="/v1", tags=["teams"])


@router.post("/deals/{deal_id}/teams", status_code=201, response_model=StartedTeamOut)
async def start_team(
    deal_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Start a team on a live deal; you hold its leader seat until you pay."""
    hold = timedelta(minutes=services.settings.seat_hold_minutes)

    def work(tx: RawTx) -> StartedTeamOut:
        start = service.start_team(tx, principal.user_id, deal_id, utc_now(), hold=hold)
        return StartedTeamOut(
            team=TeamOut.started(start, principal.display_name), seat=SeatOut.of(start.seat)
        )

    return await run_raw_write(request, services, principal, work, status_code=201)


@router.post("/deals/{deal_id}/solo", status_code=201, response_model=StartedTeamOut)
async def buy_alone(
    deal_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Buy alone at the list price, on a deal with ``allow_solo``: a team of one (``solo``)
    that nobody else may join; you hold its seat until you pay, and paying completes it
    (409 ``solo_not_allowed`` on a deal sold in teams only)."""
    hold = timedelta(minutes=services.settings.seat_hold_minutes)

    def work(tx: RawTx) -> StartedTeamOut:
        start = service.buy_alone(tx, principal.user_id, deal_id, utc_now(), hold=hold)
        return StartedTeamOut(
            team=TeamOut.started(start, principal.display_name), seat=SeatOut.of(start.seat)
        )

    return await run_raw_write(request, services, principal, work, status_code=201)


@router.post("/teams/{team_id}/seats", status_code=201, response_model=JoinedOut)
async def join_team(
    team_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Join a forming team; you hold a seat until you pay."""
    hold = timedelta(minutes=services.settings.seat_hold_minutes)

    def work(tx: RawTx) -> JoinedOut:
        seat = service.join_team(tx, principal.user_id, team_id, utc_now(), hold=hold)
        return JoinedOut(seat=SeatOut.of(seat))

    return await run_raw_write(request, services, principal, work, status_code=201)


@router.get("/teams/{team_id}", response_model=TeamOut)
async def read_team(team_id: str, services: ServicesDep) -> TeamOut:
    """A team: status, seats taken and paid, members by display name."""
    return TeamOut.of(await services.db.read(reads.get_team, team_id))


@router.get("/deals/{deal_id}/teams", response_model=TeamList)
async def list_teams(
    deal_id: str, services: ServicesDep, joinable: bool = True, limit: LimitQuery = DEFAULT_PAGE
) -> TeamList:
    """Teams a newcomer can join, the nearest to full first."""
    if not joinable:
        raise InvalidInput(
            "Only joinable=true is supported: ended teams are not listed publicly.",
            code="validation_error",
            extra={"errors": [{"field": "joinable", "message": "must be true"}]},
        )
    now = utc_now()
    teams = await services.db.read(lambda s: reads.joinable_teams(s, deal_id, now, limit))
    return TeamList(data=[TeamOut.of(t) for t in teams])


@router.post("/seats/{seat_id}/cancel", response_model=SeatOut)
async def cancel_seat(
    seat_id: str, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Give up your seat of a forming team: a held seat is released, a paid one refunded."""

    def work(session: Session) -> SeatOut:
        service.cancel_seat(raw_tx(session), principal.user_id, seat_id, utc_now())
        return SeatOut.of(reads.owned_seat(session, principal.user_id, seat_id))

    return await run_write(request, services, principal, work)


@router.get("/me/seats", response_model=Page[MySeatOut])
async def my_seats(
    principal: CurrentPrincipal,
    services: ServicesDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = DEFAULT_PAGE,
) -> Page[MySeatOut]:
    """Your orders, newest first, with their team's status."""
    cursor_id = decode_cursor(cursor) if cursor else None
    rows = await services.db.read(lambda s: reads.my_seats(s, principal.user_id, cursor_id, limit))
    return page_of(rows, limit, MySeatOut.mine)
