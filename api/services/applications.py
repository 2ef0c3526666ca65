"""Applications: pre-check, submission (idempotent), and the actions that move a
registration on (Temporal Updates), including those on the number in service
after activation (the service workflow's Updates, under the same workflow id).

Submission, in order:
1. the body is checked completely (every failing field at once, 422);
2. the (organisation, Idempotency-Key) is looked up: the same request again gets
   the existing application back, a different one 409;
3. the application id is allocated and claimed with the key; a concurrent
   duplicate waits on that row and then finds it (step 2);
4. the workflow is started under an id derived from the application id: the
   commit point of the submission. Nothing the applicant can see exists before
   it, so a crash before it leaves no application behind (a retry with the same
   key starts it), and the start is at most once whatever the retries;
5. the application row is written, by this request or, should it die first, by
   the workflow's apply step (activities/repositories/applications.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from pydantic import ValidationError

from activities.repositories.applications import record_application
from api import textguard
from api.auth import Principal, Role
from api.db import Context
from api.errors import (
    Conflict,
    FieldErrorOut,
    InvalidInput,
    ServiceUnavailable,
    cap_errors,
    field_error,
    missing_idempotency_key,
)
from api.ids import new_id
from api.repositories import applications, documents, idempotency
from api.schemas.applications import (
    DecisionIn,
    Evaluation,
    PaymentIn,
    PaymentOut,
    VerificationIn,
    WithdrawalIn,
)
from api.schemas.registrations import Registration
from api.schemas.service import (
    DetailsChangeIn,
    DetailsChangeOut,
    RealnameConfirmationIn,
    ResumptionIn,
    SuspensionIn,
    TerminationIn,
)
from api.services import personal_data, registrations
from api.services.number_choice import check_number_choice
from api.services.workflow import UpdateRejected, WorkflowGateway
from api.textguard import unsafe_fields
from app.logging_setup import request_id_var
from domain.applicant import ActivationWindow, ApplicationForm, check_application, oversized_lists
from domain.details import check_details_change
from domain.errors import FieldError
from domain.requirements import UnknownRequirementKey, load_catalogue
from domain.resubmission import resubmission_problems
from domain.service_rules import ArrearsStage
from workflows.contracts import (
    UPDATE_DECIDE,
    UPDATE_PAY,
    UPDATE_RESUBMIT,
    UPDATE_VERIFY,
    UPDATE_WITHDRAW,
    Actor,
    ActorRole,
    DecisionRequest,
    PaymentRequest,
    PaymentResult,
    RegistrationInput,
    RegistrationStatus,
    Resubmission,
    Status,
    VerificationRequest,
    WithdrawalRequest,
    registration_workflow_id,
    timings_from_settings,
)
from workflows.service_contracts import (
    UPDATE_CONFIRM_REALNAME,
    UPDATE_OPERATOR_RESUME,
    UPDATE_OPERATOR_SUSPEND,
    UPDATE_REPORT_DETAILS_CHANGE,
    UPDATE_SERVICE_PAY,
    UPDATE_TERMINATE,
    DetailsChangeReport,
    DetailsChangeResult,
    OperatorAction,
    RealnameConfirmation,
    ServicePaymentResult,
    ServiceStatus,
    TerminationRequest,
)

R = TypeVar("R")

CREATE_OPERATION = "create_application"
PAYMENT_OPERATION = "payment"


def correlation_id() -> str:
    return request_id_var.get() or new_id("req")


def request_hash(operation: str, body: Any) -> bytes:
    """SHA-256 of the request as data: key order and whitespace do not matter."""
    # ensure_ascii: a lone surrogate (refused later, field by field) must not break the hash.
    canonical = json.dumps([operation, body], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).digest()


def _actor(principal: Principal, role: ActorRole) -> Actor:
    return Actor(id=principal.actor_id, role=role)


# --------------------------------------------------------------------------
# Checking a form
# --------------------------------------------------------------------------


@dataclass
class Checked:
    data: Any
    errors: list[FieldError]
    document_ids: list[str]

    def form(self) -> ApplicationForm:
        return ApplicationForm.model_validate(self.data)


async def _fill_documents(
    conn: asyncpg.Connection, organisation_id: str, raw: Any
) -> tuple[Any, list[FieldError], set[int], list[str]]:
    """Completes each {document_id} from the stored upload and checks that any
    kind, content_type or sha256 the client sent matches what was uploaded."""
    if not isinstance(raw, list):
        return raw, [], set(), []
    ids = [d["document_id"] for d in raw if isinstance(d, Mapping) and isinstance(d.get("document_id"), str)]
    stored = await documents.get_many(conn, organisation_id, ids) if ids else {}
    errors: list[FieldError] = []
    flagged: set[int] = set()
    filled: list[Any] = []
    for index, item in enumerate(raw):
        doc_id = item.get("document_id") if isinstance(item, Mapping) else None
        row = stored.get(doc_id) if isinstance(doc_id, str) else None
        if row is None:
            if isinstance(doc_id, str):
                flagged.add(index)
                errors.append(
                    FieldError(
                        f"documents[{index}].document_id",
                        "document_not_found",
                        "No document with this id was uploaded by your organisation: upload it with "
                        "POST /v1/documents and use the id it returns.",
                    )
                )
            filled.append(item)
            continue
        if row["replaced_by_id"] is not None:
            flagged.add(index)
            errors.append(
                FieldError(
                    f"documents[{index}].document_id",
                    "document_replaced",
                    f"This document was replaced by {row['replaced_by_id']}: list that one instead.",
                )
            )
        stored_values = {
            "kind": row["kind"],
            "content_type": row["content_type"],
            "sha256": row["sha256"].strip(),
        }
        for name, value in stored_values.items():
            given = item.get(name)
            if given is not None and (not isinstance(given, str) or given.strip().lower() != value):
                flagged.add(index)
                errors.append(
                    FieldError(
                        f"documents[{index}].{name}",
                        "document_mismatch",
                        f"The uploaded document has {name} {value!r}: send that, or leave {name} out.",
                    )
                )
        filled.append({**item, **stored_values})
    return filled, errors, flagged, [d for d in ids if d in stored]


_DOCUMENT_FIELD = re.compile(r"documents\[(\d+)\]")


def _document_index(field: str) -> int | None:
    """The index of the document ``field`` is about (``documents[3].kind``: 3), if any."""
    match = _DOCUMENT_FIELD.match(field)
    return int(match.group(1)) if match else None


def refuse_oversized(body: Any) -> None:
    """422 naming the limit for a list longer than the form allows, before any of
    its items is looked at: a client sending thousands costs no more than one
    sending a few."""
    errors = oversized_lists(body)
    if errors:
        raise InvalidInput(
            "The application has more items than allowed", errors=[e.as_dict() for e in errors]
        )


def activation_window(ctx: Context) -> ActivationWindow:
    return ActivationWindow(datetime.now(UTC), ctx.api.activation_horizon)


async def check_form(
    conn: asyncpg.Connection,
    principal: Principal,
    body: Any,
    *,
    activation: ActivationWindow | None,
    check_number: bool = True,
    own_registration: str | None = None,
) -> Checked:
    """Every reason ``body`` cannot be submitted by ``principal``; never raises for bad input.
    ``activation``: when activation may be asked for (None: not checked, for a replay)."""
    organisation_id = principal.require_organisation()
    if not isinstance(body, Mapping):
        return Checked(body, [FieldError("", "invalid_type", "Send the application as a JSON object.")], [])
    unsafe = unsafe_fields(body)
    if unsafe:
        # Checked first: such a value must not reach a query (the document lookup).
        return Checked(body, [FieldError(f, "invalid_character", textguard.MESSAGE) for f in unsafe], [])
    data = dict(body)
    errors: list[FieldError] = []
    given_org = data.get("organisation_id")
    if given_org is not None and given_org != organisation_id:
        errors.append(
            FieldError(
                "organisation_id",
                "organisation_mismatch",
                "Your API key acts for another organisation: leave organisation_id out.",
            )
        )
    data["organisation_id"] = organisation_id
    data["documents"], doc_errors, flagged, doc_ids = await _fill_documents(
        conn, organisation_id, data.get("documents", [])
    )
    errors += doc_errors
    for error in check_application(data, load_catalogue(), activation=activation):
        # A document already reported as unknown or mismatched would only repeat here.
        if flagged and (index := _document_index(error.field)) is not None and index in flagged:
            continue
        errors.append(error)
    if check_number:
        errors += await check_number_choice(conn, data, errors, own_registration)
    return Checked(data, errors, doc_ids)


def _required_documents(data: Any) -> list[str] | None:
    if not isinstance(data, Mapping):
        return None
    try:
        return load_catalogue().required_documents(
            str(data.get("carrier", "")).strip().lower(),
            str(data.get("company_type", "")).strip().lower(),
            str(data.get("industry", "")).strip().lower(),
            data.get("agent") is not None,
        )
    except UnknownRequirementKey:
        return None


async def evaluate(ctx: Context, principal: Principal, body: Any) -> Evaluation:
    refuse_oversized(body)
    async with ctx.connection() as conn:
        checked = await check_form(conn, principal, body, activation=activation_window(ctx))
    return _evaluation(checked.errors, checked.data)


def _evaluation(errors: list[FieldError], data: Any) -> Evaluation:
    listed, omitted = cap_errors(errors)
    return Evaluation(
        submittable=not errors,
        errors=[FieldErrorOut(**e.as_dict()) for e in listed],
        errors_omitted=omitted,
        required_documents=_required_documents(data),
    )


def _invalid(errors: list[FieldError]) -> InvalidInput:
    return InvalidInput(
        "The application has invalid fields; every one is listed",
        errors=[e.as_dict() for e in errors],
    )


# --------------------------------------------------------------------------
# Submission
# --------------------------------------------------------------------------


# Per operation: why the key is needed, and what one key stands for.
# The routes whose Idempotency-Key an operation reads (api.errors.IDEMPOTENT_ROUTES says why).
_IDEMPOTENT_ROUTE = {
    CREATE_OPERATION: "/v1/applications",
    PAYMENT_OPERATION: "/v1/applications/{application_id}/payments",
}


def _check_idempotency_key(key: str | None, operation: str) -> str:
    if key is None or not key.strip():
        raise missing_idempotency_key(_IDEMPOTENT_ROUTE[operation])
    key = key.strip()
    if len(key) > 255 or not key.isprintable() or not key.isascii():
        raise InvalidInput(
            errors=[field_error("Idempotency-Key", "invalid_format", "Use 1-255 printable ASCII characters.")]
        )
    return key


async def _replay(
    ctx: Context,
    gateway: WorkflowGateway,
    principal: Principal,
    claimed: asyncpg.Record,
    digest: bytes,
    operation: str,
    body: Any,
) -> tuple[Registration, bool]:
    if claimed["operation"] != operation or bytes(claimed["request_hash"]) != digest:
        raise Conflict(
            "This Idempotency-Key was used for a different request; use a new key for a new application",
            code="idempotency_key_reused",
            extra={"application_id": claimed["resource_id"]},
        )
    application_id = claimed["resource_id"]
    async with ctx.connection() as conn:
        row = await applications.get(conn, application_id)
    if row is not None:
        return registrations.from_row(row, staff=False), True
    # The first attempt stopped before its row was written.
    workflow_id = registration_workflow_id(application_id)
    if await gateway.exists(workflow_id):
        # Temporal had accepted the start: the submission was accepted then, and
        # its apply step writes the row; nothing is checked again (a document
        # replaced since must not refuse it).
        status = await gateway.wait_submitted(workflow_id)
        async with ctx.connection() as conn:
            row = await applications.get(conn, application_id)
        if row is None:
            raise ServiceUnavailable(
                "The application is being started; retry shortly", extra={"service": "temporal"}
            )
        return await _respond(ctx, status, row, principal), True
    # Nothing was accepted yet: check everything, the activation time included.
    async with ctx.connection() as conn:
        checked = await check_form(conn, principal, body, activation=activation_window(ctx))
    if checked.errors:
        raise _invalid(checked.errors)
    return await _start(ctx, gateway, principal, application_id, checked), True


async def _start(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, application_id: str, checked: Checked
) -> Registration:
    form = checked.form()
    workflow_id = registration_workflow_id(application_id)
    await gateway.start(
        workflow_id,
        RegistrationInput(
            application_id=application_id,
            form=form,
            submitted_by=_actor(principal, ActorRole.APPLICANT),
            correlation_id=correlation_id(),
            timings=timings_from_settings(ctx.settings, form.carrier),
        ),
    )
    async with ctx.connection() as conn:
        await record_application(
            conn,
            application_id=application_id,
            organisation_id=form.organisation_id,
            workflow_id=workflow_id,
            carrier_code=form.carrier,
            company_name=form.company_name,
            submitted_by=principal.actor_id,
            document_ids=checked.document_ids,
        )
        # Kept for staff to reveal one field with a reason (the console).
        await personal_data.store_submitted_form(
            conn, personal_data.form_cipher(ctx.settings), application_id, form.model_dump(mode="json")
        )
        row = await applications.get(conn, application_id)
    assert row is not None
    status = await gateway.wait_submitted(workflow_id)
    return await _respond(ctx, status, row, principal)


async def submit(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, body: Any, idempotency_key: str | None
) -> tuple[Registration, bool]:
    """The application, and whether it already existed (a replay)."""
    key = _check_idempotency_key(idempotency_key, CREATE_OPERATION)
    if not isinstance(body, Mapping):
        # Never the replay of an accepted submission, whatever its key: refused as what it is.
        raise _invalid([FieldError("", "invalid_type", "Send the application as a JSON object.")])
    refuse_oversized(body)
    organisation_id = principal.require_organisation()
    digest = request_hash(CREATE_OPERATION, body)
    async with ctx.connection() as conn:
        claimed = await idempotency.get(conn, organisation_id, key)
        if claimed is None:
            checked = await check_form(conn, principal, body, activation=activation_window(ctx))
            if checked.errors:
                # A concurrent duplicate may have claimed the key and held the
                # number meanwhile: then this is a replay, not a refusal.
                claimed = await idempotency.get(conn, organisation_id, key)
                if claimed is None:
                    raise _invalid(checked.errors)
        if claimed is None:
            application_id = new_id("app")
            won = await idempotency.claim(
                conn,
                organisation_id=organisation_id,
                key=key,
                operation=CREATE_OPERATION,
                request_hash=digest,
                resource_id=application_id,
            )
            if not won:
                claimed = await idempotency.get(conn, organisation_id, key)
                assert claimed is not None
    if claimed is not None:
        return await _replay(ctx, gateway, principal, claimed, digest, CREATE_OPERATION, body)
    return await _start(ctx, gateway, principal, application_id, checked), False


# --------------------------------------------------------------------------
# Updates
# --------------------------------------------------------------------------


async def _respond(
    ctx: Context, status: RegistrationStatus | None, row: asyncpg.Record, principal: Principal
) -> Registration:
    """The registration after an action, the same shape GET returns.

    The read model is written in the same transaction as the event, so once the
    workflow has answered it is at least as new as the answer, and it knows more
    (the fee tier before approval, the masked summary). The workflow's answer is
    used only if the read model is behind (it cannot be, unless a step failed).
    """
    async with ctx.connection() as conn:
        fresh = await applications.get(conn, row["id"]) or row
    staff = principal.role is not Role.APPLICANT
    if status is not None and status.last_event_version > fresh["last_event_version"]:
        return registrations.from_status(status, fresh, staff=staff)
    return registrations.from_row(fresh, staff=staff)


async def _current(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, row: asyncpg.Record
) -> dict[str, Any]:
    """The registration's state for a 409: the live one if the workflow answers, else the read model."""
    status = await gateway.status(row["workflow_id"], in_service=row["service_state"] is not None)
    return (await _respond(ctx, status, row, principal)).model_dump(mode="json")


