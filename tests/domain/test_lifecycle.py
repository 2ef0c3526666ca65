"""Every registration is in exactly one lifecycle state; quarantine and release are never in service."""

from __future__ import annotations

import pytest

from domain.lifecycle import (
    NUMBER_IN_SERVICE,
    OPEN_REGISTRATION,
    Lifecycle,
    closure_after,
    lifecycle_of,
    service_stage_status,
)
from domain.service_rules import ClosureReason, ServiceState
from domain.timeline import TERMINAL_STATUSES, Stage, Status


@pytest.mark.parametrize(
    ("stage", "status", "expected"),
    [
        (Stage.APPLY, Status.SUBMITTED, Lifecycle.SUBMITTED),
        (Stage.AUDIT, Status.IN_REVIEW, Lifecycle.IN_REVIEW),
        (Stage.AUDIT, Status.CHANGES_REQUESTED, Lifecycle.CHANGES_REQUESTED),
        (Stage.ALLOCATE, Status.AWAITING_PREPAYMENT, Lifecycle.AWAITING_PAYMENT),
        (Stage.VERIFY, Status.AWAITING_VERIFICATION, Lifecycle.AWAITING_VERIFICATION),
        (Stage.ACTIVATE, Status.AWAITING_ACTIVATION, Lifecycle.AWAITING_ACTIVATION),
        (Stage.ACTIVATE, Status.PROVISIONING, Lifecycle.AWAITING_ACTIVATION),
    ],
)
def test_before_activation_follows_the_status(stage: Stage, status: Status, expected: Lifecycle) -> None:
    assert lifecycle_of(stage, status) is expected
    assert expected in OPEN_REGISTRATION


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_every_closing_status_is_closed(status: Status) -> None:
    assert lifecycle_of(Stage.CLOSED, status) is Lifecycle.CLOSED


@pytest.mark.parametrize(
    ("state", "closure", "expected"),
    [
        (ServiceState.ACTIVE, None, Lifecycle.IN_SERVICE),
        (ServiceState.RESTRICTED, None, Lifecycle.RESTRICTED),
        (ServiceState.SUSPENDED, None, Lifecycle.SUSPENDED),
        (ServiceState.FROZEN, None, Lifecycle.FROZEN),
        (ServiceState.QUARANTINED, ClosureReason.TERMINATED, Lifecycle.TERMINATED),
        (ServiceState.QUARANTINED, ClosureReason.RECLAIMED, Lifecycle.RECLAIMED),
        (ServiceState.RELEASED, ClosureReason.TERMINATED, Lifecycle.CLOSED),
    ],
)
def test_in_service_follows_the_service_state(
    state: ServiceState, closure: ClosureReason | None, expected: Lifecycle
) -> None:
    got = lifecycle_of(Stage.ACTIVE, Status.ACTIVE, state, closure)
    assert got is expected
    # A number in quarantine or released is never counted as in service.
    assert (got in NUMBER_IN_SERVICE) == (
        state in {ServiceState.ACTIVE, ServiceState.RESTRICTED, ServiceState.SUSPENDED, ServiceState.FROZEN}
    )


@pytest.mark.parametrize(
    ("closure", "stage", "status"),
    [
        (None, Stage.ACTIVE, Status.ACTIVE),
        (ClosureReason.TERMINATED, Stage.CLOSED, Status.TERMINATED),
        (ClosureReason.RECLAIMED, Stage.CLOSED, Status.RECLAIMED),
    ],
)
def test_a_service_that_ended_closes_the_registration(
    closure: ClosureReason | None, stage: Stage, status: Status
) -> None:
    assert service_stage_status(closure) == (stage, status)
    # The status it closed with says how, when the closure itself is not at hand.
    if closure is not None:
        assert lifecycle_of(stage, status, ServiceState.QUARANTINED) is Lifecycle(closure.value)
        assert lifecycle_of(stage, status, ServiceState.RELEASED) is Lifecycle.CLOSED


def test_the_service_events_say_how_it_ended() -> None:
    closure = None
    for event, expected in (
        ("ServiceBilled", None),
        ("NumberReclaimed", ClosureReason.RECLAIMED),
        ("NumberReleased", ClosureReason.RECLAIMED),
    ):
        closure = closure_after(event, closure)
        assert closure is expected
    assert closure_after("ServiceTerminated", None) is ClosureReason.TERMINATED
