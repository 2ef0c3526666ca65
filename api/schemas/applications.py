"""Request and response bodies of the application routes (other than Registration)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from api.errors import MAX_LISTED_ERRORS, FieldErrorOut
from api.schemas.common import FieldName, OptionalReason, Reason
from api.schemas.registrations import Registration
from api.textguard import SafeStr
from domain.applicant import FIELD_PATHS, MAX_DOCUMENTS
from domain.requirements import load_catalogue
from workflows.contracts import Decision, RejectionReason, VerificationOutcome

APPLICATION_EXAMPLE: dict[str, Any] = {
    "company_name": "深圳市示例科技有限公司",
    "credit_code": "91440300MA5F1B2C3F",
    "company_type": "enterprise",
    "industry": "general",
    "carrier": "china_unicom",
    "legal_representative": {"name": "张伟", "id_number": "110101198001011232", "phone": "13800138000"},
    "agent": None,
    "contact_address": "广东省深圳市南山区科技园南区 1 号",
    "destination_numbers": ["13800138000", "010-12345678"],
    "documents": [
        {"document_id": "doc_01jd8k3m5n7p9q2r4s6t8v"},
        {"document_id": "doc_01jd8k3m5n7p9q2r4s6t8w"},
        {"document_id": "doc_01jd8k3m5n7p9q2r4s6t8x"},
    ],
    "package": "standard",
    "requested_number": "400-012-3456",
    "number_criteria": None,
    "activation_at": "2026-12-20T09:00:00+08:00",
}


class Evaluation(BaseModel):
    """The result of checking an application without submitting it."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "submittable": False,
                "errors": [
                    {
                        "field": "documents",
                        "code": "missing_document",
                        "message": "A legal_rep_id document is required (...): upload it and list it.",
                    },
                    {
                        "field": "requested_number",
                        "code": "number_unavailable",
                        "message": "400-012-3456 is held by another application: search for another number.",
                    },
                ],
                "required_documents": ["business_licence", "legal_rep_id", "application_form"],
            }
        }
    )

    submittable: bool
    errors: list[FieldErrorOut] = Field(description=f"At most {MAX_LISTED_ERRORS}, see errors_omitted.")
    errors_omitted: int = Field(
        default=0, description=f"How many more errors there were than the {MAX_LISTED_ERRORS} listed."
    )
    required_documents: list[str] | None = Field(
        description="What the carrier, company type and industry require (null if they are not valid)."
    )


# One whole example per kind of decision, for the operation's request body: as
# examples of the schema they were merged field by field into a rejection
# without its reason_code, which the server refuses.
DECISION_EXAMPLES: dict[str, dict[str, Any]] = {
    "approve": {"summary": "Approve", "value": {"decision": "approve"}},
    "reject": {
        "summary": "Reject, with a coded reason",
        "value": {
            "decision": "reject",
            "reason_code": "documents_invalid",
            "reason": "Licence scan is illegible",
        },
    },
    "request_changes": {
        "summary": "Ask for changes",
        "value": {
            "decision": "request_changes",
            "fields": ["contact_address"],
            "documents": ["business_licence"],
            "reason": "The licence has expired; upload the current one.",
        },
    },
}


def _application_field(name: str) -> str:
    if name not in FIELD_PATHS:
        raise PydanticCustomError(
            "unknown_field",
            "Not a field of the application: name one of {allowed}.",
            {"allowed": ", ".join(FIELD_PATHS)},
        )
    return name


def _document_kind(kind: str) -> str:
    kinds = load_catalogue().document_kinds
    if kind.strip().lower() not in kinds:
        raise PydanticCustomError(
            "unknown_document_kind",
            "Not a document kind: use one of {allowed}.",
            {"allowed": ", ".join(kinds)},
        )
    return kind.strip().lower()


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    # validate_default: the checks below must run when the field is left out,
    # so that a missing reason_code is reported as reason_code, not as the body.
    reason_code: RejectionReason | None = Field(
        default=None, validate_default=True, description="Required to reject; only with reject."
    )
    reason: OptionalReason | None = None
    documents: list[
        Annotated[SafeStr, Field(min_length=1, max_length=64), AfterValidator(_document_kind)]
    ] = Field(
        default_factory=list,
        max_length=MAX_DOCUMENTS,
        validate_default=True,
        description="Document kinds to replace (the catalogue's); only with request_changes. The "
        "resubmission must list a new document of each.",
    )
    fields: list[Annotated[FieldName, AfterValidator(_application_field)]] = Field(
        default_factory=list,
        max_length=50,
        validate_default=True,
        description="Fields to change, named as in the application (`contact_address`, "
        "`legal_representative.phone`); only with request_changes (a rejection is final: say why in "
        "reason). The resubmission must change each one.",
    )

    @field_validator("reason_code")
    @classmethod
    def _reason_code_with_reject(cls, value: RejectionReason | None, info: ValidationInfo) -> Any:
        decision = info.data.get("decision")
        if decision is Decision.REJECT and value is None:
            raise PydanticCustomError(
                "missing",
                "A rejection needs a reason_code: one of {allowed}.",
                {"allowed": ", ".join(r.value for r in RejectionReason)},
            )
        if decision is not None and decision is not Decision.REJECT and value is not None:
            raise PydanticCustomError(
                "not_allowed",
                "reason_code goes with reject only: leave it out to {decision}.",
                {"decision": decision.value},
            )
        return value

    @field_validator("fields", "documents")
    @classmethod
    def _changes_with_request_changes(cls, value: list[str], info: ValidationInfo) -> Any:
        decision = info.data.get("decision")
        if decision is not None and decision is not Decision.REQUEST_CHANGES and value:
            raise PydanticCustomError(
                "not_allowed",
                "{field} name what to change in a change request (request_changes); to {decision}, "
                "leave them out and say why in reason.",
                {"field": info.field_name, "decision": decision.value},
            )
        # documents is declared before fields, so it has been read by now (and,
        # if it was refused, that refusal says enough).
        if (
            decision is Decision.REQUEST_CHANGES
            and info.field_name == "fields"
            and "documents" in info.data
            and not (value or info.data["documents"])
        ):
            raise PydanticCustomError(
                "missing", "A change request names the fields or the documents to change (or both)."
            )
        return value


class VerificationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"outcome": "pass", "reason": "Identity confirmed against the carrier's real-name system"},
                {"outcome": "fail", "reason": "The legal representative's ID does not match"},
            ]
        },
    )

    outcome: VerificationOutcome
    reason: Reason


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"amount_fen": 180000}})

    amount_fen: Annotated[int, Field(strict=True, gt=0, le=10**12, description="Amount paid, CNY fen.")]


class WithdrawalIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"reason": "Chose another number"}}
    )

    reason: OptionalReason | None = None


class PaymentOut(BaseModel):
    payment_id: str
    accepted: bool = Field(description="False when this payment was already recorded (a retry).")
    paid_fen: int = Field(description="All paid so far: the prepayment, then top-ups after activation.")
    required_fen: int = Field(
        description="Before activation: the first prepayment due. After: what clears the arrears (0 if none)."
    )
    paid_in_full: bool = Field(description="Before activation: prepayment complete. After: not in arrears.")
    balance_fen: int | None = Field(
        default=None,
        description="After activation: the prepaid balance once this payment is credited.",
    )
    registration: Registration
