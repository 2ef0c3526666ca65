"""The service workflow's public contract: what follows a registration after ACTIVE.

At ACTIVE the registration's run carries on as the service, from
``service_input_from_registration(result, timings)``, and every later run is
the service workflow, continued as new with the record carried over. So the
service runs under the same workflow id (``registration_workflow_id``) and
callers keep talking to one id for the registration's whole life. The Query
keeps the registration's name (``status``) and its result is a superset of
``RegistrationStatus``, so a caller that decodes ``RegistrationStatus`` keeps
working after ACTIVE; it just ignores the service fields.

Compatibility: these payloads live in workflow histories for years (the whole
service state is carried through every continue-as-new), so new fields get
defaults and nothing is renamed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.details import DetailValue
from domain.service_rules import (
    ArrearsStage,
    Closure,
    OperatorHold,
    RealnameStage,
    ServiceDurations,
    ServiceRecord,
    ServiceState,
    start,
)
from workflows.contracts import (
    Actor,
    RegistrationResult,
    RegistrationStatus,
    RegistrationTimings,
)

SERVICE_WORKFLOW_NAME = "ServiceWorkflow"

# Update names. Each has a validator: an Update that does not fit the current
# state is rejected before it reaches history, with an ApplicationError of type
# ERR_WRONG_STAGE (409, e.g. "already suspended by an operator") or
# ERR_INVALID_REQUEST (422, e.g. "a reason is required") from workflows.contracts.
UPDATE_SERVICE_PAY = "pay"  # workflows.contracts.PaymentRequest -> ServicePaymentResult
UPDATE_OPERATOR_SUSPEND = "operator_suspend"  # OperatorAction -> ServiceStatus
UPDATE_OPERATOR_RESUME = "operator_resume"  # OperatorAction -> ServiceStatus
UPDATE_TERMINATE = "terminate"  # TerminationRequest -> ServiceStatus
UPDATE_REPORT_DETAILS_CHANGE = "report_details_change"  # DetailsChangeReport -> DetailsChangeResult
UPDATE_CONFIRM_REALNAME = "confirm_realname"  # RealnameConfirmation -> ServiceStatus
QUERY_SERVICE_STATUS = "status"  # -> ServiceStatus (same name as the registration's Query)

# Past this many events in one run the workflow continues as new before its
# billing count says so (e.g. a burst of Updates); far below Temporal's limits.
DEFAULT_HISTORY_LIMIT = 1_000
# Billing cycles per run. A cycle adds about six events to history, so a year
# of them is under a hundred; continuing as new after every cycle instead made
# the billing instant about five times slower on the dev server (bench/service_bench.py:
# 16 vs 82 bills/s), because every continue-as-new closes one run and opens another.
DEFAULT_CYCLES_PER_RUN = 12

_MODEL = ConfigDict(frozen=True, extra="ignore")

Reason = Annotated[str, Field(min_length=1, max_length=1000)]


class CarrierRetry(BaseModel):
    """How carrier calls are retried. A decided change of service must reach the
    carrier, so retryable failures are retried without limit (backing off to
    ``max_interval``); only the carrier's permanent refusal stops them."""

    model_config = _MODEL

    call_timeout: timedelta = timedelta(seconds=30)
    initial_interval: timedelta = timedelta(seconds=1)
    max_interval: timedelta = timedelta(minutes=5)


class ServiceInput(BaseModel):
    """What the service starts from: built at ACTIVE (the registration's run
    carries on with it), and the start argument of every continue-as-new."""

    model_config = _MODEL

    application_id: Annotated[str, Field(min_length=1, max_length=64)]
    organisation_id: str
    carrier: str
    number: Annotated[str, Field(pattern=r"^400[0-9]{7}$")]
    correlation_id: Annotated[str, Field(min_length=1, max_length=128)]
    durations: ServiceDurations = Field(default_factory=ServiceDurations)
    retry: CarrierRetry = Field(default_factory=CarrierRetry)
    record: ServiceRecord
    # The registration's status at ACTIVE, so the Query can keep answering
    # the registration fields (fees, dates) without the registration's history.
    registration: RegistrationStatus | None = None
    run: Annotated[int, Field(ge=1)] = 1  # 1 for the first run, +1 per continue-as-new
    history_limit: Annotated[int, Field(ge=100)] = DEFAULT_HISTORY_LIMIT
    cycles_per_run: Annotated[int, Field(ge=1)] = DEFAULT_CYCLES_PER_RUN


