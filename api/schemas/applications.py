"""Request and response bodies of the application routes (other than Registration)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.errors import MAX_LISTED_ERRORS, FieldErrorOut
from api.schemas.common import FieldName, OptionalReason, Reason
from api.schemas.registrations import Registration
from api.textguard import SafeStr
from domain.applicant import MAX_DOCUMENTS
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


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    reason_code: RejectionReason | None = Field(default=None, description="Required to reject.")
    reason: OptionalReason | None = None
    fields: list[FieldName] = Field(
        default_factory=list, max_length=50, description="Fields to change (request_changes)."
    )
    documents: list[Annotated[SafeStr, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=MAX_DOCUMENTS,
        description="Document kinds to replace (request_changes).",
    )

    @model_validator(mode="after")
    def _complete(self) -> DecisionIn:
        if self.decision is Decision.REJECT and self.reason_code is None:
            raise ValueError("a rejection needs a reason_code")
        if self.decision is Decision.REQUEST_CHANGES and not (self.fields or self.documents):
            raise ValueError("a change request must name the fields or documents to change")
        return self


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
