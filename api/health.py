from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.db import ping

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check_postgres(request: Request) -> str | None:
    try:
        await asyncio.wait_for(ping(request.app.state.pool), 3)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}"


async def _check_temporal(request: Request) -> str | None:
    try:
        client = request.app.state.temporal
        await asyncio.wait_for(client.service_client.check_health(), 3)
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}"


@router.get(
    "/readyz",
    summary="PostgreSQL and Temporal are reachable",
    responses={503: {"description": "A dependency is unreachable; the body names it"}},
)
async def readyz(request: Request) -> JSONResponse:
    pg, tmp = await asyncio.gather(_check_postgres(request), _check_temporal(request))
    checks = {
        "postgres": "ok" if pg is None else "unavailable",
        "temporal": "ok" if tmp is None else "unavailable",
    }
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        return JSONResponse(
            {
                "status": "unavailable",
                "checks": checks,
                "detail": f"not reachable: {', '.join(failing)}",
            },
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ready", "checks": checks})
