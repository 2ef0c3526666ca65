"""A registration as a stream of domain events, and the pure fold over them.

The event log (table ``domain_event``) is the record regulators and dashboards
read; this module is the one definition of what each event means. The workflow
uses ``apply_event`` to move its own state, the activity that appends an event
uses it to compute the read-model row in the same transaction, and anyone can
rebuild a registration's state and timeline from its events alone with ``fold``
and ``timeline``. Because all three use the same function, they cannot disagree.

Payload facts that depend on settings (deadlines, fees) are stored in the event
itself, so the fold needs no configuration and gives the same answer years later.

Pure and deterministic: no I/O, no clock. It runs inside workflows, and replays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Stage(StrEnum):
    APPLY = "apply"
    AUDIT = "audit"
    ALLOCATE = "allocate"
    VERIFY = "verify"
    ACTIVATE = "activate"
    ACTIVE = "active"
    CLOSED = "closed"


class Status(StrEnum):
    """Finer than the stage: what happened last, and for a closed one why it closed."""

    SUBMITTED = "submitted"  # apply in progress
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    AWAITING_PREPAYMENT = "awaiting_prepayment"
    AWAITING_VERIFICATION = "awaiting_verification"
    AWAITING_ACTIVATION = "awaiting_activation"
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    # Terminal (stage CLOSED); the number is released on every one of them.
    INVALID = "invalid"  # the application failed validation at apply
    NUMBER_UNAVAILABLE = "number_unavailable"  # no number could be held (or the hold was lost)
    REJECTED = "rejected"
    ABANDONED = "abandoned"  # no resubmission within the window
    WITHDRAWN = "withdrawn"
    PREPAYMENT_EXPIRED = "prepayment_expired"
    VERIFICATION_FAILED = "verification_failed"
    VERIFICATION_EXPIRED = "verification_expired"
    PROVISIONING_FAILED = "provisioning_failed"
    # The number's service ended after activation (stage CLOSED): the number is in
    # quarantine, then released. Set by the service, never by this fold.
    TERMINATED = "terminated"  # the holder gave the number up (销号)
    RECLAIMED = "reclaimed"  # taken back for arrears


class WaitingFor(StrEnum):
    NOTHING = "nothing"
    SYSTEM = "system"  # a step of ours is running
    OPERATOR_DECISION = "operator_decision"
    RESUBMISSION = "resubmission"
    PREPAYMENT = "prepayment"
    VERIFICATION = "verification"
    ACTIVATION_TIME = "activation_time"
    CARRIER = "carrier"


class NextDeadlineKind(StrEnum):
    """What ``next_deadline`` is for. Before activation, what the registration
    waits for; from activation on, the service's deadlines
    (``domain.service_rules.DeadlineKind`` spells those the same)."""

    OPERATOR_DECISION = "operator_decision"  # the review target (overdue once passed)
    RESUBMISSION = "resubmission"
    PREPAYMENT = "prepayment"
    VERIFICATION = "verification"
    ACTIVATION_TIME = "activation_time"
    BILLING = "billing"
    ARREARS = "arrears"
    REALNAME = "realname"
    QUARANTINE_END = "quarantine_end"


class ActorRole(StrEnum):
    APPLICANT = "applicant"
    OPERATOR = "operator"
    SYSTEM = "system"


class EventType(StrEnum):
    APPLICATION_SUBMITTED = "ApplicationSubmitted"
    APPLICATION_REFUSED = "ApplicationRefused"
    REVIEW_OVERDUE = "ReviewOverdue"
    CHANGES_REQUESTED = "ChangesRequested"
    APPLICATION_RESUBMITTED = "ApplicationResubmitted"
    APPLICATION_REJECTED = "ApplicationRejected"
    APPLICATION_ABANDONED = "ApplicationAbandoned"
    APPLICATION_APPROVED = "ApplicationApproved"
    NUMBER_LOST = "NumberLost"
    PAYMENT_RECEIVED = "PaymentReceived"
    PREPAYMENT_EXPIRED = "PrepaymentExpired"
    VERIFICATION_PASSED = "VerificationPassed"
    VERIFICATION_FAILED = "VerificationFailed"
    VERIFICATION_EXPIRED = "VerificationExpired"
    PROVISIONING_STARTED = "ProvisioningStarted"
    NUMBER_ACTIVATED = "NumberActivated"
    PROVISIONING_FAILED = "ProvisioningFailed"
    APPLICATION_WITHDRAWN = "ApplicationWithdrawn"


TERMINAL_STATUSES = frozenset(
    {
        Status.INVALID,
        Status.NUMBER_UNAVAILABLE,
        Status.REJECTED,
        Status.ABANDONED,
        Status.WITHDRAWN,
        Status.PREPAYMENT_EXPIRED,
        Status.VERIFICATION_FAILED,
        Status.VERIFICATION_EXPIRED,
        Status.PROVISIONING_FAILED,
    }
)

_WAITING: Mapping[Status, WaitingFor] = {
    Status.SUBMITTED: WaitingFor.SYSTEM,
    Status.IN_REVIEW: WaitingFor.OPERATOR_DECISION,
    Status.CHANGES_REQUESTED: WaitingFor.RESUBMISSION,
    Status.AWAITING_PREPAYMENT: WaitingFor.PREPAYMENT,
    Status.AWAITING_VERIFICATION: WaitingFor.VERIFICATION,
    Status.AWAITING_ACTIVATION: WaitingFor.ACTIVATION_TIME,
    Status.PROVISIONING: WaitingFor.CARRIER,
}

_DEADLINE_KIND: Mapping[WaitingFor, NextDeadlineKind] = {
    WaitingFor.OPERATOR_DECISION: NextDeadlineKind.OPERATOR_DECISION,
    WaitingFor.RESUBMISSION: NextDeadlineKind.RESUBMISSION,
    WaitingFor.PREPAYMENT: NextDeadlineKind.PREPAYMENT,
    WaitingFor.VERIFICATION: NextDeadlineKind.VERIFICATION,
    WaitingFor.ACTIVATION_TIME: NextDeadlineKind.ACTIVATION_TIME,
}

# Closing events and the status each one closes with.
_CLOSING: Mapping[EventType, Status] = {
    EventType.APPLICATION_REJECTED: Status.REJECTED,
    EventType.APPLICATION_ABANDONED: Status.ABANDONED,
    EventType.NUMBER_LOST: Status.NUMBER_UNAVAILABLE,
    EventType.PREPAYMENT_EXPIRED: Status.PREPAYMENT_EXPIRED,
    EventType.VERIFICATION_FAILED: Status.VERIFICATION_FAILED,
    EventType.VERIFICATION_EXPIRED: Status.VERIFICATION_EXPIRED,
    EventType.PROVISIONING_FAILED: Status.PROVISIONING_FAILED,
    EventType.APPLICATION_WITHDRAWN: Status.WITHDRAWN,
}

CLOSING_EVENTS: frozenset[EventType] = frozenset(_CLOSING)
"""Events that close a registration before activation (its number released):
one paid for carries what is owed back (``refund_owed_fen``)."""

_FROZEN = ConfigDict(frozen=True, extra="ignore")


class Event(BaseModel):
    """One row of ``domain_event``. ``payload`` is JSON-ready (datetimes as ISO text)."""

    model_config = _FROZEN

    stream_id: str
    version: int
    event_id: str
    event_type: EventType
    actor: str
    actor_role: ActorRole
    reason: str | None = None
    correlation_id: str
    occurred_at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)


class ChangeRequestState(BaseModel):
    model_config = _FROZEN

    fields: tuple[str, ...] = ()
    documents: tuple[str, ...] = ()
    reason: str | None = None
    requested_at: datetime
    resubmit_by: datetime


class RegistrationState(BaseModel):
    """Everything known about a registration after some prefix of its events."""

    model_config = _FROZEN

    application_id: str
    organisation_id: str = ""
    carrier: str = ""
    company_name: str = ""
    credit_code: str = ""
    stage: Stage = Stage.APPLY
    status: Status = Status.SUBMITTED
    overdue: bool = False
    number: str | None = None
    tier: str | None = None
    min_monthly_spend_fen: int | None = None
    first_prepayment_fen: int | None = None
    paid_fen: int = 0
    payment_ids: tuple[str, ...] = ()
    review_due: datetime | None = None
    pay_by: datetime | None = None
    verify_by: datetime | None = None
    activation_at: datetime | None = None
    activated_at: datetime | None = None
    # When the holder's real-name information must next be re-confirmed: the
    # first deadline of the number in service (the service workflow keeps it after).
    realname_due_at: datetime | None = None
    # When the first billing cycle ends: the nearest deadline at activation.
    first_bill_at: datetime | None = None
    # Paid before activation and owed back, once closed without activation.
    refund_owed_fen: int = 0
    carrier_reference: str | None = None
    change_request: ChangeRequestState | None = None
    rejection_code: str | None = None
    rejection_reason: str | None = None
    problems: tuple[dict[str, str], ...] = ()
    summary: dict[str, Any] = Field(default_factory=dict)
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def waiting_for(self) -> WaitingFor:
        return _WAITING.get(self.status, WaitingFor.NOTHING)

    @property
    def next_deadline(self) -> datetime | None:
        """When the registration next moves on its own (or became overdue)."""
        if self.status is Status.IN_REVIEW:
            return self.review_due
        if self.status is Status.CHANGES_REQUESTED and self.change_request is not None:
            return self.change_request.resubmit_by
        if self.status is Status.AWAITING_PREPAYMENT:
            return self.pay_by
        if self.status is Status.AWAITING_VERIFICATION:
            return self.verify_by
        if self.status is Status.AWAITING_ACTIVATION:
            return self.activation_at
        if self.status is Status.ACTIVE:
            due = [d for d in (self.first_bill_at, self.realname_due_at) if d is not None]
            return min(due) if due else None
        return None

    @property
    def next_deadline_kind(self) -> NextDeadlineKind | None:
        """What ``next_deadline`` is for."""
        due = self.next_deadline
        if due is None:
            return None
        if self.status is Status.ACTIVE:
            return NextDeadlineKind.BILLING if due == self.first_bill_at else NextDeadlineKind.REALNAME
        return _DEADLINE_KIND.get(self.waiting_for)

    @property
    def is_open(self) -> bool:
        return self.stage not in (Stage.ACTIVE, Stage.CLOSED)


class InvalidEventSequence(ValueError):
    """The events do not form one stream in version order."""


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _application_facts(p: Mapping[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for key in ("organisation_id", "carrier", "company_name", "credit_code"):
        if key in p:
            facts[key] = p[key]
    if "summary" in p:
        facts["summary"] = dict(p["summary"])
    return facts


def apply_event(state: RegistrationState | None, event: Event) -> RegistrationState:
    """The state after ``event``. ``state`` is None (or version 0) before the first event."""
    if state is None:
        state = RegistrationState(application_id=event.stream_id)
    if event.stream_id != state.application_id:
        raise InvalidEventSequence(f"event of stream {event.stream_id!r} applied to {state.application_id!r}")
    if event.version != state.version + 1:
        raise InvalidEventSequence(f"expected version {state.version + 1}, got {event.version}")
    p = event.payload
    changes: dict[str, Any] = {
        "version": event.version,
        "updated_at": event.occurred_at,
        "created_at": state.created_at or event.occurred_at,
    }
    kind = event.event_type
    if kind is EventType.APPLICATION_SUBMITTED:
        changes |= _application_facts(p) | {
            "stage": Stage.AUDIT,
            "status": Status.IN_REVIEW,
            "number": p.get("number"),
            "tier": p.get("tier"),
            "min_monthly_spend_fen": p.get("min_monthly_spend_fen"),
            "review_due": _dt(p.get("review_due")),
            "activation_at": _dt(p.get("activation_at")),
        }
    elif kind is EventType.APPLICATION_REFUSED:
        changes |= _application_facts(p) | {
            "stage": Stage.CLOSED,
            "status": Status(p["status"]),
            "problems": tuple(dict(x) for x in p.get("problems", ())),
        }
    elif kind is EventType.REVIEW_OVERDUE:
        changes["overdue"] = True
    elif kind is EventType.CHANGES_REQUESTED:
        changes |= {
            "status": Status.CHANGES_REQUESTED,
            # The applicant's turn: the review clock is not running.
            "overdue": False,
            "change_request": ChangeRequestState(
                fields=tuple(p.get("fields", ())),
                documents=tuple(p.get("documents", ())),
                reason=event.reason,
                requested_at=event.occurred_at,
                resubmit_by=_dt(p["resubmit_by"]),
            ),
        }
    elif kind is EventType.APPLICATION_RESUBMITTED:
        changes |= _application_facts(p) | {
            "status": Status.IN_REVIEW,
            "change_request": None,
            "review_due": _dt(p.get("review_due")),
            "activation_at": _dt(p.get("activation_at")),
        }
        if "number" in p:
            # The resubmission asked for another number: its hold was switched.
            changes |= {
                "number": p["number"],
                "tier": p.get("tier"),
                "min_monthly_spend_fen": p.get("min_monthly_spend_fen"),
            }
    elif kind is EventType.APPLICATION_APPROVED:
        changes |= {
            "stage": Stage.ALLOCATE,
            "status": Status.AWAITING_PREPAYMENT,
            "overdue": False,
            "number": p.get("number", state.number),
            "tier": p.get("tier"),
            "min_monthly_spend_fen": p.get("min_monthly_spend_fen"),
            "first_prepayment_fen": p.get("first_prepayment_fen"),
            "pay_by": _dt(p.get("pay_by")),
        }
    elif kind is EventType.PAYMENT_RECEIVED:
        changes |= {
            "paid_fen": state.paid_fen + int(p["amount_fen"]),
            "payment_ids": (*state.payment_ids, str(p["payment_id"])),
        }
        if p.get("paid_in_full"):
            changes |= {
                "stage": Stage.VERIFY,
                "status": Status.AWAITING_VERIFICATION,
                "verify_by": _dt(p.get("verify_by")),
            }
    elif kind is EventType.VERIFICATION_PASSED:
        activation_at = _dt(p.get("activation_at")) or event.occurred_at
        changes |= {
            "stage": Stage.ACTIVATE,
            "activation_at": activation_at,
            "status": (
                Status.AWAITING_ACTIVATION if activation_at > event.occurred_at else Status.PROVISIONING
            ),
        }
    elif kind is EventType.PROVISIONING_STARTED:
        changes["status"] = Status.PROVISIONING
    elif kind is EventType.NUMBER_ACTIVATED:
        changes |= {
            "stage": Stage.ACTIVE,
            "status": Status.ACTIVE,
            "activated_at": _dt(p.get("activated_at")) or event.occurred_at,
            "carrier_reference": p.get("carrier_reference"),
            "realname_due_at": _dt(p.get("realname_due_at")),
            "first_bill_at": _dt(p.get("first_bill_at")),
        }
    elif kind in _CLOSING:
        changes |= {
            "stage": Stage.CLOSED,
            "status": _CLOSING[kind],
            "overdue": False,
            "refund_owed_fen": int(p.get("refund_owed_fen", 0)),
        }
        if kind is EventType.APPLICATION_REJECTED:
            changes |= {"rejection_code": p.get("reason_code"), "rejection_reason": event.reason}
    else:  # pragma: no cover - EventType is closed; a new member must be handled above
        raise InvalidEventSequence(f"unknown event type {kind!r}")
    return state.model_copy(update=changes)


def fold(events: Iterable[Event]) -> RegistrationState | None:
    """The state after all ``events`` (one stream, in version order); None if there are none."""
    state: RegistrationState | None = None
    for event in events:
        state = apply_event(state, event)
    return state


class TimelineEntry(BaseModel):
    """One line of a registration's history: who did what, when, why, and what it led to."""

    model_config = _FROZEN

    version: int
    occurred_at: datetime
    event_type: EventType
    actor: str
    actor_role: ActorRole
    reason: str | None
    correlation_id: str
    stage: Stage
    status: Status
    next_deadline: datetime | None
    overdue: bool
    # The coded reason of a rejection (``reason`` is the operator's words).
    reason_code: str | None = None
    next_deadline_kind: NextDeadlineKind | None = None
    # On the event that closed a registration paid for before activation: what is owed back.
    refund_owed_fen: int | None = None


def timeline(events: Iterable[Event]) -> list[TimelineEntry]:
    """The registration's timeline, rebuilt from its events alone."""
    entries: list[TimelineEntry] = []
    state: RegistrationState | None = None
    for event in events:
        state = apply_event(state, event)
        entries.append(
            TimelineEntry(
                version=event.version,
                occurred_at=event.occurred_at,
                event_type=event.event_type,
                actor=event.actor,
                actor_role=event.actor_role,
                reason=event.reason,
                correlation_id=event.correlation_id,
                stage=state.stage,
                status=state.status,
                next_deadline=state.next_deadline,
                overdue=state.overdue,
                reason_code=event.payload.get("reason_code")
                if event.event_type is EventType.APPLICATION_REJECTED
                else None,
                next_deadline_kind=state.next_deadline_kind,
                refund_owed_fen=state.refund_owed_fen or None if event.event_type in CLOSING_EVENTS else None,
            )
        )
    return entries
