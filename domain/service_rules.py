"""Service after activation: billing, arrears, real-name compliance, suspension, reclaim.

Pure rules, no I/O and no clock: every function takes the time it runs at.
The service workflow keeps one ``ServiceRecord``, calls ``advance`` when a
deadline is due and one of the command functions when an Update arrives, and
carries out each ``Change`` they return (carrier call, inventory status, event).

How the parts fit:

* Three independent *holds* can limit the service: arrears (a negative balance),
  real-name compliance (a missed registration deadline) and an operator's
  suspension. The number's service state is the most severe of them
  (active < restricted < suspended < frozen), so clearing one hold never lifts
  another: a payment does not undo an operator's suspension.
* Billing is per cycle (``billing_cycle``, 30 days by default) against the
  prepaid balance. A cycle costs the minimum monthly spend pro rata to the time
  the number was chargeable (active or restricted); suspended and frozen time
  is free. Integer fen throughout, rounded down in the holder's favour. Usage
  above the minimum would come from the carrier's call records, which the
  system does not receive yet, so a cycle costs exactly the minimum.
* Arrears start when a charge makes the balance negative and walk
  grace -> restricted -> suspended -> frozen -> reclaimed on per-carrier
  durations. A payment that brings the balance back to zero or above before
  reclaim clears them. Reclaim and termination (销号) both quarantine the number;
  when quarantine ends it is released back to the pool.
* Real-name: a deadline to re-confirm the holder's information; past it a grace
  period, then restricted, then suspended (and no further: the regulation names
  only those two). A confirmation clears it and sets the next deadline.
* A change of registered details must be reported within 10 Chinese working
  days; a later report is recorded as late (a finding for the operator, who may
  suspend) and does not by itself limit the service.

Every change carries ``seq``, its position in this registration's service life,
so that callers can derive stable idempotency keys from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.calendar import add_working_days
from domain.details import DetailValue, merge_details

# Payment ids remembered for de-duplication. Bounded because the record is
# carried through every continue-as-new for years; a retry of a payment comes
# within minutes, not after a hundred other payments.
RECENT_PAYMENT_IDS: Final = 100

_MODEL = ConfigDict(frozen=True, extra="ignore")


def _aware(value: datetime) -> datetime:
    # A naive datetime would silently compare against aware ones in the wrong zone.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("duration must be positive")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
PositiveDuration = Annotated[timedelta, AfterValidator(_positive)]


class ServiceState(StrEnum):
    """What the number does now; the inventory status and the carrier follow it."""

    ACTIVE = "active"
    RESTRICTED = "restricted"  # 单停: partial service
    SUSPENDED = "suspended"  # 停机: calls no longer connect
    FROZEN = "frozen"
    QUARANTINED = "quarantined"  # reclaimed or terminated, cooling down
    RELEASED = "released"  # back in the pool; the service is over


IN_SERVICE: Final = frozenset(
    {ServiceState.ACTIVE, ServiceState.RESTRICTED, ServiceState.SUSPENDED, ServiceState.FROZEN}
)
CHARGEABLE: Final = frozenset({ServiceState.ACTIVE, ServiceState.RESTRICTED})
_SEVERITY: Final = {
    ServiceState.ACTIVE: 0,
    ServiceState.RESTRICTED: 1,
    ServiceState.SUSPENDED: 2,
    ServiceState.FROZEN: 3,
}


class ArrearsStage(StrEnum):
    NONE = "none"
    GRACE = "grace"
    RESTRICTED = "restricted"
    SUSPENDED = "suspended"
    FROZEN = "frozen"
    RECLAIMED = "reclaimed"


_ARREARS_NEXT: Final = {
    ArrearsStage.GRACE: ArrearsStage.RESTRICTED,
    ArrearsStage.RESTRICTED: ArrearsStage.SUSPENDED,
    ArrearsStage.SUSPENDED: ArrearsStage.FROZEN,
    ArrearsStage.FROZEN: ArrearsStage.RECLAIMED,
}
_ARREARS_STATE: Final = {
    ArrearsStage.NONE: ServiceState.ACTIVE,
    ArrearsStage.GRACE: ServiceState.ACTIVE,
    ArrearsStage.RESTRICTED: ServiceState.RESTRICTED,
    ArrearsStage.SUSPENDED: ServiceState.SUSPENDED,
    ArrearsStage.FROZEN: ServiceState.FROZEN,
}


class RealnameStage(StrEnum):
    CURRENT = "current"
    OVERDUE = "overdue"  # deadline missed, grace running
    RESTRICTED = "restricted"
    SUSPENDED = "suspended"


_REALNAME_NEXT: Final = {
    RealnameStage.OVERDUE: RealnameStage.RESTRICTED,
    RealnameStage.RESTRICTED: RealnameStage.SUSPENDED,
}
_REALNAME_STATE: Final = {
    RealnameStage.CURRENT: ServiceState.ACTIVE,
    RealnameStage.OVERDUE: ServiceState.ACTIVE,
    RealnameStage.RESTRICTED: ServiceState.RESTRICTED,
    RealnameStage.SUSPENDED: ServiceState.SUSPENDED,
}


class ClosureReason(StrEnum):
    RECLAIMED = "reclaimed"
    TERMINATED = "terminated"


class ChangeKind(StrEnum):
    """One per domain event type the service appends; the value is the event type,
    spelled like the registration's own events (``NumberActivated``)."""

    BILLED = "ServiceBilled"
    ARREARS_GRACE = "ArrearsGraceStarted"
    ARREARS_RESTRICTED = "ArrearsRestricted"
    ARREARS_SUSPENDED = "ArrearsSuspended"
    ARREARS_FROZEN = "ArrearsFrozen"
    RECLAIMED = "NumberReclaimed"
    PAYMENT_RECEIVED = "ServicePaymentReceived"
    ARREARS_CLEARED = "ArrearsCleared"
    REALNAME_OVERDUE = "RealnameOverdue"
    REALNAME_RESTRICTED = "RealnameRestricted"
    REALNAME_SUSPENDED = "RealnameSuspended"
    REALNAME_CONFIRMED = "RealnameConfirmed"
    OPERATOR_SUSPENDED = "OperatorSuspended"
    OPERATOR_RESUMED = "OperatorResumed"
    TERMINATED = "ServiceTerminated"
    DETAILS_CHANGE_REPORTED = "DetailsChangeReported"
    RELEASED = "NumberReleased"