def service_input_from_registration(
    result: RegistrationResult,
    timings: RegistrationTimings,
    *,
    now: datetime | None = None,
) -> ServiceInput:
    """The service's first input from the registration's result at ACTIVE.

    ``timings.carrier_durations`` (a dump of the carrier's ``CarrierDurations``)
    supplies the arrears, billing, real-name and quarantine durations, so the
    service keeps the values that applied when the registration started.
    The opening balance is everything prepaid; billing starts at activation.
    ``now`` is only used if the status lacks ``activated_at``.
    """
    status = result.status
    if result.outcome != "active":
        raise ValueError(f"registration {result.application_id} ended {result.outcome}, not active")
    if status.number is None or status.fees is None:
        raise ValueError(f"registration {result.application_id} is active without a number or fees")
    activated_at = status.activated_at or now
    if activated_at is None:
        raise ValueError(f"registration {result.application_id} has no activation time")
    durations = ServiceDurations.model_validate(timings.carrier_durations)
    record = start(
        activated_at=activated_at,
        balance_fen=status.paid_fen,
        min_monthly_spend_fen=status.fees.min_monthly_spend_fen,
        durations=durations,
    )
    return ServiceInput(
        application_id=result.application_id,
        organisation_id=status.organisation_id,
        carrier=status.carrier,
        number=status.number,
        correlation_id=result.correlation_id,
        durations=durations,
        retry=CarrierRetry(
            call_timeout=timings.carrier_call_timeout,
            initial_interval=timings.carrier_retry_initial,
            max_interval=timings.carrier_retry_max_interval,
        ),
        record=record,
        registration=status,
    )


# --------------------------------------------------------------------------
# Update arguments
# --------------------------------------------------------------------------


class OperatorAction(BaseModel):
    """An operator's suspension (complaints, improper marketing, use by a company
    other than the holder) or resumption; a reason is always required."""

    model_config = _MODEL

    operator: Actor
    reason: Reason
    correlation_id: str | None = None


class TerminationRequest(BaseModel):
    """销号: the holder gives the number up (an operator may file it for them)."""

    model_config = _MODEL

    actor: Actor
    reason: Annotated[str | None, Field(max_length=1000)] = None
    correlation_id: str | None = None


class DetailsChangeReport(BaseModel):
    """A change of registered details (address, contact), which must be reported
    within ``details_change_working_days`` Chinese working days of ``changed_at``.
    ``values``: the new value of each field, as kept outside the encrypted form
    (checked and masked by the caller, ``domain.details``); the service keeps
    them as the holder's current details."""

    model_config = _MODEL

    actor: Actor
    changed_at: datetime
    fields: Annotated[list[Annotated[str, Field(min_length=1, max_length=128)]], Field(min_length=1)]
    values: dict[str, DetailValue] = Field(default_factory=dict)
    correlation_id: str | None = None


class RealnameConfirmation(BaseModel):
    """An operator confirms the holder's real-name registration is complete and current."""

    model_config = _MODEL

    operator: Actor
    reason: Reason
    correlation_id: str | None = None


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


class ServiceStatus(RegistrationStatus):
    """The Query result, also returned by the Updates: the live service state.

    ``stage`` is ``active`` while the number is in service and ``closed`` once the
    service has ended (``status`` ``terminated`` or ``reclaimed``);
    ``service_state`` says what the number does now, ``next_deadline`` /
    ``next_deadline_kind`` the nearest deadline of any kind (the next bill, an
    arrears or real-name stage, the end of quarantine), and ``next_bill_at``
    when the running billing cycle is charged."""

    service_state: ServiceState = ServiceState.ACTIVE
    balance_fen: int = 0
    min_monthly_spend_fen: int = 0
    arrears_stage: ArrearsStage = ArrearsStage.NONE
    arrears_stage_since: datetime | None = None  # when the current arrears stage began
    realname_stage: RealnameStage = RealnameStage.CURRENT
    realname_due_at: datetime | None = None
    next_bill_at: datetime | None = None
    cycle_number: int = 1
    cycle_start: datetime | None = None
    total_charged_fen: int = 0
    total_paid_fen: int = 0
    operator_hold: OperatorHold | None = None
    closure: Closure | None = None
    late_details_reports: int = 0
    # The holder's details as last reported changed (masked), by field name.
    current_details: dict[str, DetailValue] = Field(default_factory=dict)
    # How many changes the service has decided so far; each one's event carries
    # its number as ``payload.seq``, so a caller can tell when the log caught up.
    change_seq: int = 0
    run: int = 1  # which run of the workflow answered (1 + continue-as-new count)


class ServicePaymentResult(BaseModel):
    model_config = _MODEL

    payment_id: str
    accepted: bool  # False: this payment_id was already credited (no double count)
    balance_fen: int
    status: ServiceStatus


class DetailsChangeResult(BaseModel):
    model_config = _MODEL

    due_by: datetime
    late: bool
    status: ServiceStatus


class ServiceResult(BaseModel):
    """What the workflow returns when the service is over: the number has been
    quarantined and released back to the pool."""

    model_config = _MODEL

    application_id: str
    outcome: Literal["reclaimed", "terminated"]
    number: str
    released_at: datetime
    balance_fen: int
    status: ServiceStatus
