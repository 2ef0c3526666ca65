"""One application: its form beside its documents, the requirements checklist,
problems, number and fees, the full timeline, and the decision, verification
and reveal actions, each through the API's own services."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.errors import ApiError, Conflict, InvalidInput, ServiceUnavailable
from api.permissions import Action
from api.routers.applications import ApplicationId
from api.routers.documents import DocumentId
from api.schemas.applications import DecisionIn, VerificationIn
from api.schemas.registrations import Registration
from api.services import applications, documents, personal_data, registrations
from domain.requirements import UnknownRequirementKey, load_catalogue
from web import labels, views
from web import messages as say
from web.http import Staff, available_gateway, console_settings, context, require
from web.i18n import N_
from web.lifecycle import lifecycle_of_row
from web.repositories import console as repo

router = APIRouter()

# The form's fields an operator can ask to change, as the API names them.
FORM_FIELDS = (
    "company_name",
    "credit_code",
    "company_type",
    "industry",
    "legal_representative.name",
    "legal_representative.id_number",
    "legal_representative.phone",
    "agent.name",
    "agent.id_number",
    "agent.phone",
    "contact_address",
    "destination_numbers",
    "package",
    "requested_number",
    "activation_at",
)
FIELD_LABELS = labels.FIELDS
DOCUMENT_LABELS = labels.DOCUMENTS
# What an action's line says once it is done (the page shows it after reloading).
DONE = {
    "decision": N_("Decision recorded."),
    "verification": N_("Verification recorded."),
}


def waits_for_staff(waiting_for: object) -> bool:
    """Whether the application waits for staff (a decision or a verification):
    only then is it in the queue, and can be claimed."""
    return str(waiting_for) in repo.STAFF_WORK


def _form_value(form: dict[str, Any] | None, path: str) -> Any:
    value: Any = form
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _checklist(form: dict[str, Any] | None, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each document the carrier, company type and industry require, ticked when
    the application lists one of that kind."""
    source = form or summary
    listed = {d.get("kind") for d in source.get("documents") or [] if isinstance(d, dict)}
    try:
        required = load_catalogue().required_documents(
            str(source.get("carrier") or summary.get("carrier") or ""),
            str(source.get("company_type") or ""),
            str(source.get("industry") or ""),
            source.get("agent") is not None,
        )
    except UnknownRequirementKey:
        return []
    return [{"kind": kind, "present": kind in listed} for kind in required]


async def _load(request: Request, staff: Staff, application_id: str) -> dict[str, Any]:
    principal = staff.principal
    ctx = context(request)
    async with ctx.connection() as conn:
        row = await registrations.get_application_row(conn, principal, application_id)
        registration = registrations.from_row(row, staff=True)
        timeline = await registrations.get_timeline(conn, principal, application_id)
        docs = (
            (await documents.for_application(conn, application_id)).items
            if staff.can(Action.READ_DOCUMENT)
            else []
        )
        form = await personal_data.masked_form(conn, personal_data.form_cipher(ctx.settings), application_id)
        claim = await repo.claim_of(conn, application_id)
        actors = await repo.actor_names(conn, {e.actor for e in timeline.entries})
    summary = registration.summary or {}
    if form is not None:
        form.setdefault("carrier", registration.carrier)
    lapse = console_settings(request).claim_seconds
    return {
        "app": registration,
        "row": row,
        "lifecycle": lifecycle_of_row(row),
        "timeline": timeline.entries,
        "documents": [d for d in docs if d.replaced_by is None],
        "replaced_documents": [d for d in docs if d.replaced_by is not None],
        "form": form,
        "form_fields": [(f, FIELD_LABELS[f], _form_value(form, f)) for f in FORM_FIELDS] if form else [],
        "field_value_kinds": labels.FIELD_VALUE_KINDS,
        "summary": summary,
        "checklist": _checklist(form, {**summary, "carrier": registration.carrier}),
        "claim": claim if claim is not None and claim["age_seconds"] < lapse else None,
        "claimable": waits_for_staff(registration.waiting_for),
        "problems": say.field_lines(request, [p.model_dump() for p in registration.problems]),
        "actors": actors,
        "done": DONE.get(request.query_params.get("done", "")),
        "revealable": personal_data.REVEALABLE,
        "verification_events": [
            e for e in timeline.entries if e.event_type in ("VerificationPassed", "VerificationFailed")
        ],
        **_choices(),
    }


def _choices() -> dict[str, Any]:
    return {
        "field_labels": FIELD_LABELS,
        "form_field_names": FORM_FIELDS,
        "document_kinds": list(load_catalogue().document_kinds),
        "document_labels": DOCUMENT_LABELS,
        "rejection_labels": labels.REJECTIONS,
    }


@router.get("/applications/{application_id}")
async def application_page(
    request: Request, staff: Annotated[Staff, require(Action.READ_APPLICATION)], application_id: ApplicationId
) -> Response:
    data = await _load(request, staff, application_id)
    return views.render(request, "application.html", data)


@router.get("/applications/{application_id}/claim-panel")
async def claim_panel(
    request: Request, staff: Annotated[Staff, require(Action.READ_APPLICATION)], application_id: ApplicationId
) -> Response:
    async with context(request).connection() as conn:
        row = await registrations.get_application_row(conn, staff.principal, application_id)
        claim = await repo.claim_of(conn, application_id)
    live = (
        claim
        if claim is not None and claim["age_seconds"] < console_settings(request).claim_seconds
        else None
    )
    return views.render(
        request,
        "_claim_panel.html",
        {"app_id": application_id, "claim": live, "claimable": waits_for_staff(row["waiting_for"])},
    )


