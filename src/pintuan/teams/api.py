"""HTTP endpoints of teams and seats: start, join, buy alone, look, cancel, list my orders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from fastapi import Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from pintuan.accounts.dependencies import Caller, CurrentPrincipal, require_caller
from pintuan.domain.roles import Principal
from pintuan.errors import InvalidInput
from pintuan.idempotency.http import HEADER, run_raw_write_in_one, run_write
from pintuan.kit.http import DEFAULT_PAGE, CursorQuery, LimitQuery
from pintuan.kit.listing import page_of
from pintuan.kit.metrics import JOIN_REFUSALS
from pintuan.kit.pagination import Page, decode_cursor
from pintuan.kit.rawsql import RawTx, raw_tx
from pintuan.kit.routing import PlainRoute, Router
from pintuan.kit.time import utc_now
from pintuan.services import Services, ServicesDep, services_of
from pintuan.teams import admission, lottery, reads, service
from pintuan.teams.schemas import (
    JoinedOut,
    MySeatOut,
    SeatOut,
    StartedTeamOut,
    TeamList,
    TeamOut,
)

router = Router(prefix="/v1", tags=["teams"], route_class=PlainRoute)


@router.post("/deals/{deal_id}/teams", status_code=201, response_model=StartedTeamOut)
async def start_team(deal_id: str, request: Request) -> Response:
    """Start a team on a live deal; you hold its leader seat until you pay."""
    services, caller = await _hot_write(request)
    hold = timedelta(minutes=services.settings.seat_hold_minutes)

    def work(tx: RawTx, principal: Principal) -> StartedTeamOut:
        start = service.start_team(tx, principal.user_id, deal_id, utc_now(), hold=hold)
        return StartedTeamOut(
            team=TeamOut.started(start, principal.display_name), seat=SeatOut.of(start.seat)
        )

    return await _admitted(request, services, caller, work, deal_id=deal_id)


@router.post("/deals/{deal_id}/solo", status_code=201, response_model=StartedTeamOut)
async def buy_alone(deal_id: str, request: Request) -> Response:
    """Buy alone at the list price, on a deal with ``allow_solo``: a team of one (``solo``)
    that nobody else may join; you hold its seat until you pay, and paying completes it
    (409 ``solo_not_allowed`` on a deal sold in teams only)."""
    services, caller = await _hot_write(request)
    hold = timedelta(minutes=services.settings.seat_hold_minutes)

    def work(tx: RawTx, principal: Principal) -> StartedTeamOut:
        start = service.buy_alone(tx, principal.user_id, deal_id, utc_now(), hold=hold)
        return StartedTeamOut(
            team=TeamOut.started(start, principal.display_name), seat=SeatOut.of(start.seat)
        )

    return await _admitted(request, services, caller, work, deal_id=deal_id, solo=True)


@router.post("/teams/{team_id}/seats", status_code=201, response_model=JoinedOut)
async def join_team(team_id: str, request: Request) -> Response:
    """Join a forming team; you hold a seat until you pay."""
    services, caller = await _hot_write(request)
    hold = timedelta(minutes=services.settings.seat_hold_minutes)

    def work(tx: RawTx, principal: Principal) -> JoinedOut:
        seat = service.join_team(tx, principal.user_id, team_id, utc_now(), hold=hold)
        return JoinedOut(seat=SeatOut.of(seat))

    return await _admitted(request, services, caller, work, team_id=team_id)


async def _hot_write(request: Request) -> tuple[Services, Caller]:
    """The services and the caller of a start or a join, found by plain calls: the framework's
    dependency resolution cost these endpoints about a tenth of their CPU, for three
    dependencies that need nothing from it (the caller is ``require_caller``'s, as before)."""
    services = services_of(request)
    return services, await require_caller(request, services)


async def _admitted(
    request: Request,
    services: Services,
    caller: Caller,
    work: Callable[[RawTx, Principal], BaseModel],
    *,
    deal_id: str | None = None,
    team_id: str | None = None,
    solo: bool = False,
) -> Response:
    """Run a start or join in the database behind hot-deal admission (``teams.admission``):
    with Redis configured, a request Redis refuses never takes the deal's row, and a
    reservation the database did not turn into a seat is given back."""
    ticket = await admission.admit(services, utc_now(), team_id=team_id, deal_id=deal_id, solo=solo)
    refusal = ticket.refused()
    if refusal is not None:
        JOIN_REFUSALS.labels(code=refusal.code).inc()
        if request.headers.get(HEADER) is None:
            # Who asks comes first: an unknown token hears that, not the deal's news.
            await caller.identify(services)
            raise refusal

        # With a key, the refusal is stored as its answer (or an earlier answer replayed).
        def refuse(_tx: RawTx, _principal: Principal) -> BaseModel:
            raise refusal

        return await run_raw_write_in_one(request, services, caller, refuse, status_code=201)
    try:
        response = await run_raw_write_in_one(request, services, caller, work, status_code=201)
    except BaseException:
        await admission.give_back(services, ticket)
        raise
    if response.status_code == 201 and "Idempotent-Replayed" not in response.headers:
        await admission.confirm(services, ticket)
    else:
        await admission.give_back(services, ticket)
    return response


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


class LotteryDrawOut(BaseModel):
    team_id: str
    seat_ids: list[str]
    winners: list[str]


class LotteryRecordOut(BaseModel):
    """A lottery deal's public record: anyone may recompute each team's winners once the seed
    is revealed (``sha256(seed + ":" + team_id + ":" + seat_id)``, the lowest win; and
    ``sha256(seed)`` must be the commitment published when the deal went live)."""

    deal_id: str
    winners: int
    commitment: str | None
    seed: str | None = Field(description="Revealed once the deal ended with no team forming")
    revealed_at: datetime | None
    draws: list[LotteryDrawOut]


@router.get("/deals/{deal_id}/lottery", response_model=LotteryRecordOut)
async def read_lottery(deal_id: str, services: ServicesDep) -> LotteryRecordOut:
    """A lottery deal's commitment, its seed once revealed, and every successful team's seats
    and winners. 404 ``lottery_not_found`` for a deal without a lottery."""
    record = await services.db.run_raw(lottery.lottery_record, deal_id, write=False)
    return LotteryRecordOut(
        deal_id=record.deal_id,
        winners=record.winners,
        commitment=record.commitment,
        seed=record.seed,
        revealed_at=record.revealed_at,
        draws=[
            LotteryDrawOut(team_id=d.team_id, seat_ids=d.seat_ids, winners=d.winners)
            for d in record.draws
        ],
    )
