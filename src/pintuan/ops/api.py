"""Liveness and readiness probes."""

from __future__ import annotations

import anyio.to_thread
from fastapi.responses import JSONResponse, Response

from pintuan.errors import AppError
from pintuan.kit.rawsql import raw_tx
from pintuan.kit.routing import PlainRoute, Router
from pintuan.kit.time import utc_now
from pintuan.ops.lag import check_lag, work_lag
from pintuan.services import ServicesDep

router = Router(tags=["operations"], route_class=PlainRoute)
_UP = b'{"status":"ok"}'


@router.get("/healthz", response_model=dict[str, str])
async def healthz() -> Response:
    """The process is up and serving."""
    # Written as it is: the probe is the cheapest request there is, and a balancer asks often.
    return Response(_UP, media_type="application/json")


@router.get("/readyz", response_model=None)
async def readyz(services: ServicesDep) -> dict[str, object] | JSONResponse:
    """The database answers and the worker keeps up (no due work older than
    ``PINTUAN_READY_MAX_LAG_SECONDS``); a load balancer sends traffic only while this is 200.
    With a read replica, ``replica`` says how it is doing and where stale-tolerant reads go."""
    try:
        lag = await anyio.to_thread.run_sync(
            lambda: services.db.run_sync(lambda s: work_lag(raw_tx(s), utc_now()), write=False)
        )
    except Exception as exc:
        error = AppError(
            f"The database is not reachable: {type(exc).__name__}",
            code="database_unavailable",
            status=503,
            title="Not ready",
        )
        return JSONResponse(
            error.problem("/readyz"), status_code=503, media_type="application/problem+json"
        )
    check_lag(lag, services.settings.ready_max_lag_seconds)
    ready: dict[str, object] = {
        "status": "ready",
        "database": services.db.dialect,
        "lag_seconds": lag,
    }
    if services.db.replica is not None:
        # A replica that lags or is down leaves this process ready: its reads go to the primary.
        ready["replica"] = services.db.replica.health().as_json()
    return ready