async def _run_update(
    ctx: Context,
    gateway: WorkflowGateway,
    principal: Principal,
    row: asyncpg.Record,
    name: str,
    arg: Any,
    result_type: type[R],
) -> R:
    """Runs an Update of the registration, or from ACTIVE on of its service
    (workflows/service.py, same workflow id); a refusal becomes the API error,
    with the registration's current state attached."""
    try:
        return await gateway.update(row["workflow_id"], name, arg, result_type)
    except UpdateRejected as rejected:
        current = await _current(ctx, gateway, principal, row)
        raise rejected.to_api_error(current, decided_by=_DECIDED_BY.get(name, frozenset())) from None


# Final statuses that a competing call of the same Update leads to directly.
_DECIDED_BY = {
    UPDATE_DECIDE: frozenset({"rejected"}),
    UPDATE_VERIFY: frozenset({"verification_failed"}),
}


async def _act(
    ctx: Context,
    gateway: WorkflowGateway,
    principal: Principal,
    row: asyncpg.Record,
    name: str,
    arg: Any,
    result_type: type[RegistrationStatus] = RegistrationStatus,
) -> Registration:
    """An Update whose answer is the status (``ServiceStatus`` for the service's)."""
    status = await _run_update(ctx, gateway, principal, row, name, arg, result_type)
    return await _respond(ctx, status, row, principal)


