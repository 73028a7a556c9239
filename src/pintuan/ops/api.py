"""Liveness and readiness probes."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pintuan.errors import AppError
from pintuan.services import ServicesDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(services: ServicesDep) -> dict[str, str] | JSONResponse:
    """The database answers; a load balancer sends traffic only while this is 200."""
    try:
        await anyio.to_thread.run_sync(services.db.ping)
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
    return {"status": "ready", "database": services.db.dialect}