_ARREARS_KIND: Final = {
    ArrearsStage.RESTRICTED: ChangeKind.ARREARS_RESTRICTED,
    ArrearsStage.SUSPENDED: ChangeKind.ARREARS_SUSPENDED,
    ArrearsStage.FROZEN: ChangeKind.ARREARS_FROZEN,
    ArrearsStage.RECLAIMED: ChangeKind.RECLAIMED,
}
_REALNAME_KIND: Final = {
    RealnameStage.RESTRICTED: ChangeKind.REALNAME_RESTRICTED,
    RealnameStage.SUSPENDED: ChangeKind.REALNAME_SUSPENDED,
}


class DeadlineKind(StrEnum):
    """What happens at the next deadline (also shown to clients)."""

    QUARANTINE_END = "quarantine_end"
    BILLING = "billing"
    ARREARS = "arrears"
    REALNAME = "realname"


# Order in which deadlines falling on the same instant are taken: the quarantine
# ends before anything else, and a cycle is billed before an arrears or real-name
# stage changes what the rest of the time costs.
_DEADLINE_ORDER: Final = (
    DeadlineKind.QUARANTINE_END,
    DeadlineKind.BILLING,
    DeadlineKind.ARREARS,
    DeadlineKind.REALNAME,
)


class ServiceDurations(BaseModel):
    """The after-activation durations of one carrier (``CarrierDurations`` in
    settings; defaults from docs/domain.md). A plain model rather than the settings
    class because it travels in workflow input, where nothing may read the
    environment. Unknown keys are ignored so the whole ``CarrierDurations`` dump
    can be passed in."""

    model_config = _MODEL

    arrears_grace: PositiveDuration = timedelta(days=15)
    arrears_restricted: PositiveDuration = timedelta(days=30)
    arrears_suspended: PositiveDuration = timedelta(days=30)
    arrears_frozen: PositiveDuration = timedelta(days=180)
    quarantine: PositiveDuration = timedelta(days=90)
    billing_cycle: PositiveDuration = timedelta(days=30)
    realname_reconfirm_interval: PositiveDuration = timedelta(days=365)
    realname_grace: PositiveDuration = timedelta(days=15)
    realname_restricted: PositiveDuration = timedelta(days=30)
    details_change_working_days: Annotated[int, Field(ge=1)] = 10


