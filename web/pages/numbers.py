"""Numbers in service: search, and a number's page with its balance, arrears,
next deadline, and the operator's actions on it (suspend, resume, terminate,
confirm real-name, report a change of details)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from api.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceUnavailable
from api.permissions import Action
from api.routers.applications import ApplicationId
from api.schemas.registrations import Registration, TimelineEntry
from api.schemas.service import (
    DetailsChangeIn,
    RealnameConfirmationIn,
    ResumptionIn,
    SuspensionIn,
    TerminationIn,
)
from api.services import applications, registrations
from api.services.registrations import display_number
from domain.details import HOLDER_DETAILS
from domain.service_rules import IN_SERVICE, ChangeKind, ServiceState
from web import messages as say
from web import views
from web.http import Staff, available_gateway, context, gateway, require
from web.i18n import N_
from web.lifecycle import lifecycle_of_row
from web.pages.applications import FIELD_LABELS
from web.repositories import console as repo
from workflows.service_contracts import ServiceStatus

router = APIRouter()

SEARCH_LIMIT = 200

# The details the console's form offers, one input each (a person's parts one by one).
DETAIL_FIELDS = tuple(f for f in HOLDER_DETAILS if f not in ("legal_representative", "agent"))
LISTS = frozenset({"destination_numbers"})


@router.get("/numbers")
async def numbers_page(
    request: Request,
    staff: Annotated[Staff, require(Action.VIEW_DASHBOARD)],
    number: Annotated[str | None, Query(max_length=13)] = None,
    organisation: Annotated[str | None, Query(max_length=128)] = None,
    state: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    digits = "".join(c for c in number or "" if c.isdigit())
    chosen = state if state in {s.value for s in ServiceState} else None
    async with context(request).connection() as conn:
        rows = await repo.numbers_in_service(
            conn,
            number=digits or None,
            organisation=(organisation or "").strip() or None,
            state=chosen,
            limit=SEARCH_LIMIT,
        )
    items = [
        {**row, "lifecycle": lifecycle_of_row(row), "number_display": display_number(row["number"])}
        for row in rows
    ]
    return views.render(
        request,
        "numbers.html",
        {
            "rows": items,
            "number": number or "",
            "organisation": organisation or "",
            "state": chosen or "",
            "states": [s.value for s in ServiceState],
        },
    )


def _offered(staff: Staff, row: Mapping[str, Any], held: bool) -> dict[str, bool]:
    """The actions to offer: those the role may take and the number's state allows
    (the service's own checks, domain.service_rules: any while it is in service;
    suspend only without an operator's hold, resume only with one)."""
    in_service = row["service_state"] in {s.value for s in IN_SERVICE}
    return {
        "suspension": in_service and not held and staff.can(Action.SUSPEND_RESUME),
        "resumption": in_service and held and staff.can(Action.SUSPEND_RESUME),
        "realname-confirmation": in_service and staff.can(Action.CONFIRM_REALNAME),
        "details-changes": in_service and staff.can(Action.REPORT_DETAILS_CHANGE),
        "termination": in_service and staff.can(Action.TERMINATE),
    }


def _held_by_an_operator(entries: list[TimelineEntry]) -> bool:
    """From the timeline, when the live service cannot say: the last operator
    suspension not lifted since."""
    for entry in reversed(entries):
        if entry.event_type in (ChangeKind.OPERATOR_SUSPENDED, ChangeKind.OPERATOR_RESUMED):
            return entry.event_type == ChangeKind.OPERATOR_SUSPENDED
    return False


async def _number_context(request: Request, staff: Staff, application_id: str) -> dict[str, Any]:
    async with context(request).connection() as conn:
        row = await registrations.get_application_row(conn, staff.principal, application_id)
        timeline = await registrations.get_timeline(conn, staff.principal, application_id)
        actors = await repo.actor_names(conn, {e.actor for e in timeline.entries})
    # The live service answers with what the read model does not keep: the kind of
    # the next deadline, the next bill, an operator's hold. None if it cannot answer now.
    status = (
        await gateway(request).status(row["workflow_id"], in_service=True) if row["service_state"] else None
    )
    live = status if isinstance(status, ServiceStatus) else None
    held = live.operator_hold is not None if live else _held_by_an_operator(timeline.entries)
    return {
        "app": registrations.from_row(row, staff=True),
        "row": row,
        "lifecycle": lifecycle_of_row(row),
        "live": live,
        "timeline": timeline.entries,
        "actors": actors,
        "offered": _offered(staff, row, held),
        "done": DONE.get(request.query_params.get("done", "")),
        "field_labels": FIELD_LABELS,
        "detail_fields": DETAIL_FIELDS,
    }


@router.get("/numbers/{application_id}")
async def number_page(
    request: Request, staff: Annotated[Staff, require(Action.VIEW_DASHBOARD)], application_id: ApplicationId
) -> Response:
    return views.render(request, "number.html", await _number_context(request, staff, application_id))


# The operator's actions on a number in service: the console's path, the action
# the authorisation table must allow, the API's body model and service function.
_REASONED: dict[str, tuple[Action, type[BaseModel], Callable[..., Awaitable[Any]]]] = {
    "suspension": (Action.SUSPEND_RESUME, SuspensionIn, applications.suspend),
    "resumption": (Action.SUSPEND_RESUME, ResumptionIn, applications.resume),
    "realname-confirmation": (Action.CONFIRM_REALNAME, RealnameConfirmationIn, applications.confirm_realname),
    "termination": (Action.TERMINATE, TerminationIn, applications.terminate),
}


# What the page says once an action is done (it shows it after reloading).
DONE = {
    "suspension": N_("Suspended."),
    "resumption": N_("Resumed."),
    "realname-confirmation": N_("Real-name registration confirmed."),
    "termination": N_("Terminated: the number is in quarantine."),
    "details-changes": N_("Change of details reported."),
}


async def _service_action(
    request: Request,
    staff: Staff,
    application_id: str,
    operation: str,
    action: Action,
    build: Callable[[], BaseModel],
    run: Any,
) -> Response:
    """Done: the page again (every figure on it moved), saying what was done.
    Refused or invalid: the reasons beside the forms, which keep what was typed."""
    if not staff.can(action):
        raise Forbidden(f"The {staff.session.role} role may not do this")
    lines: list[str] = []
    current: Registration | None = None
    unavailable: ServiceUnavailable | None = None
    try:
        await run(context(request), available_gateway(request), staff.principal, application_id, build())
    except ValidationError as exc:
        lines = say.validation_lines(request, exc)
    except (Conflict, InvalidInput, ServiceUnavailable) as exc:
        # ServiceUnavailable: Temporal or the workers are away, or a number just
        # activated is handing over to its service for a moment; the message
        # says to retry, and so does the 503's Retry-After.
        lines = say.lines(request, exc)
        if isinstance(exc.extra.get("registration"), dict):
            current = Registration.model_validate(exc.extra["registration"])
        unavailable = exc if isinstance(exc, ServiceUnavailable) else None
    else:
        page = views.console_url(request, f"/numbers/{application_id}", done=operation)
        if request.headers.get("HX-Request"):
            return Response(status_code=200, headers={"HX-Redirect": page})
        return RedirectResponse(page, status_code=303)
    if not request.headers.get("HX-Request"):
        if unavailable is not None:
            raise unavailable  # the error page, 503 with Retry-After: not a redirect hiding it
        return RedirectResponse(views.console_url(request, f"/numbers/{application_id}"), status_code=303)
    return views.render(
        request,
        "_action_result.html",
        {"app_id": application_id, "current": current, "lost_race": False, "messages": lines},
        status_code=unavailable.status if unavailable else 409 if current is not None else 422,
        headers=unavailable.headers if unavailable else None,
    )


@router.post("/numbers/{application_id}/details-changes")
async def report_details_change(
    request: Request,
    staff: Annotated[Staff, require(Action.REPORT_DETAILS_CHANGE)],
    application_id: ApplicationId,
    changed_at: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Every detail filled in is reported changed, with what was filled in."""
    submitted = await request.form()
    values: dict[str, Any] = {}
    for name in DETAIL_FIELDS:
        raw = submitted.get(f"value.{name}")
        text = raw.strip() if isinstance(raw, str) else ""
        if text:
            # Destination numbers: one per line, or separated by commas.
            values[name] = (
                [n.strip() for n in re.split(r"[,\n，]", text) if n.strip()] if name in LISTS else text
            )

    def build() -> BaseModel:
        # A datetime-local input has no offset: it is China time.
        when: Any = changed_at
        try:
            parsed = datetime.fromisoformat(changed_at)
            when = parsed if parsed.tzinfo else parsed.replace(tzinfo=views.CHINA)
        except ValueError:
            pass
        return DetailsChangeIn(changed_at=when, fields=list(values), values=values)

    return await _service_action(
        request,
        staff,
        application_id,
        "details-changes",
        Action.REPORT_DETAILS_CHANGE,
        build,
        applications.report_details_change,
    )


@router.post("/numbers/{application_id}/{operation}")
async def reasoned_action(
    request: Request,
    staff: Annotated[Staff, require(Action.USE_CONSOLE)],
    application_id: ApplicationId,
    operation: Annotated[str, Path(max_length=32)],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Suspend, resume, confirm real-name registration, terminate: each with a reason."""
    if operation not in _REASONED:
        raise NotFound(f"No action {operation!r}")
    action, model, run = _REASONED[operation]
    return await _service_action(
        request, staff, application_id, operation, action, lambda: model(reason=reason), run
    )
