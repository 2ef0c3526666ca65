"""The registration workflow's public contract: what callers send and get back.

The HTTP API starts the workflow, sends Updates and reads the Query through these
models and names only; nothing else in ``workflows/`` is meant to be imported by
callers. Changes here must stay backwards compatible (new fields get defaults),
because these payloads live in workflow histories for years.

One registration is one workflow execution, id ``registration_workflow_id(application_id)``.
It starts in stage ``apply`` and reaches ``active`` (the same run then carries on
as the number's service, see ``workflows/service_contracts.py``) or ends
``closed`` (its number released).

Personal data: ``RegistrationInput.form`` and ``Resubmission.form`` carry resident
ID numbers. They travel through the encryption codec (``app.temporal``), so history
holds only ciphertext; nothing here is ever logged.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.applicant import ApplicationForm

# Defined with the event fold, re-exported here: the names are part of this contract.
from domain.timeline import TERMINAL_STATUSES, ActorRole, NextDeadlineKind, Stage, Status, WaitingFor

if TYPE_CHECKING:
    from app.settings import Settings

WORKFLOW_NAME = "RegistrationWorkflow"
WORKFLOW_ID_PREFIX = "registration-"

# Update names. Each has a validator: an Update that does not fit the current
# stage is rejected before it is written to history, with an ApplicationError
# whose message says why (e.g. "already decided").
UPDATE_DECIDE = "decide"  # operator audit decision: DecisionRequest -> RegistrationStatus
UPDATE_RESUBMIT = "resubmit"  # applicant answers a change request: Resubmission -> RegistrationStatus
UPDATE_PAY = "record_payment"  # prepayment received: PaymentRequest -> PaymentResult
UPDATE_VERIFY = "verify"  # operator real-name check: VerificationRequest -> RegistrationStatus
UPDATE_WITHDRAW = "withdraw"  # applicant withdraws: WithdrawalRequest -> RegistrationStatus
UPDATE_SUBMISSION = "submission"  # waits until apply is done: no argument -> RegistrationStatus
QUERY_STATUS = "status"  # -> RegistrationStatus

# ApplicationError.type values an Update or the workflow may fail with; the API
# maps them to HTTP statuses.
ERR_WRONG_STAGE = "WrongStage"  # 409: the registration is not waiting for this
ERR_ALREADY_DECIDED = "AlreadyDecided"  # 409: another decision won
ERR_INVALID_APPLICATION = "InvalidApplication"  # 422: details carry the FieldErrors
ERR_INVALID_REQUEST = "InvalidRequest"  # 422: e.g. a reason is missing
# 503 with Retry-After: the number is being activated (the carrier call, or a
# replay that has yet to apply the activation a worker recorded): a service
# Update can follow in a moment.
ERR_ACTIVATING = "Activating"


def registration_workflow_id(application_id: str) -> str:
    """The workflow id for an application, the same for the registration's whole life."""
    return WORKFLOW_ID_PREFIX + application_id


_MODEL = ConfigDict(frozen=True, extra="ignore")


class Actor(BaseModel):
    """Who did something: an API key's principal, an operator, or the system."""

    model_config = _MODEL

    id: Annotated[str, Field(min_length=1, max_length=128)]
    role: ActorRole


SYSTEM_ACTOR = Actor(id="system", role=ActorRole.SYSTEM)


class RejectionReason(StrEnum):
    """Coded reasons for a final rejection, so clients can branch on them."""

    DOCUMENTS_INVALID = "documents_invalid"
    IDENTITY_MISMATCH = "identity_mismatch"
    CREDIT_CODE_INVALID = "credit_code_invalid"
    INDUSTRY_LICENCE_MISSING = "industry_licence_missing"
    PROHIBITED_USE = "prohibited_use"
    DUPLICATE_APPLICATION = "duplicate_application"
    OTHER = "other"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes"


