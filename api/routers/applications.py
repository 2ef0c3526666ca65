"""Applications: what applicants do, and reading one application; once the number
is in service, terminating it and reporting changed details (staff may too)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Response
from starlette.convertors import Convertor, register_url_convertor

from api.auth import Principal, allow
from api.permissions import Action
from api.routers._common import Ctx, Cursor, Gateway, JsonBody, Limit, documented
from api.schemas.applications import APPLICATION_EXAMPLE, Evaluation, PaymentIn, PaymentOut, WithdrawalIn
from api.schemas.common import Page
from api.schemas.documents import DocumentList
from api.schemas.registrations import Registration, Timeline
from api.schemas.service import DetailsChangeIn, DetailsChangeOut, TerminationIn
from api.services import applications, documents, registrations
from workflows.contracts import Stage, Status

router = APIRouter(prefix="/v1/applications", tags=["applications"])

APPLICATION_ID = r"app_[a-z0-9]{20,32}"


class ApplicationIdConvertor(Convertor[str]):
    """Matches only application ids, so that /v1/applications/evaluate is never
    read as an application id: GET there is 405 (POST only), not a 422 about an id.
    Routes spell it {application_id:application_id}; OpenAPI shows {application_id}."""

    regex = APPLICATION_ID

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("application_id", ApplicationIdConvertor())

ApplicationId = Annotated[str, Path(pattern=f"^{APPLICATION_ID}$", examples=["app_01jd8k3m5n7p9q2r4s6t8v"])]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        # Printable ASCII, without spaces at either end.
        pattern=r"^[!-~]([ -~]*[!-~])?$",
        description="A unique value per intended request (e.g. a UUID). The same key with the same body "
        "returns the original result; with a different body, 409.",
        examples=["6c8b0b9e-2f4e-4f6a-9d57-0f3c1c7d2a10"],
    ),
]

# The body is taken as raw JSON and checked by domain.applicant.check_application,
# which reports format and policy failures together; FastAPI's model validation
# would stop at format errors. The documented schema is ApplicationRequest.
_APPLICATION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ApplicationRequest"},
                "example": APPLICATION_EXAMPLE,
            }
        },
    }
}


@router.post(
    "/evaluate",
    response_model=Evaluation,
    summary="Check an application without submitting it",
    description="Runs every check a submission runs (formats, catalogue, documents uploaded and matching, "
    "the requested number still available) and returns every failing field with a reason. Nothing is "
    "stored and no number is held.",
    openapi_extra=_APPLICATION_BODY,
    **documented(415),
)
async def evaluate_application(
    ctx: Ctx, principal: Annotated[Principal, allow(Action.SUBMIT_APPLICATION)], body: JsonBody
) -> Evaluation:
    return await applications.evaluate(ctx, principal, body)


@router.post(
    "",
    status_code=201,
    response_model=Registration,
    summary="Submit an application",
    description="Creates the application and starts its registration; the chosen number is held at once. "
    "Answers 201 with the state after that first step. Idempotent by `Idempotency-Key`: a retry with the "
    "same body returns the same application (header `Idempotent-Replayed: true`) and never starts a "
    "second registration; the same key with another body is 409 `idempotency_key_reused`. "
    "Invalid input is 422 listing every failing field.",
    openapi_extra=_APPLICATION_BODY,
    **documented(409, 415),
)
async def submit_application(
    response: Response,
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(Action.SUBMIT_APPLICATION)],
    body: JsonBody,
    idempotency_key: IdempotencyKey,
) -> Registration:
    registration, replayed = await applications.submit(ctx, gateway, principal, body, idempotency_key)
    response.headers["Location"] = f"/v1/applications/{registration.id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return registration


@router.get(
    "",
    response_model=Page[Registration],
    summary="List my organisation's applications",
    description="Newest first, keyset-paginated.",
    **documented(400),
)
async def list_applications(
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.LIST_OWN_APPLICATIONS)],
    stage: Stage | None = None,
    status: Status | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Registration]:
    async with ctx.connection() as conn:
        return await registrations.list_own(
            conn,
            principal,
            stage=stage.value if stage else None,
            status=status.value if status else None,
            cursor=cursor,
            limit=limit,
        )


@router.get(
    "/{application_id:application_id}",
    response_model=Registration,
    summary="One application",
    description="Applicants see their own organisation's applications only (another's is 404).",
    **documented(404),
)
async def get_application(
    ctx: Ctx, principal: Annotated[Principal, allow(Action.READ_APPLICATION)], application_id: ApplicationId
) -> Registration:
    async with ctx.connection() as conn:
        return await registrations.get_registration(conn, principal, application_id)


@router.get(
    "/{application_id:application_id}/timeline",
    response_model=Timeline,
    summary="The registration's timeline",
    description="Every step, who took it (for applicants: which role), when, why, and the state it led to; "
    "rebuilt from the event log.",
    **documented(404),
)
async def get_timeline(
    ctx: Ctx, principal: Annotated[Principal, allow(Action.READ_APPLICATION)], application_id: ApplicationId
) -> Timeline:
    async with ctx.connection() as conn:
        return await registrations.get_timeline(conn, principal, application_id)


@router.get(
    "/{application_id:application_id}/documents",
    response_model=DocumentList,
    summary="Documents an application has referenced",
    description="Every document listed at submission or in a resubmission, oldest first.",
    **documented(404),
)
async def get_application_documents(
    ctx: Ctx, principal: Annotated[Principal, allow(Action.READ_DOCUMENT)], application_id: ApplicationId
) -> DocumentList:
    async with ctx.connection() as conn:
        await registrations.get_application_row(conn, principal, application_id)
        return await documents.for_application(conn, application_id)


@router.post(
    "/{application_id:application_id}/resubmit",
    response_model=Registration,
    summary="Resubmit after a request for changes",
    description="The whole corrected application (same shape as for submission). Each field and document "
    "kind the change request named must change (422 lists each one still unchanged); the carrier cannot. "
    "A `requested_number` other than the one held moves the hold to it in the same step (the new "
    "number's tier and fees are shown), or is 422 if it cannot be had, the old hold kept. Check first "
    "with `POST /v1/applications/{application_id}/resubmission/evaluate`. 409 with the current state if "
    "no change request is open.",
    openapi_extra=_APPLICATION_BODY,
    **documented(404, 409, 415),
)
async def resubmit_application(
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(Action.SUBMIT_APPLICATION)],
    application_id: ApplicationId,
    body: JsonBody,
) -> Registration:
    return await applications.resubmit(ctx, gateway, principal, application_id, body)


@router.post(
    "/{application_id:application_id}/resubmission/evaluate",
    response_model=Evaluation,
    summary="Check a resubmission without resubmitting it",
    description="Runs every check a resubmission of this application runs and returns every failing "
    "field with a reason: the form's own checks (as `POST /v1/applications/evaluate`, except that the "
    "number this application holds counts as its own, not as taken), the carrier staying the same, and "
    "each field and document kind the change request named being changed. A `requested_number` other "
    "than the one held is checked as available; resubmitting moves the hold to it, with its tier and "
    "fees. Nothing is stored. 409 with the current state when no request for changes is open.",
    openapi_extra=_APPLICATION_BODY,
    **documented(404, 409, 415),
)
async def evaluate_resubmission(
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.SUBMIT_APPLICATION)],
    application_id: ApplicationId,
    body: JsonBody,
) -> Evaluation:
    return await applications.evaluate_resubmission(ctx, principal, application_id, body)


@router.post(
    "/{application_id:application_id}/payments",
    response_model=PaymentOut,
    summary="Pay the first prepayment, or top up the number's balance",
    description="Before activation, records a payment towards the first prepayment (409 with the current "
    "state when none is due). After activation, credits the prepaid balance (`balance_fen`; "
    "`required_fen` is what clears arrears). Idempotent by `Idempotency-Key` (required): a retry is "
    "counted once (`accepted: false`).",
    **documented(404, 409),
)
async def pay(
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(Action.PAY)],
    application_id: ApplicationId,
    body: PaymentIn,
    idempotency_key: IdempotencyKey,
) -> PaymentOut:
    return await applications.pay(ctx, gateway, principal, application_id, body, idempotency_key)


@router.post(
    "/{application_id:application_id}/withdraw",
    response_model=Registration,
    summary="Withdraw the application",
    description="Possible at any step before activation; the number is released. 409 with the current "
    "state afterwards.",
    **documented(404, 409),
)
async def withdraw(
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(Action.WITHDRAW)],
    application_id: ApplicationId,
    body: Annotated[WithdrawalIn | None, Body()] = None,
) -> Registration:
    return await applications.withdraw(ctx, gateway, principal, application_id, body or WithdrawalIn())


@router.post(
    "/{application_id:application_id}/termination",
    response_model=Registration,
    summary="Terminate the number (销号)",
    description="The holder gives the number up (an operator may file it for them), with an optional "
    "`reason`: the running month's charge is billed and the number goes to quarantine before it can be "
    "allocated again. Returns the new state (`service_state` quarantined), or 409 (`wrong_stage`) with "
    "the current state in `registration` when the number is not in service (before activation: withdraw "
    "instead) or was already terminated or reclaimed.",
    **documented(404, 409),
)
async def terminate(
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(Action.TERMINATE)],
    application_id: ApplicationId,
    body: Annotated[TerminationIn | None, Body()] = None,
) -> Registration:
    return await applications.terminate(ctx, gateway, principal, application_id, body or TerminationIn())


@router.post(
    "/{application_id:application_id}/details-changes",
    response_model=DetailsChangeOut,
    summary="Report a change of registered details",
    description="A change of the holder's registered details (address, contact, ...) must be reported "
    "within 10 Chinese working days of `changed_at`. Name the changed `fields` as the application names "
    "them and give each one's new value in `values`, checked as in an application (422 naming the field "
    "or value at fault). The new values become the holder's current details (the registration's summary, "
    "masked; the form an operator reveals from). Returns the deadline (`due_by`), whether this report is "
    "`late` (recorded as a compliance finding; service goes on) and the registration; the timeline shows "
    "the fields, due date and lateness. 409 (`wrong_stage`) with the current state in `registration` "
    "when the number is not in service.",
    **documented(404, 409),
)
async def report_details_change(
    ctx: Ctx,
    gateway: Gateway,
    principal: Annotated[Principal, allow(Action.REPORT_DETAILS_CHANGE)],
    application_id: ApplicationId,
    body: DetailsChangeIn,
) -> DetailsChangeOut:
    return await applications.report_details_change(ctx, gateway, principal, application_id, body)