async def _pay_service(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, row: asyncpg.Record, arg: PaymentRequest
) -> PaymentOut:
    """A payment after activation credits the service's prepaid balance."""
    result = await _run_update(ctx, gateway, principal, row, UPDATE_SERVICE_PAY, arg, ServicePaymentResult)
    status = result.status
    return PaymentOut(
        payment_id=result.payment_id,
        accepted=result.accepted,
        paid_fen=status.paid_fen + status.total_paid_fen,
        required_fen=max(0, -result.balance_fen),  # what clears the arrears
        paid_in_full=status.arrears_stage is ArrearsStage.NONE,
        balance_fen=result.balance_fen,
        registration=await _respond(ctx, status, row, principal),
    )


async def _load(ctx: Context, principal: Principal, application_id: str) -> asyncpg.Record:
    async with ctx.connection() as conn:
        return await registrations.get_application_row(conn, principal, application_id)


async def _resubmission_errors(
    conn: asyncpg.Connection, ctx: Context, row: asyncpg.Record, checked: Checked
) -> list[FieldError]:
    """What the resubmission ``checked`` would be refused for beyond the form's
    own checks: another carrier, or a field or document kind the change request
    named left as it was in the form last accepted."""
    previous = await personal_data.current_form(conn, personal_data.form_cipher(ctx.settings), row["id"])
    try:
        new: Mapping[str, Any] = checked.form().model_dump(mode="json")
    except ValidationError:
        new = checked.data if isinstance(checked.data, Mapping) else {}
    change = (row["summary"] or {}).get("change_request") or {}
    reported = {e.field for e in checked.errors}
    return [
        e
        for e in resubmission_problems(
            previous,
            new,
            carrier=row["carrier_code"],
            organisation_id=row["organisation_id"],
            fields=change.get("fields", []),
            documents=change.get("documents", []),
        )
        if e.field not in reported
    ]


