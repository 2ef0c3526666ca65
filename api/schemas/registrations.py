"""A registration (an application and its progress) as the API shows it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import JsonObject, UtcDateTime
from domain.lifecycle import Lifecycle
from domain.service_rules import ArrearsStage, RealnameStage, ServiceState
from domain.timeline import NextDeadlineKind
from workflows.contracts import RejectionReason, Stage, Status, WaitingFor

_EXAMPLE: dict[str, Any] = {
    "id": "app_01jd8k3m5n7p9q2r4s6t8v",
    "organisation_id": "org_acme",
    "carrier": "china_unicom",
    "company_name": "深圳市示例科技有限公司",
    "number": "4000123456",
    "number_display": "400-012-3456",
    "stage": "audit",
    "status": "in_review",
    "lifecycle": "in_review",
    "waiting_for": "operator_decision",
    "next_deadline": "2026-12-02T01:00:00Z",
    "next_deadline_kind": "operator_decision",
    "deadline_provisional": False,
    "overdue": False,
    "fees": None,
    "paid_fen": 0,
    "refund_owed_fen": 0,
    "change_request": None,
    "rejection": None,
    "problems": [],
    "activation_at": "2026-12-20T01:00:00Z",
    "activated_at": None,
    "version": 1,
    "created_at": "2026-11-25T01:00:00Z",
    "updated_at": "2026-11-25T01:00:01Z",
}


class Fees(BaseModel):
    tier: str | None
    min_monthly_spend_fen: int | None = Field(description="Minimum monthly spend, CNY fen.")
    first_prepayment_fen: int | None = Field(description="First prepayment due after approval, CNY fen.")


class ChangeRequest(BaseModel):
    fields: list[str]
    documents: list[str]
    reason: str | None
    requested_at: UtcDateTime | None = None
    resubmit_by: UtcDateTime | None = None


class Rejection(BaseModel):
    reason_code: RejectionReason | str
    reason: str | None = None


class RefusalProblem(BaseModel):
    field: str
    code: str
    message: str


class Registration(BaseModel):
    """An application and where its registration stands."""

    model_config = ConfigDict(json_schema_extra={"example": _EXAMPLE})

    id: str = Field(description="The application id; also the registration's id.")
    organisation_id: str
    carrier: str
    company_name: str
    number: str | None = Field(description="The 400 number held or allocated, 10 digits.")
    number_display: str | None = Field(description="The number as shown to people, 400-XXX-XXXX.")
    stage: Stage = Field(
        description="The registration step it is at; `active` while the number is in service, `closed` once "
        "the registration has ended (before activation, or after it when the service ended)."
    )
    status: Status = Field(
        description="What happened last; for a closed registration why it closed (`terminated` or "
        "`reclaimed` when the service ended after activation)."
    )
    lifecycle: Lifecycle = Field(
        description="Where the registration is from application to the number's release, in one value "
        "(docs/domain.md, States); what dashboards filter and count on."
    )
    waiting_for: WaitingFor
    next_deadline: UtcDateTime | None = Field(
        description="The nearest deadline of any kind (see next_deadline_kind)."
    )
    next_deadline_kind: NextDeadlineKind | None = Field(
        default=None,
        description="What next_deadline is for: before activation what the registration waits for; after, "
        "the next bill, an arrears or real-name stage, or the end of quarantine.",
    )
    deadline_provisional: bool = Field(
        default=False,
        description="`next_deadline` (a deadline in working days: `operator_decision` or `resubmission`) was "
        "counted across a year whose official holiday schedule is not loaded (Monday to Friday): it is "
        "recomputed when the schedule is loaded, and a provisional deadline never closes the application "
        "(`waiting_for: official_calendar`).",
    )
    overdue: bool
    fees: Fees | None
    paid_fen: int = Field(description="Paid before activation (after activation, see balance_fen), CNY fen.")
    refund_owed_fen: int = Field(
        default=0,
        description="Paid before activation and owed back because the registration closed without "
        "activation (withdrawn, verification failed or expired, provisioning failed, prepayment expired), "
        "CNY fen; 0 otherwise.",
    )
    change_request: ChangeRequest | None
    rejection: Rejection | None
    problems: list[RefusalProblem] = Field(
        description="Why an application was refused at submission (status invalid)."
    )
    activation_at: UtcDateTime | None
    activated_at: UtcDateTime | None
    version: int = Field(description="Version of the registration's event stream this reflects.")
    created_at: UtcDateTime
    updated_at: UtcDateTime
    summary: JsonObject | None = Field(
        default=None,
        description="The application as recorded, with personal data masked (staff views only).",
    )
    # The service after activation; null before (stage active while the service
    # runs, closed once it has ended: docs/domain.md, States).
    service_state: ServiceState | None = Field(
        default=None,
        description="After activation: what the number does now (active, restricted, suspended, frozen, "
        "quarantined, released).",
    )
    balance_fen: int | None = Field(
        default=None, description="After activation: the prepaid balance, CNY fen (negative in arrears)."
    )
    arrears_stage: ArrearsStage | None = Field(
        default=None, description="After activation: how far unpaid charges have gone (none when paid up)."
    )
    realname_stage: RealnameStage | None = Field(
        default=None, description="After activation: whether the real-name registration is current."
    )
    realname_due_at: UtcDateTime | None = Field(
        default=None, description="After activation: when the real-name registration must next be confirmed."
    )


class StageCarrierCount(BaseModel):
    stage: Stage
    carrier: str
    total: int
    overdue: int


class LifecycleCarrierCount(BaseModel):
    lifecycle: Lifecycle
    carrier: str
    total: int
    overdue: int


class RegistrationStats(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "total": 3,
                "overdue": 1,
                "by_stage": {"audit": 2, "allocate": 1},
                "by_carrier": {"china_unicom": 3},
                "by_stage_and_carrier": [
                    {"stage": "audit", "carrier": "china_unicom", "total": 2, "overdue": 1},
                    {"stage": "allocate", "carrier": "china_unicom", "total": 1, "overdue": 0},
                ],
                "by_lifecycle": {"in_review": 2, "awaiting_payment": 1},
                "by_lifecycle_and_carrier": [
                    {"lifecycle": "in_review", "carrier": "china_unicom", "total": 2, "overdue": 1},
                    {"lifecycle": "awaiting_payment", "carrier": "china_unicom", "total": 1, "overdue": 0},
                ],
                "in_service": 0,
            }
        }
    )

    total: int
    overdue: int
    by_stage: dict[str, int]
    by_carrier: dict[str, int]
    by_stage_and_carrier: list[StageCarrierCount]
    by_lifecycle: dict[str, int] = Field(description="Registrations per lifecycle value.")
    by_lifecycle_and_carrier: list[LifecycleCarrierCount]
    in_service: int = Field(
        description="Numbers the holder still has (in_service, restricted, suspended, frozen); a number in "
        "quarantine or released is never counted."
    )


class DetailsChangeShown(BaseModel):
    fields: list[str]
    values: JsonObject = Field(
        default_factory=dict, description="The new values by field, personal data masked."
    )
    changed_at: UtcDateTime
    due_by: UtcDateTime
    late: bool


class TimelineEntry(BaseModel):
    source: Literal["registration", "access_log"] = Field(
        default="registration",
        description="`registration`: an event of the registration's own stream. `access_log` (staff "
        "only): a reveal of a personal field by an operator (`PersonalDataRevealed`), from the "
        "application's access log, placed by time.",
    )
    version: int | None = Field(
        description="The event's place in the registration's stream (1, 2, ...): unique and in order. "
        "null for `access_log` entries, which are not part of that stream."
    )
    occurred_at: UtcDateTime
    event_type: str
    actor: str = Field(description="Who did it: an API key id (staff views), or the role.")
    actor_role: str
    reason: str | None = Field(description="Why, in the words of whoever acted.")
    reason_code: RejectionReason | str | None = Field(
        default=None, description="A rejection's coded reason (ApplicationRejected entries)."
    )
    stage: Stage
    status: Status
    lifecycle: Lifecycle | None = Field(
        default=None, description="The lifecycle after this event (null on a reveal of personal data)."
    )
    next_deadline: UtcDateTime | None
    next_deadline_kind: NextDeadlineKind | None = None
    deadline_provisional: bool = Field(
        default=False, description="`next_deadline` after this event is provisional (see Registration)."
    )
    overdue: bool
    service_state: ServiceState | None = Field(
        default=None,
        description="After activation: what the number does after this event (active, restricted, "
        "suspended, frozen, quarantined, released).",
    )
    refund_owed_fen: int | None = Field(
        default=None,
        description="On the event that closed a registration paid for before activation: the amount owed "
        "back, CNY fen.",
    )
    details_change: DetailsChangeShown | None = Field(
        default=None,
        description="On DetailsChangeReported: what changed, by when it was due, and whether late.",
    )


class Timeline(BaseModel):
    application_id: str
    entries: list[TimelineEntry]