async def _outcome(
    request: Request,
    application_id: str,
    panel: str,
    *,
    done: bool = False,
    error: ApiError | None = None,
    messages: list[str] | None = None,
) -> Response:
    """What an action's form shows beside itself: refused (with the state the
    registration is in now, which the page's status line takes too), invalid
    input, or not possible now (503 with Retry-After: Temporal or the workers are
    away). The form keeps what was typed. Done: the page again, with its new
    state throughout and a line saying what was done."""
    page = views.console_url(request, f"/applications/{application_id}", done=panel if done else None)
    if done:
        if request.headers.get("HX-Request"):
            return Response(status_code=200, headers={"HX-Redirect": page})
        return RedirectResponse(page, status_code=303)
    current: Registration | None = None
    lost_race = False
    unavailable = error if isinstance(error, ServiceUnavailable) else None
    if error is not None:
        if isinstance(error.extra.get("registration"), dict):
            current = Registration.model_validate(error.extra["registration"])
        lost_race = isinstance(error, Conflict) and error.code in ("already_decided", "wrong_stage")
        messages = say.lines(request, error)
    if not request.headers.get("HX-Request"):
        if unavailable is not None:
            raise unavailable  # the error page, 503 with Retry-After: not a redirect hiding it
        return RedirectResponse(page, status_code=303)
    return views.render(
        request,
        "_action_result.html",
        {
            "app_id": application_id,
            "current": current,
            "lost_race": lost_race,
            "messages": messages or [],
            "oob_status": True,
        },
        status_code=_status(unavailable, lost_race),
        headers=unavailable.headers if unavailable else None,
    )


def _status(unavailable: ServiceUnavailable | None, lost_race: bool) -> int:
    if unavailable is not None:
        return unavailable.status
    return 409 if lost_race else 422


@router.post("/applications/{application_id}/decision")
async def decide(
    request: Request,
    staff: Annotated[Staff, require(Action.DECIDE)],
    application_id: ApplicationId,
    decision: Annotated[str, Form(max_length=32)],
    reason_code: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
    fields: Annotated[list[str] | None, Form(max_length=50)] = None,
    document_kinds: Annotated[list[str] | None, Form(max_length=20)] = None,
) -> Response:
    try:
        body = DecisionIn(
            decision=decision,  # type: ignore[arg-type]  # validated by the model
            reason_code=reason_code or None,  # type: ignore[arg-type]
            reason=reason.strip() or None,
            fields=(fields or []) if decision == "request_changes" else [],
            documents=(document_kinds or []) if decision == "request_changes" else [],
        )
    except ValidationError as exc:
        return await _outcome(
            request, application_id, "decision", messages=say.validation_lines(request, exc)
        )
    try:
        await applications.decide(
            context(request), available_gateway(request), staff.principal, application_id, body
        )
    except (Conflict, InvalidInput, ServiceUnavailable) as exc:
        return await _outcome(request, application_id, "decision", error=exc)
    async with context(request).connection() as conn:
        await repo.unclaim(conn, application_id, None)  # decided: nobody works it any more
    return await _outcome(request, application_id, "decision", done=True)


@router.post("/applications/{application_id}/verification")
async def verify(
    request: Request,
    staff: Annotated[Staff, require(Action.VERIFY)],
    application_id: ApplicationId,
    outcome: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        body = VerificationIn(outcome=outcome, reason=reason)  # type: ignore[arg-type]
    except ValidationError as exc:
        return await _outcome(
            request, application_id, "verification", messages=say.validation_lines(request, exc)
        )
    try:
        await applications.verify(
            context(request), available_gateway(request), staff.principal, application_id, body
        )
    except (Conflict, InvalidInput, ServiceUnavailable) as exc:
        return await _outcome(request, application_id, "verification", error=exc)
    return await _outcome(request, application_id, "verification", done=True)


@router.post("/applications/{application_id}/reveal")
async def reveal(
    request: Request,
    staff: Annotated[Staff, require(Action.REVEAL_PERSONAL_DATA)],
    application_id: ApplicationId,
    field: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    ctx = context(request)
    try:
        async with ctx.connection() as conn:
            await registrations.get_application_row(conn, staff.principal, application_id)
            value = await personal_data.reveal(
                conn, personal_data.form_cipher(ctx.settings), staff.principal, application_id, field, reason
            )
            timeline = await registrations.get_timeline(conn, staff.principal, application_id)
            actors = await repo.actor_names(conn, {e.actor for e in timeline.entries})
    except InvalidInput as exc:
        return views.render(
            request,
            "_reveal.html",
            {"app_id": application_id, "field": field, "errors": say.lines(request, exc)[1:]},
            status_code=422,
        )
    return views.render(
        request,
        "_reveal.html",
        {
            "app_id": application_id,
            "field": field,
            "value": value,
            "entries": timeline.entries,
            "actors": actors,
        },
    )


@router.get("/documents/{document_id}/content")
async def document_content(
    request: Request, staff: Annotated[Staff, require(Action.READ_DOCUMENT)], document_id: DocumentId
) -> Response:
    """The file, shown in the page (inline), never offered as a download."""
    ctx = context(request)
    async with ctx.connection() as conn:
        doc, content = await documents.content(
            conn, request.app.state.parent.state.document_cipher, staff.principal, document_id
        )
    return Response(
        content,
        media_type=doc.content_type,
        headers={
            "Content-Disposition": "inline",
            "Cache-Control": "private, no-store",
            # Nothing in a document may run or load anything, whatever it contains.
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; frame-ancestors 'self'",
        },
    )