def _not_waiting_for_resubmission(row: asyncpg.Record, principal: Principal) -> Conflict:
    current = registrations.from_row(row, staff=principal.role is not Role.APPLICANT)
    return Conflict(
        f"Not waiting for a resubmission (status {current.status.value}): only an application with a "
        "request for changes open can be resubmitted",
        code="wrong_stage",
        extra={"registration": current.model_dump(mode="json")},
    )


async def evaluate_resubmission(
    ctx: Context, principal: Principal, application_id: str, body: Any
) -> Evaluation:
    """A resubmission of ``application_id`` checked as it would be, without
    resubmitting: the number the application holds counts as its own."""
    refuse_oversized(body)
    row = await _load(ctx, principal, application_id)
    if row["status"] != Status.CHANGES_REQUESTED.value:
        raise _not_waiting_for_resubmission(row, principal)
    async with ctx.connection() as conn:
        checked = await check_form(
            conn, principal, body, activation=activation_window(ctx), own_registration=application_id
        )
        errors = checked.errors + await _resubmission_errors(conn, ctx, row, checked)
    return _evaluation(errors, checked.data)


async def resubmit(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, application_id: str, body: Any
) -> Registration:
    refuse_oversized(body)
    row = await _load(ctx, principal, application_id)
    async with ctx.connection() as conn:
        checked = await check_form(
            conn, principal, body, activation=activation_window(ctx), own_registration=application_id
        )
        errors = list(checked.errors)
        if row["status"] == Status.CHANGES_REQUESTED.value:
            errors += await _resubmission_errors(conn, ctx, row, checked)
        if errors:
            raise _invalid(errors)
        await documents.attach(conn, application_id, checked.document_ids)
    arg = Resubmission(
        form=checked.form(), actor=_actor(principal, ActorRole.APPLICANT), correlation_id=correlation_id()
    )
    # The resubmit step stores the form as the current one, with its event.
    return await _act(ctx, gateway, principal, row, UPDATE_RESUBMIT, arg)


