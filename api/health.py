from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api import errors
from api.readiness import WorkflowHealth
from api.services import calendar
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


async def _calendar(request: Request) -> dict[str, object]:
    """Which year's holiday schedule is missing (docs/calendar.md): reported, never
    a reason to be unready, since deadlines go on, provisionally."""
    try:
        async with request.app.state.pool.acquire(timeout=2) as conn:
            found = await asyncio.wait_for(calendar.status(conn, request.app.state.ctx.calendar), 3)
    except Exception as exc:  # noqa: BLE001 - the database check says what is wrong
        return {"status": "unknown", "error": type(exc).__name__}
    if not found.missing:
        return {"status": "ok", "version": found.version}
    return {
        "status": "year missing",
        "version": found.version,
        "missing_years": [m.year for m in found.missing],
        "detail": found.detail,
    }


@router.get(
    "/readyz",
    summary="PostgreSQL and Temporal are reachable, and a worker polls the task queue",
    description="`checks` says which of PostgreSQL, Temporal and the workers (pollers of the "
    "registrations' task queue, from Temporal's DescribeTaskQueue) is ready; `workflows` gives the "
    "pollers seen. Requests that need a workflow are refused with 503 while `temporal` or `workers` "
    "is not ok. `calendar` says which year's official holiday schedule is missing (this year, or next "
    "year within 60 days of it; as GET /v1/calendar/status): it never makes the service unready.",
    responses={503: {"description": "A dependency is unreachable or no worker polls; the body names it"}},
)
async def readyz(request: Request) -> JSONResponse:
    health: WorkflowHealth = request.app.state.workflow_health
    if health.checked_at is None:
        await health.check()  # the first probe comes before the monitor's first look
    pg = await _check_postgres(request)
    down = health.unavailable()
    checks = {
        "postgres": "ok" if pg is None else "unavailable",
        "temporal": "ok" if health.temporal_ok else "unavailable",
        "workers": "unknown" if not health.temporal_ok else "none polling" if down == "workers" else "ok",
    }
    body: dict[str, object] = {"checks": checks, "workflows": health.report()}
    if pg is None:
        body["calendar"] = await _calendar(request)
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        body |= {"status": "unavailable", "detail": f"not ready: {', '.join(failing)}"}
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(errors.RETRY_AFTER_SECONDS)})
    return JSONResponse({"status": "ready", **body})
