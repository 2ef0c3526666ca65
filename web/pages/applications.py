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
from web import views
from web.http import Staff, available_gateway, console_settings, context, require
from web.lifecycle import lifecycle_of_row
from web.repositories import console as repo
from workflows.contracts import RejectionReason

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
FIELD_LABELS = {
    "company_name": views.N_("Company name"),
    "credit_code": views.N_("Unified Social Credit Code"),
    "company_type": views.N_("Company type"),
    "industry": views.N_("Industry"),
    "legal_representative.name": views.N_("Legal representative: name"),
    "legal_representative.id_number": views.N_("Legal representative: ID number"),
    "legal_representative.phone": views.N_("Legal representative: phone"),
    "agent.name": views.N_("Agent: name"),
    "agent.id_number": views.N_("Agent: ID number"),
    "agent.phone": views.N_("Agent: phone"),
    "contact_address": views.N_("Contact address"),
    "destination_numbers": views.N_("Destination numbers"),
    "package": views.N_("Package"),
    "requested_number": views.N_("Requested number"),
    "activation_at": views.N_("Activation time"),
}
REJECTION_LABELS = {
    RejectionReason.DOCUMENTS_INVALID: views.N_("Documents invalid"),
    RejectionReason.IDENTITY_MISMATCH: views.N_("Identity does not match"),
    RejectionReason.CREDIT_CODE_INVALID: views.N_("Credit code invalid"),
    RejectionReason.INDUSTRY_LICENCE_MISSING: views.N_("Industry licence missing"),
    RejectionReason.PROHIBITED_USE: views.N_("Prohibited use"),
    RejectionReason.DUPLICATE_APPLICATION: views.N_("Duplicate application"),
    RejectionReason.OTHER: views.N_("Other"),
}
DOCUMENT_LABELS = {
    "business_licence": views.N_("Business licence"),
    "legal_rep_id": views.N_("Legal representative's ID card"),
    "agent_id": views.N_("Agent's ID card"),
    "authorisation_letter": views.N_("Authorisation letter"),
    "application_form": views.N_("Application form with company seal"),
    "industry_licence": views.N_("Industry licence"),
}


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
        "summary": summary,
        "checklist": _checklist(form, {**summary, "carrier": registration.carrier}),
        "claim": claim if claim is not None and claim["age_seconds"] < lapse else None,
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
        "rejection_labels": REJECTION_LABELS,
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
        claim = await repo.claim_of(conn, application_id)
    live = (
        claim
        if claim is not None and claim["age_seconds"] < console_settings(request).claim_seconds
        else None
    )
    return views.render(request, "_claim_panel.html", {"app_id": application_id, "claim": live})


def _validation_errors(exc: ValidationError) -> list[str]:
    return [str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors()]


async def _outcome(
    request: Request,
    staff: Staff,
    application_id: str,
    panel: str,
    *,
    done: Registration | None = None,
    error: ApiError | None = None,
    messages: list[str] | None = None,
) -> Response:
    """The action panel after an action: done, refused (with the state the
    registration is in now), invalid input, or not possible now (503 with
    Retry-After: Temporal or the workers are away)."""
    current: dict[str, Any] | None = None
    lost_race = False
    unavailable = error if isinstance(error, ServiceUnavailable) else None
    if error is not None:
        current = error.extra.get("registration")
        lost_race = isinstance(error, Conflict) and error.code in ("already_decided", "wrong_stage")
        messages = [error.detail, *[e["message"] for e in error.errors or []]]
    if not request.headers.get("HX-Request"):
        if unavailable is not None:
            raise unavailable  # the error page, 503 with Retry-After: not a redirect hiding it
        return RedirectResponse(
            views.console_url(request, f"/applications/{application_id}"), status_code=303
        )
    return views.render(
        request,
        "_action_result.html",
        {
            "app_id": application_id,
            "panel": panel,
            "done": done,
            "current": current,
            "lost_race": lost_race,
            "messages": messages or [],
        },
        status_code=_status(done, unavailable, lost_race),
        headers=unavailable.headers if unavailable else None,
    )


def _status(done: Registration | None, unavailable: ServiceUnavailable | None, lost_race: bool) -> int:
    if done is not None:
        return 200
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
        return await _outcome(request, staff, application_id, "decision", messages=_validation_errors(exc))
    try:
        done = await applications.decide(
            context(request), available_gateway(request), staff.principal, application_id, body
        )
    except (Conflict, InvalidInput, ServiceUnavailable) as exc:
        return await _outcome(request, staff, application_id, "decision", error=exc)
    async with context(request).connection() as conn:
        await repo.unclaim(conn, application_id, None)  # decided: nobody works it any more
    return await _outcome(request, staff, application_id, "decision", done=done)


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
            request, staff, application_id, "verification", messages=_validation_errors(exc)
        )
    try:
        done = await applications.verify(
            context(request), available_gateway(request), staff.principal, application_id, body
        )
    except (Conflict, InvalidInput, ServiceUnavailable) as exc:
        return await _outcome(request, staff, application_id, "verification", error=exc)
    return await _outcome(request, staff, application_id, "verification", done=done)


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
    except InvalidInput as exc:
        return views.render(
            request,
            "_reveal.html",
            {"app_id": application_id, "field": field, "errors": [e["message"] for e in exc.errors or []]},
            status_code=422,
        )
    return views.render(request, "_reveal.html", {"app_id": application_id, "field": field, "value": value})


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