async def withdraw(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, application_id: str, body: WithdrawalIn
) -> Registration:
    row = await _load(ctx, principal, application_id)
    arg = WithdrawalRequest(
        actor=_actor(principal, ActorRole.APPLICANT), reason=body.reason, correlation_id=correlation_id()
    )
    return await _act(ctx, gateway, principal, row, UPDATE_WITHDRAW, arg)


async def decide(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, application_id: str, body: DecisionIn
) -> Registration:
    row = await _load(ctx, principal, application_id)
    arg = DecisionRequest(
        decision=body.decision,
        operator=_actor(principal, ActorRole.OPERATOR),
        reason_code=body.reason_code,
        reason=body.reason,
        fields=body.fields,
        documents=body.documents,
        correlation_id=correlation_id(),
    )
    return await _act(ctx, gateway, principal, row, UPDATE_DECIDE, arg)


async def verify(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, application_id: str, body: VerificationIn
) -> Registration:
    row = await _load(ctx, principal, application_id)
    arg = VerificationRequest(
        outcome=body.outcome,
        operator=_actor(principal, ActorRole.OPERATOR),
        reason=body.reason,
        correlation_id=correlation_id(),
    )
    return await _act(ctx, gateway, principal, row, UPDATE_VERIFY, arg)


async def pay(
    ctx: Context,
    gateway: WorkflowGateway,
    principal: Principal,
    application_id: str,
    body: PaymentIn,
    idempotency_key: str | None,
) -> PaymentOut:
    """Records a prepayment. The Idempotency-Key becomes the payment id, which the
    workflow counts once however often the call is retried."""
    key = _check_idempotency_key(idempotency_key, PAYMENT_OPERATION)
    organisation_id = principal.require_organisation()
    row = await _load(ctx, principal, application_id)
    digest = request_hash(PAYMENT_OPERATION, [application_id, body.model_dump()])
    async with ctx.connection() as conn:
        won = await idempotency.claim(
            conn,
            organisation_id=organisation_id,
            key=key,
            operation=PAYMENT_OPERATION,
            request_hash=digest,
            resource_id=application_id,
        )
        if not won:
            claimed = await idempotency.get(conn, organisation_id, key)
            if claimed is not None and (
                claimed["operation"] != PAYMENT_OPERATION or bytes(claimed["request_hash"]) != digest
            ):
                raise Conflict(
                    "This Idempotency-Key was used for a different request; use a new key for a new payment",
                    code="idempotency_key_reused",
                )
    payment_id = "pay_" + hashlib.sha256(f"{organisation_id}\x00{key}".encode()).hexdigest()[:32]
    arg = PaymentRequest(
        payment_id=payment_id,
        amount_fen=body.amount_fen,
        actor=_actor(principal, ActorRole.APPLICANT),
        correlation_id=correlation_id(),
    )
    if row["service_state"] is not None:
        return await _pay_service(ctx, gateway, principal, row, arg)
    result = await _run_update(ctx, gateway, principal, row, UPDATE_PAY, arg, PaymentResult)
    return PaymentOut(
        payment_id=result.payment_id,
        accepted=result.accepted,
        paid_fen=result.paid_fen,
        required_fen=result.required_fen,
        paid_in_full=result.paid_in_full,
        registration=await _respond(ctx, result.status, row, principal),
    )