class OperatorHold(BaseModel):
    model_config = _MODEL

    by: str
    reason: str
    at: AwareDatetime


class Closure(BaseModel):
    model_config = _MODEL

    reason: ClosureReason
    at: AwareDatetime
    quarantine_until: AwareDatetime
    released_at: AwareDatetime | None = None


class ServiceRecord(BaseModel):
    """Everything the service remembers; carried whole through continue-as-new."""

    model_config = _MODEL

    state: ServiceState = ServiceState.ACTIVE
    balance_fen: int
    min_monthly_spend_fen: Annotated[int, Field(ge=0)]
    # The running billing cycle and the chargeable time accrued in it up to
    # ``accrual_mark`` (time after the mark is added at the next change).
    cycle_number: Annotated[int, Field(ge=1)] = 1
    cycle_start: AwareDatetime
    accrued: timedelta = timedelta(0)
    accrual_mark: AwareDatetime
    arrears_stage: ArrearsStage = ArrearsStage.NONE
    arrears_stage_at: AwareDatetime | None = None
    realname_due_at: AwareDatetime
    realname_stage: RealnameStage = RealnameStage.CURRENT
    realname_stage_at: AwareDatetime | None = None
    operator_hold: OperatorHold | None = None
    closure: Closure | None = None
    recent_payment_ids: tuple[str, ...] = ()
    total_charged_fen: int = 0
    total_paid_fen: int = 0
    late_details_reports: int = 0
    # The holder's details as last reported changed (masked, by field name).
    details: dict[str, DetailValue] = Field(default_factory=dict)
    seq: int = 0

    @property
    def closed(self) -> bool:
        return self.closure is not None


class CarrierAction(StrEnum):
    """What the carrier is asked to do; each sets a target state, so repeating one is harmless."""

    RESUME = "resume"
    RESTRICT = "restrict"
    SUSPEND = "suspend"
    FREEZE = "freeze"
    DEPROVISION = "deprovision"  # stop routing and take the number back


_ACTION_FOR: Final = {
    ServiceState.ACTIVE: CarrierAction.RESUME,
    ServiceState.RESTRICTED: CarrierAction.RESTRICT,
    ServiceState.SUSPENDED: CarrierAction.SUSPEND,
    ServiceState.FROZEN: CarrierAction.FREEZE,
    ServiceState.QUARANTINED: CarrierAction.DEPROVISION,
}

Detail = str | int | bool | list[str] | dict[str, DetailValue] | None


class Change(BaseModel):
    """One change of the service: one domain event, and, when the state moved,
    one carrier action and one inventory update."""

    model_config = _MODEL

    seq: int
    kind: ChangeKind
    at: AwareDatetime
    state_before: ServiceState
    state_after: ServiceState
    balance_fen: int
    charge_fen: int = 0
    actor_id: str = "system"
    actor_role: str = "system"
    reason: str | None = None
    quarantine_until: AwareDatetime | None = None
    details: dict[str, Detail] = Field(default_factory=dict)

    @property
    def state_changed(self) -> bool:
        return self.state_before is not self.state_after

    @property
    def carrier_action(self) -> CarrierAction | None:
        if not self.state_changed:
            return None
        return _ACTION_FOR.get(self.state_after)


class Deadline(NamedTuple):
    at: datetime
    kind: DeadlineKind


class Outcome(NamedTuple):
    record: ServiceRecord
    changes: list[Change]


class ServiceRuleError(Exception):
    """A command that does not fit the current state or is malformed."""

    WRONG_STATE: Final = "wrong_state"
    INVALID: Final = "invalid_request"

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(code, message)

    def __str__(self) -> str:
        return self.message


class Actor(NamedTuple):
    id: str
    role: str


SYSTEM: Final = Actor("system", "system")


# ---------------------------------------------------------------------------
# Reading the record
# ---------------------------------------------------------------------------


def effective_state(record: ServiceRecord) -> ServiceState:
    """The most severe of the three holds, or the closure."""
    if record.closure is not None:
        if record.closure.released_at is not None:
            return ServiceState.RELEASED
        return ServiceState.QUARANTINED
    candidates = [
        _ARREARS_STATE[record.arrears_stage],
        _REALNAME_STATE[record.realname_stage],
        ServiceState.SUSPENDED if record.operator_hold is not None else ServiceState.ACTIVE,
    ]
    return max(candidates, key=_SEVERITY.__getitem__)