class VerificationOutcome(StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a secret
    FAIL = "fail"


# --------------------------------------------------------------------------
# Workflow input
# --------------------------------------------------------------------------


class RegistrationTimings(BaseModel):
    """Every duration the registration waits for, resolved from settings for the
    carrier when the workflow starts (the workflow cannot read settings itself
    and stay deterministic). The ``service_*`` ones are carried for the service
    workflow that continues from ACTIVE."""

    model_config = _MODEL

    resubmit_working_days: int = 5
    review_target_working_days: int = 5
    prepayment_window: timedelta = timedelta(days=7)
    verification_window: timedelta = timedelta(days=15)
    # How long one lease on the held number lasts; the workflow renews it while
    # the audit runs. Only a registration that stopped without releasing (say,
    # terminated by hand) leaves a hold behind, and only until the lease ends.
    hold_lease: timedelta = timedelta(days=7)
    prepayment_months: int = 3
    prepayment_floor_fen: int = 60_000
    # Carrier provisioning: retried with exponential backoff, then given up.
    carrier_call_timeout: timedelta = timedelta(seconds=30)
    carrier_retry_initial: timedelta = timedelta(seconds=1)
    carrier_retry_max_interval: timedelta = timedelta(minutes=5)
    carrier_retry_max_attempts: int = 20
    # Everything CarrierDurations holds, for the service after activation.
    carrier_durations: dict[str, str | int] = Field(default_factory=dict)


def timings_from_settings(settings: Settings, carrier: str) -> RegistrationTimings:
    """The timings to pass in ``RegistrationInput`` for an application to ``carrier``."""
    d = settings.durations_for(carrier)
    return RegistrationTimings(
        resubmit_working_days=d.resubmit_working_days,
        review_target_working_days=d.review_target_working_days,
        prepayment_window=d.prepayment_window,
        verification_window=d.verification_window,
        hold_lease=settings.registration_hold_lease,
        prepayment_months=settings.first_prepayment_months,
        prepayment_floor_fen=settings.first_prepayment_floor_fen,
        carrier_call_timeout=settings.carrier_call_timeout,
        carrier_retry_initial=settings.carrier_retry_initial,
        carrier_retry_max_interval=settings.carrier_retry_max_interval,
        carrier_retry_max_attempts=settings.carrier_retry_max_attempts,
        carrier_durations=d.model_dump(mode="json"),
    )


class RegistrationInput(BaseModel):
    """Start argument. ``form`` should already have passed ``check_application``
    in the API (for a fast 422); the workflow checks it again at apply."""

    model_config = _MODEL

    # The API's application ids (api.ids.new_id("app")): the apply step writes the
    # application's row, whose id has this form.
    application_id: Annotated[str, Field(pattern=r"^app_[a-z0-9]{20,32}$")]
    form: ApplicationForm
    submitted_by: Actor
    correlation_id: Annotated[str, Field(min_length=1, max_length=128)]
    timings: RegistrationTimings = Field(default_factory=RegistrationTimings)


# --------------------------------------------------------------------------
# Update arguments
# --------------------------------------------------------------------------


class DecisionRequest(BaseModel):
    """An operator's audit decision. ``reason_code`` is required to reject;
    ``fields`` and/or ``documents`` are required to request changes."""

    model_config = _MODEL

    decision: Decision
    operator: Actor
    reason_code: RejectionReason | None = None
    reason: Annotated[str | None, Field(max_length=1000)] = None
    fields: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(default_factory=list)
    documents: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    correlation_id: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> DecisionRequest:
        if self.decision is Decision.REJECT and self.reason_code is None:
            raise ValueError("a rejection needs a reason_code")
        if self.decision is Decision.REQUEST_CHANGES and not (self.fields or self.documents):
            raise ValueError("a change request must name the fields or documents to change")
        return self


class Resubmission(BaseModel):
    """The applicant's corrected application, answering a change request."""

    model_config = _MODEL

    form: ApplicationForm
    actor: Actor
    correlation_id: str | None = None


class PaymentRequest(BaseModel):
    """A prepayment received. ``payment_id`` makes a retried call a no-op."""

    model_config = _MODEL

    payment_id: Annotated[str, Field(min_length=1, max_length=128)]
    amount_fen: Annotated[int, Field(strict=True, gt=0)]
    actor: Actor
    correlation_id: str | None = None


class VerificationRequest(BaseModel):
    """An operator's real-name authentication / information registration result."""

    model_config = _MODEL

    outcome: VerificationOutcome
    operator: Actor
    reason: Annotated[str, Field(min_length=1, max_length=1000)]
    correlation_id: str | None = None


class WithdrawalRequest(BaseModel):
    model_config = _MODEL

    actor: Actor
    reason: Annotated[str | None, Field(max_length=1000)] = None
    correlation_id: str | None = None


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


class Fees(BaseModel):
    model_config = _MODEL

    tier: str
    min_monthly_spend_fen: int
    first_prepayment_fen: int


class ChangeRequest(BaseModel):
    model_config = _MODEL

    fields: list[str] = Field(default_factory=list)
    documents: list[str] = Field(default_factory=list)
    reason: str | None = None
    requested_at: datetime
    resubmit_by: datetime


class Rejection(BaseModel):
    model_config = _MODEL

    reason_code: RejectionReason
    reason: str | None = None


class FieldProblem(BaseModel):
    """One failing field of an application (mirrors domain.errors.FieldError)."""

    model_config = _MODEL

    field: str
    code: str
    message: str


class RegistrationStatus(BaseModel):
    """The Query result, also returned by most Updates: the live state."""

    model_config = _MODEL

    application_id: str
    workflow_id: str
    stage: Stage
    status: Status
    waiting_for: WaitingFor
    next_deadline: datetime | None = None
    overdue: bool = False
    carrier: str
    organisation_id: str
    number: str | None = None
    fees: Fees | None = None
    paid_fen: int = 0
    change_request: ChangeRequest | None = None
    rejection: Rejection | None = None
    problems: list[FieldProblem] = Field(default_factory=list)
    activation_at: datetime | None = None
    activated_at: datetime | None = None
    last_event_version: int = 0
    updated_at: datetime | None = None
    next_deadline_kind: NextDeadlineKind | None = None
    # Paid before activation and owed back, once closed without activation.
    refund_owed_fen: int = 0


class PaymentResult(BaseModel):
    model_config = _MODEL

    payment_id: str
    accepted: bool  # False: this payment_id was already recorded (no double count)
    paid_fen: int
    required_fen: int
    paid_in_full: bool
    status: RegistrationStatus


class RegistrationResult(BaseModel):
    """How the registration's steps ended: ``closed`` is also what the workflow
    returns. At ACTIVE the run carries on as the service, which starts from it."""

    model_config = _MODEL

    application_id: str
    outcome: Literal["active", "closed"]
    status: RegistrationStatus
    correlation_id: str


__all__ = [
    "ERR_ACTIVATING",
    "ERR_ALREADY_DECIDED",
    "ERR_INVALID_APPLICATION",
    "ERR_INVALID_REQUEST",
    "ERR_WRONG_STAGE",
    "QUERY_STATUS",
    "SYSTEM_ACTOR",
    "TERMINAL_STATUSES",
    "UPDATE_DECIDE",
    "UPDATE_PAY",
    "UPDATE_RESUBMIT",
    "UPDATE_SUBMISSION",
    "UPDATE_VERIFY",
    "UPDATE_WITHDRAW",
    "WORKFLOW_ID_PREFIX",
    "WORKFLOW_NAME",
    "Actor",
    "ActorRole",
    "ChangeRequest",
    "Decision",
    "DecisionRequest",
    "Fees",
    "FieldProblem",
    "PaymentRequest",
    "PaymentResult",
    "RegistrationInput",
    "RegistrationResult",
    "RegistrationStatus",
    "RegistrationTimings",
    "Rejection",
    "RejectionReason",
    "Resubmission",
    "Stage",
    "Status",
    "VerificationOutcome",
    "VerificationRequest",
    "WaitingFor",
    "WithdrawalRequest",
    "registration_workflow_id",
    "timings_from_settings",
]