# --------------------------------------------------------------------------
# The number in service (after ACTIVE): the service workflow's Updates
# --------------------------------------------------------------------------


def _acting_role(principal: Principal) -> ActorRole:
    """How a caller allowed on a holder's action acts: the holder, or staff for them."""
    return ActorRole.APPLICANT if principal.role is Role.APPLICANT else ActorRole.OPERATOR


async def suspend(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, application_id: str, body: SuspensionIn
) -> Registration:
    row = await _load(ctx, principal, application_id)
    arg = OperatorAction(
        operator=_actor(principal, ActorRole.OPERATOR), reason=body.reason, correlation_id=correlation_id()
    )
    return await _act(ctx, gateway, principal, row, UPDATE_OPERATOR_SUSPEND, arg, ServiceStatus)


async def resume(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, application_id: str, body: ResumptionIn
) -> Registration:
    row = await _load(ctx, principal, application_id)
    arg = OperatorAction(
        operator=_actor(principal, ActorRole.OPERATOR), reason=body.reason, correlation_id=correlation_id()
    )
    return await _act(ctx, gateway, principal, row, UPDATE_OPERATOR_RESUME, arg, ServiceStatus)


async def terminate(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, application_id: str, body: TerminationIn
) -> Registration:
    row = await _load(ctx, principal, application_id)
    arg = TerminationRequest(
        actor=_actor(principal, _acting_role(principal)), reason=body.reason, correlation_id=correlation_id()
    )
    return await _act(ctx, gateway, principal, row, UPDATE_TERMINATE, arg, ServiceStatus)