def next_bill_at(record: ServiceRecord, durations: ServiceDurations) -> datetime:
    return record.cycle_start + durations.billing_cycle


def deadlines(record: ServiceRecord, durations: ServiceDurations) -> list[Deadline]:
    """Every pending deadline, earliest first (ties in ``_DEADLINE_ORDER``)."""
    found: list[Deadline] = []
    if record.closure is not None:
        if record.closure.released_at is None:
            found.append(Deadline(record.closure.quarantine_until, DeadlineKind.QUARANTINE_END))
    else:
        found.append(Deadline(next_bill_at(record, durations), DeadlineKind.BILLING))
        if record.arrears_stage is not ArrearsStage.NONE:
            assert record.arrears_stage_at is not None
            found.append(
                Deadline(
                    record.arrears_stage_at + _arrears_stage_length(record.arrears_stage, durations),
                    DeadlineKind.ARREARS,
                )
            )
        realname_at = _realname_next_at(record, durations)
        if realname_at is not None:
            found.append(Deadline(realname_at, DeadlineKind.REALNAME))
    return sorted(found, key=lambda d: (d.at, _DEADLINE_ORDER.index(d.kind)))


def next_deadline(record: ServiceRecord, durations: ServiceDurations) -> Deadline | None:
    pending = deadlines(record, durations)
    return pending[0] if pending else None


def next_compliance_deadline(record: ServiceRecord, durations: ServiceDurations) -> Deadline | None:
    """The next deadline other than billing: when an arrears or real-name stage
    moves, or the quarantine ends. What dashboards and search attributes show,
    since a monthly bill on every number would bury the deadlines that matter."""
    return next((d for d in deadlines(record, durations) if d.kind is not DeadlineKind.BILLING), None)


def chargeable_so_far(record: ServiceRecord, now: datetime) -> timedelta:
    """Chargeable time in the running cycle up to ``now``."""
    extra = now - record.accrual_mark if record.state in CHARGEABLE else timedelta(0)
    return record.accrued + max(extra, timedelta(0))


