"""One lifecycle value per registration, from application to the number's release.

``stage`` says which of the five registration steps a registration is in (and
stays ``active`` for as long as its workflow serves the number); ``status`` says
what happened last within the registration; ``service_state`` says what the
number does once in service. None of them alone answers a dashboard's question
"how many numbers are in service, how many suspended, how many closed". The
lifecycle does: every registration is in exactly one of these at any time, and
a number in quarantine or released is never counted as in service.

Pure: derived from the other fields, so the read model, the search attribute
and the API cannot disagree.
"""

from __future__ import annotations

from enum import StrEnum

from domain.service_rules import ClosureReason, ServiceState
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
    """The lifecycle of a registration at ``stage``/``status``; from ACTIVE on,
    ``service_state`` (and, once in quarantine, why the service ended) decide."""
    if stage is Stage.CLOSED:
        return Lifecycle.CLOSED
    if stage is not Stage.ACTIVE:
        return _BEFORE_ACTIVE.get(status, Lifecycle.SUBMITTED)
    state = service_state or ServiceState.ACTIVE
    if state is ServiceState.RELEASED:
        return Lifecycle.CLOSED
    if state is ServiceState.QUARANTINED:
        return Lifecycle.TERMINATED if closure is ClosureReason.TERMINATED else Lifecycle.RECLAIMED
    return _IN_SERVICE[state]