async def confirm_realname(
    ctx: Context,
    gateway: WorkflowGateway,
    principal: Principal,
    application_id: str,
    body: RealnameConfirmationIn,
) -> Registration:
    row = await _load(ctx, principal, application_id)
    arg = RealnameConfirmation(
        operator=_actor(principal, ActorRole.OPERATOR), reason=body.reason, correlation_id=correlation_id()
    )
    return await _act(ctx, gateway, principal, row, UPDATE_CONFIRM_REALNAME, arg, ServiceStatus)


async def report_details_change(
    ctx: Context, gateway: WorkflowGateway, principal: Principal, application_id: str, body: DetailsChangeIn
) -> DetailsChangeOut:
    row = await _load(ctx, principal, application_id)
    unsafe = unsafe_fields(body.values, "values")
    if unsafe:
        raise InvalidInput(errors=[field_error(f, "invalid_character", textguard.MESSAGE) for f in unsafe])
    cipher = personal_data.form_cipher(ctx.settings)
    async with ctx.connection() as conn:
        current = await personal_data.current_form(conn, cipher, application_id)
    checked = check_details_change(body.fields, body.values, current, load_catalogue())
    if checked.errors:
        raise InvalidInput(
            "The report has invalid fields or values; every one is listed",
            errors=[e.as_dict() for e in checked.errors],
        )
    form_seq = None
    if checked.form is not None:
        # The holder's details as they now stand, kept like a resubmitted form:
        # marked accepted once the service has taken the report.
        async with ctx.connection() as conn:
            form_seq = await personal_data.store_form(
                conn, cipher, application_id, checked.form, accepted=False
            )
    arg = DetailsChangeReport(
        actor=_actor(principal, _acting_role(principal)),
        changed_at=body.changed_at,
        fields=body.fields,
        values=checked.masked(),
        correlation_id=correlation_id(),
    )
    result = await _run_update(
        ctx, gateway, principal, row, UPDATE_REPORT_DETAILS_CHANGE, arg, DetailsChangeResult
    )
    if form_seq is not None:
        async with ctx.connection() as conn:
            await personal_data.accept_form(conn, application_id, form_seq)
    return DetailsChangeOut(
        due_by=result.due_by,
        late=result.late,
        registration=await _respond(ctx, result.status, row, principal),
    )