def prorated_charge(min_monthly_spend_fen: int, chargeable: timedelta, cycle: timedelta) -> int:
    """The minimum spend for ``chargeable`` time of a ``cycle``, rounded down.

    Integer microseconds, so a full cycle costs exactly the minimum spend."""
    one = timedelta(microseconds=1)
    chargeable = min(max(chargeable, timedelta(0)), cycle)
    return min_monthly_spend_fen * (chargeable // one) // (cycle // one)


# ---------------------------------------------------------------------------
# Starting
# ---------------------------------------------------------------------------


def start(
    *,
    activated_at: datetime,
    balance_fen: int,
    min_monthly_spend_fen: int,
    durations: ServiceDurations,
    realname_confirmed_at: datetime | None = None,
) -> ServiceRecord:
    """The record at activation: the first cycle starts, and the real-name
    deadline runs from the last confirmation (the verification before activation).

    No change is produced: activation itself is the registration's last event."""
    return ServiceRecord(
        balance_fen=balance_fen,
        min_monthly_spend_fen=min_monthly_spend_fen,
        cycle_start=activated_at,
        accrual_mark=activated_at,
        realname_due_at=realname_due(realname_confirmed_at or activated_at, durations),
    )


def realname_due(confirmed_at: datetime, durations: ServiceDurations) -> datetime:
    """When real-name information confirmed at ``confirmed_at`` must be re-confirmed."""
    return confirmed_at + durations.realname_reconfirm_interval


# ---------------------------------------------------------------------------
# Time passing
# ---------------------------------------------------------------------------


def advance(record: ServiceRecord, now: datetime, durations: ServiceDurations) -> Outcome:
    """Take every deadline due at or before ``now``, in order."""
    _aware(now)
    changes: list[Change] = []
    while True:
        due = next_deadline(record, durations)
        if due is None or due.at > now:
            return Outcome(record, changes)
        record, fired = _fire(record, due, durations)
        changes.extend(fired)


def _fire(record: ServiceRecord, due: Deadline, durations: ServiceDurations) -> Outcome:
    at = due.at
    if due.kind is DeadlineKind.QUARANTINE_END:
        assert record.closure is not None
        return _transition(
            record,
            at,
            ChangeKind.RELEASED,
            {"closure": record.closure.model_copy(update={"released_at": at})},
        )
    if due.kind is DeadlineKind.BILLING:
        return _bill(record, at, durations)
    if due.kind is DeadlineKind.ARREARS:
        stage = _ARREARS_NEXT[record.arrears_stage]
        if stage is ArrearsStage.RECLAIMED:
            until = at + durations.quarantine
            return _transition(
                record,
                at,
                ChangeKind.RECLAIMED,
                {
                    "arrears_stage": stage,
                    "arrears_stage_at": at,
                    "closure": Closure(reason=ClosureReason.RECLAIMED, at=at, quarantine_until=until),
                },
                quarantine_until=until,
            )
        return _transition(record, at, _ARREARS_KIND[stage], {"arrears_stage": stage, "arrears_stage_at": at})
    # Real-name.
    if record.realname_stage is RealnameStage.CURRENT:
        return _transition(
            record,
            at,
            ChangeKind.REALNAME_OVERDUE,
            {"realname_stage": RealnameStage.OVERDUE, "realname_stage_at": at},
            details={"due_at": record.realname_due_at.isoformat()},
        )
    stage_rn = _REALNAME_NEXT[record.realname_stage]
    return _transition(
        record, at, _REALNAME_KIND[stage_rn], {"realname_stage": stage_rn, "realname_stage_at": at}
    )


def _bill(record: ServiceRecord, at: datetime, durations: ServiceDurations) -> Outcome:
    chargeable = chargeable_so_far(record, at)
    charge = prorated_charge(record.min_monthly_spend_fen, chargeable, durations.billing_cycle)
    billed, changes = _transition(
        record,
        at,
        ChangeKind.BILLED,
        {
            "balance_fen": record.balance_fen - charge,
            "total_charged_fen": record.total_charged_fen + charge,
            "cycle_number": record.cycle_number + 1,
            "cycle_start": at,
            "accrued": timedelta(0),
        },
        charge_fen=charge,
        details={
            "cycle_number": record.cycle_number,
            "cycle_start": record.cycle_start.isoformat(),
            "chargeable_seconds": int(chargeable.total_seconds()),
        },
    )
    if billed.balance_fen < 0 and billed.arrears_stage is ArrearsStage.NONE:
        billed, more = _transition(
            billed,
            at,
            ChangeKind.ARREARS_GRACE,
            {"arrears_stage": ArrearsStage.GRACE, "arrears_stage_at": at},
            details={"restrict_at": (at + durations.arrears_grace).isoformat()},
        )
        changes = changes + more
    return Outcome(billed, changes)


# ---------------------------------------------------------------------------
# Commands (Updates)
# ---------------------------------------------------------------------------


def is_duplicate_payment(record: ServiceRecord, payment_id: str) -> bool:
    return payment_id in record.recent_payment_ids


def check_pay(record: ServiceRecord, payment_id: str, amount_fen: int) -> None:
    _require_open(record, "the number was reclaimed or terminated; payments are no longer taken here")
    if not payment_id:
        raise ServiceRuleError(ServiceRuleError.INVALID, "a payment needs a payment_id")
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise ServiceRuleError(ServiceRuleError.INVALID, "amount_fen must be a positive integer")


def pay(record: ServiceRecord, now: datetime, payment_id: str, amount_fen: int, by: Actor) -> Outcome:
    """Credit a payment; if it settles the arrears before reclaim, lift them.

    A payment already seen is a no-op (no change), so a retried call never counts twice.
    """
    if is_duplicate_payment(record, payment_id):
        return Outcome(record, [])
    check_pay(record, payment_id, amount_fen)
    recent = (*record.recent_payment_ids, payment_id)[-RECENT_PAYMENT_IDS:]
    paid, changes = _transition(
        record,
        now,
        ChangeKind.PAYMENT_RECEIVED,
        {
            "balance_fen": record.balance_fen + amount_fen,
            "total_paid_fen": record.total_paid_fen + amount_fen,
            "recent_payment_ids": recent,
        },
        actor=by,
        details={"payment_id": payment_id, "amount_fen": amount_fen},
    )
    if paid.balance_fen >= 0 and paid.arrears_stage is not ArrearsStage.NONE:
        paid, more = _transition(
            paid,
            now,
            ChangeKind.ARREARS_CLEARED,
            {"arrears_stage": ArrearsStage.NONE, "arrears_stage_at": None},
            details={"cleared_stage": str(record.arrears_stage)},
        )
        changes = changes + more
    return Outcome(paid, changes)


def check_operator_suspend(record: ServiceRecord, reason: str) -> None:
    _require_open(record)
    _require_reason(reason)
    if record.operator_hold is not None:
        raise ServiceRuleError(ServiceRuleError.WRONG_STATE, "already suspended by an operator")


def operator_suspend(record: ServiceRecord, now: datetime, by: Actor, reason: str) -> Outcome:
    check_operator_suspend(record, reason)
    return _transition(
        record,
        now,
        ChangeKind.OPERATOR_SUSPENDED,
        {"operator_hold": OperatorHold(by=by.id, reason=reason.strip(), at=now)},
        actor=by,
        reason=reason.strip(),
    )


def check_operator_resume(record: ServiceRecord, reason: str) -> None:
    _require_open(record)
    _require_reason(reason)
    if record.operator_hold is None:
        raise ServiceRuleError(ServiceRuleError.WRONG_STATE, "not suspended by an operator")


def operator_resume(record: ServiceRecord, now: datetime, by: Actor, reason: str) -> Outcome:
    """Lift the operator's suspension; any other hold (arrears, real-name) stays."""
    check_operator_resume(record, reason)
    return _transition(
        record, now, ChangeKind.OPERATOR_RESUMED, {"operator_hold": None}, actor=by, reason=reason.strip()
    )


def check_terminate(record: ServiceRecord) -> None:
    _require_open(record, "already reclaimed or terminated")


def terminate(
    record: ServiceRecord, now: datetime, by: Actor, reason: str | None, durations: ServiceDurations
) -> Outcome:
    """销号: bill the running cycle's chargeable time, then quarantine the number.

    A negative balance stays recorded in the event; collecting it is not the
    number's business any more."""
    check_terminate(record)
    charge = prorated_charge(
        record.min_monthly_spend_fen, chargeable_so_far(record, now), durations.billing_cycle
    )
    until = now + durations.quarantine
    return _transition(
        record,
        now,
        ChangeKind.TERMINATED,
        {
            "balance_fen": record.balance_fen - charge,
            "total_charged_fen": record.total_charged_fen + charge,
            "accrued": timedelta(0),
            "closure": Closure(reason=ClosureReason.TERMINATED, at=now, quarantine_until=until),
        },
        actor=by,
        reason=(reason or "").strip() or None,
        charge_fen=charge,
        quarantine_until=until,
    )


def check_confirm_realname(record: ServiceRecord, reason: str) -> None:
    _require_open(record)
    _require_reason(reason)


def confirm_realname(
    record: ServiceRecord, now: datetime, by: Actor, reason: str, durations: ServiceDurations
) -> Outcome:
    """The holder's information is registered (or re-confirmed): lift the
    real-name hold and start the next interval."""
    check_confirm_realname(record, reason)
    due = realname_due(now, durations)
    return _transition(
        record,
        now,
        ChangeKind.REALNAME_CONFIRMED,
        {"realname_due_at": due, "realname_stage": RealnameStage.CURRENT, "realname_stage_at": None},
        actor=by,
        reason=reason.strip(),
        details={"previous_stage": str(record.realname_stage), "next_due_at": due.isoformat()},
    )


def details_change_due(changed_at: datetime, durations: ServiceDurations) -> datetime:
    """When a change of registered details made at ``changed_at`` must be reported by
    (《电信网码号资源管理办法》 Art. 26: 10 working days).

    ServiceRuleError for an instant the working-day arithmetic cannot place (year
    1 at +14:00 is before year 1 in China): refused, where an OverflowError would
    fail the workflow task over and over."""
    try:
        return add_working_days(changed_at, durations.details_change_working_days)
    except (OverflowError, ValueError) as exc:
        raise ServiceRuleError(
            ServiceRuleError.INVALID,
            "changed_at is outside the calendar: give when the details really changed",
        ) from exc


def check_report_details_change(
    record: ServiceRecord,
    now: datetime,
    changed_at: datetime,
    fields: Sequence[str],
    durations: ServiceDurations | None = None,
) -> None:
    """With ``durations``, also that the reporting deadline can be worked out."""
    _require_open(record)
    _aware(changed_at)
    if changed_at > now:
        raise ServiceRuleError(ServiceRuleError.INVALID, "changed_at is in the future")
    if not fields or any(not f.strip() for f in fields):
        raise ServiceRuleError(ServiceRuleError.INVALID, "name the changed fields")
    if durations is not None:
        details_change_due(changed_at, durations)


def report_details_change(
    record: ServiceRecord,
    now: datetime,
    by: Actor,
    changed_at: datetime,
    fields: Sequence[str],
    durations: ServiceDurations,
    *,
    values: Mapping[str, DetailValue] | None = None,
    due: datetime | None = None,
) -> Outcome:
    """Record a change of registered details, with their new ``values`` (masked,
    kept as the holder's current details); a report past the deadline (``due``,
    else worked out from ``changed_at``) is kept as late (a compliance finding for
    the operator), it does not stop the service."""
    check_report_details_change(record, now, changed_at, fields, durations)
    if due is None:
        due = details_change_due(changed_at, durations)
    late = now > due
    shown = dict(values or {})
    updates: dict[str, object] = {"late_details_reports": record.late_details_reports + int(late)}
    if shown:
        updates["details"] = merge_details(record.details, shown)
    return _transition(
        record,
        now,
        ChangeKind.DETAILS_CHANGE_REPORTED,
        updates,
        actor=by,
        details={
            "changed_at": changed_at.isoformat(),
            "due_by": due.isoformat(),
            "late": late,
            "fields": sorted({f.strip() for f in fields}),
            **({"values": shown} if shown else {}),
        },
    )


# ---------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------


def _transition(
    record: ServiceRecord,
    at: datetime,
    kind: ChangeKind,
    updates: dict[str, object],
    *,
    actor: Actor = SYSTEM,
    reason: str | None = None,
    charge_fen: int = 0,
    quarantine_until: datetime | None = None,
    details: dict[str, Detail] | None = None,
) -> Outcome:
    """Apply ``updates`` at ``at`` as one change.

    Chargeable time is accrued up to ``at`` under the state *before* the change,
    so a suspension at noon still bills the morning."""
    before = record.state
    accrued = chargeable_so_far(record, at)
    base: dict[str, object] = {"accrued": accrued, "accrual_mark": at, "seq": record.seq + 1}
    # model_copy skips validation; every value set here is built by this module.
    changed = record.model_copy(update={**base, **updates})
    after = effective_state(changed)
    changed = changed.model_copy(update={"state": after})
    change = Change(
        seq=changed.seq,
        kind=kind,
        at=at,
        state_before=before,
        state_after=after,
        balance_fen=changed.balance_fen,
        charge_fen=charge_fen,
        actor_id=actor.id,
        actor_role=actor.role,
        reason=reason,
        quarantine_until=quarantine_until,
        details=details or {},
    )
    return Outcome(changed, [change])


def _arrears_stage_length(stage: ArrearsStage, durations: ServiceDurations) -> timedelta:
    return {
        ArrearsStage.GRACE: durations.arrears_grace,
        ArrearsStage.RESTRICTED: durations.arrears_restricted,
        ArrearsStage.SUSPENDED: durations.arrears_suspended,
        ArrearsStage.FROZEN: durations.arrears_frozen,
    }[stage]


def _realname_next_at(record: ServiceRecord, durations: ServiceDurations) -> datetime | None:
    if record.realname_stage is RealnameStage.CURRENT:
        return record.realname_due_at
    if record.realname_stage is RealnameStage.SUSPENDED:
        return None
    assert record.realname_stage_at is not None
    length = (
        durations.realname_grace
        if record.realname_stage is RealnameStage.OVERDUE
        else durations.realname_restricted
    )
    return record.realname_stage_at + length


def _require_open(record: ServiceRecord, message: str = "the number was reclaimed or terminated") -> None:
    if record.closure is not None:
        raise ServiceRuleError(ServiceRuleError.WRONG_STATE, message)


def _require_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise ServiceRuleError(ServiceRuleError.INVALID, "a reason is required")
