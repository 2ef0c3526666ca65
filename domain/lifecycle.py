"""One lifecycle value per registration, from application to the number's release.

``stage`` says which of the five registration steps a registration is in:
``active`` while the number is in service, ``closed`` once the registration has
ended, before activation or, after it, when the service ended (terminated or
reclaimed; the number in quarantine, then released). ``status`` says what
happened last (for a closed one, why it closed); ``service_state`` says what the
number does once in service. None of them alone answers a dashboard's question
"how many numbers are in service, how many suspended, how many closed". The
lifecycle does: every registration is in exactly one of these at any time, and
a number in quarantine or released is never counted as in service.

Pure: the one definition of these values. The read model stores them (the
``registration.lifecycle`` column), the workflows publish them as search
attributes and the API shows them, each computed here.
"""

from __future__ import annotations

from enum import StrEnum

from domain.service_rules import ChangeKind, ClosureReason, ServiceState
from domain.timeline import Stage, Status


class Lifecycle(StrEnum):
    SUBMITTED = "submitted"  # the apply step has not answered yet
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    AWAITING_PAYMENT = "awaiting_payment"
    AWAITING_VERIFICATION = "awaiting_verification"
    AWAITING_ACTIVATION = "awaiting_activation"  # includes the carrier call
    IN_SERVICE = "in_service"
    RESTRICTED = "restricted"
    SUSPENDED = "suspended"
    FROZEN = "frozen"
    TERMINATED = "terminated"  # the holder ended the service; the number is in quarantine
    RECLAIMED = "reclaimed"  # taken back for arrears or real-name; in quarantine
    CLOSED = "closed"  # ended before activation, or the number was released after quarantine


OPEN_REGISTRATION: frozenset[Lifecycle] = frozenset(
    {
        Lifecycle.SUBMITTED,
        Lifecycle.IN_REVIEW,
        Lifecycle.CHANGES_REQUESTED,
        Lifecycle.AWAITING_PAYMENT,
        Lifecycle.AWAITING_VERIFICATION,
        Lifecycle.AWAITING_ACTIVATION,
    }
)
"""Before activation and not closed: an application still being worked on."""

NUMBER_IN_SERVICE: frozenset[Lifecycle] = frozenset(
    {Lifecycle.IN_SERVICE, Lifecycle.RESTRICTED, Lifecycle.SUSPENDED, Lifecycle.FROZEN}
)
"""The holder still has the number (whatever its arrears)."""

_BEFORE_ACTIVE: dict[Status, Lifecycle] = {
    Status.SUBMITTED: Lifecycle.SUBMITTED,
    Status.IN_REVIEW: Lifecycle.IN_REVIEW,
    Status.CHANGES_REQUESTED: Lifecycle.CHANGES_REQUESTED,
    Status.AWAITING_PREPAYMENT: Lifecycle.AWAITING_PAYMENT,
    Status.AWAITING_VERIFICATION: Lifecycle.AWAITING_VERIFICATION,
    Status.AWAITING_ACTIVATION: Lifecycle.AWAITING_ACTIVATION,
    Status.PROVISIONING: Lifecycle.AWAITING_ACTIVATION,
}

_IN_SERVICE: dict[ServiceState, Lifecycle] = {
    ServiceState.ACTIVE: Lifecycle.IN_SERVICE,
    ServiceState.RESTRICTED: Lifecycle.RESTRICTED,
    ServiceState.SUSPENDED: Lifecycle.SUSPENDED,
    ServiceState.FROZEN: Lifecycle.FROZEN,
}


def lifecycle_of(
    stage: Stage,
    status: Status,
    service_state: ServiceState | None = None,
    closure: ClosureReason | None = None,
) -> Lifecycle:
    """The lifecycle of a registration at ``stage``/``status``; once activated,
    ``service_state`` (and, once in quarantine, why the service ended: ``closure``,
    or else the status it closed with) decide."""
    if service_state is None:
        if stage is Stage.CLOSED:
            return Lifecycle.CLOSED
        if stage is Stage.ACTIVE:
            return Lifecycle.IN_SERVICE
        return _BEFORE_ACTIVE.get(status, Lifecycle.SUBMITTED)
    if service_state is ServiceState.RELEASED:
        return Lifecycle.CLOSED
    if service_state is ServiceState.QUARANTINED:
        reason = closure or _CLOSURE_OF.get(status, ClosureReason.TERMINATED)
        return Lifecycle.TERMINATED if reason is ClosureReason.TERMINATED else Lifecycle.RECLAIMED
    return _IN_SERVICE[service_state]


_CLOSURE_OF: dict[Status, ClosureReason] = {
    Status.TERMINATED: ClosureReason.TERMINATED,
    Status.RECLAIMED: ClosureReason.RECLAIMED,
}
_STATUS_OF: dict[ClosureReason, Status] = {reason: status for status, reason in _CLOSURE_OF.items()}


def service_stage_status(closure: ClosureReason | None) -> tuple[Stage, Status]:
    """Stage and status of a registration whose number was activated: ``active``
    while the service runs; once it has ended (quarantine, then release)
    ``closed``, with ``terminated`` or ``reclaimed`` saying how."""
    if closure is None:
        return Stage.ACTIVE, Status.ACTIVE
    return Stage.CLOSED, _STATUS_OF[closure]


def closure_after(event_type: str, closure: ClosureReason | None) -> ClosureReason | None:
    """How the service has ended after one more of its events (``ChangeKind``
    values): ``ServiceTerminated`` and ``NumberReclaimed`` end it."""
    if event_type == ChangeKind.TERMINATED.value:
        return ClosureReason.TERMINATED
    if event_type == ChangeKind.RECLAIMED.value:
        return ClosureReason.RECLAIMED
    return closure
