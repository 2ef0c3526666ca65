"""A registration rebuilt from its events alone: the pure fold and timeline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.applicant import ApplicationForm
from domain.masking import application_summary, mask_id_number, mask_phone
from domain.timeline import (
    ActorRole,
    Event,
    EventType,
    InvalidEventSequence,
    Stage,
    Status,
    WaitingFor,
    apply_event,
    fold,
    timeline,
)
from tests.domain.factories import AGENT_ID, LEGAL_REP_ID, agent_dict, agent_documents, valid_application_dict

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
STREAM = "app-1"


class Stream:
    """Builds one stream's events in order, as the workflow would."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.clock = T0

    def add(
        self,
        kind: EventType,
        payload: dict[str, Any] | None = None,
        *,
        after: timedelta = timedelta(hours=1),
        actor: str = "op_wang",
        role: ActorRole = ActorRole.OPERATOR,
        reason: str | None = None,
    ) -> Stream:
        self.clock += after
        self.events.append(
            Event(
                stream_id=STREAM,
                version=len(self.events) + 1,
                event_id=str(uuid.uuid4()),
                event_type=kind,
                actor=actor,
                actor_role=role,
                reason=reason,
                correlation_id="corr-1",
                occurred_at=self.clock,
                payload=payload or {},
            )
        )
        return self


def submitted() -> Stream:
    return Stream().add(
        EventType.APPLICATION_SUBMITTED,
        {
            "organisation_id": "org_acme",
            "carrier": "china_mobile",
            "company_name": "示例科技",
            "credit_code": "91440300MA5F1B2C3X",
            "number": "4001888888",
            "tier": "gold",
            "min_monthly_spend_fen": 50_000,
            "review_due": (T0 + timedelta(days=7)).isoformat(),
            "activation_at": None,
        },
        actor="key_acme",
        role=ActorRole.APPLICANT,
    )


def approved() -> Stream:
    return submitted().add(
        EventType.APPLICATION_APPROVED,
        {
            "number": "4001888888",
            "tier": "gold",
            "min_monthly_spend_fen": 50_000,
            "first_prepayment_fen": 150_000,
            "pay_by": (T0 + timedelta(days=8)).isoformat(),
        },
    )


def paid() -> Stream:
    return approved().add(
        EventType.PAYMENT_RECEIVED,
        {
            "payment_id": "p1",
            "amount_fen": 150_000,
            "paid_in_full": True,
            "verify_by": (T0 + timedelta(days=20)).isoformat(),
        },
        actor="key_acme",
        role=ActorRole.APPLICANT,
    )


def test_a_full_registration_folds_to_active() -> None:
    s = paid()
    s.add(EventType.VERIFICATION_PASSED, {"activation_at": (s.clock + timedelta(days=2)).isoformat()})
    s.add(EventType.PROVISIONING_STARTED, after=timedelta(days=2), actor="system", role=ActorRole.SYSTEM)
    s.add(EventType.NUMBER_ACTIVATED, {"carrier_reference": "REF-1"}, actor="system", role=ActorRole.SYSTEM)

    state = fold(s.events)

    assert state is not None
    assert (state.stage, state.status, state.waiting_for) == (Stage.ACTIVE, Status.ACTIVE, WaitingFor.NOTHING)
    assert state.number == "4001888888"
    assert (state.tier, state.min_monthly_spend_fen, state.first_prepayment_fen) == ("gold", 50_000, 150_000)
    assert state.paid_fen == 150_000
    assert state.carrier_reference == "REF-1"
    assert state.activated_at == s.clock
    assert state.version == 6
    assert state.created_at == T0 + timedelta(hours=1)
    assert state.next_deadline is None


def test_each_stage_says_what_it_waits_for_and_until_when() -> None:
    s = submitted()
    state = fold(s.events)
    assert state is not None
    assert (state.stage, state.waiting_for, state.next_deadline) == (
        Stage.AUDIT,
        WaitingFor.OPERATOR_DECISION,
        T0 + timedelta(days=7),
    )
    state = fold(approved().events)
    assert state is not None
    assert (state.stage, state.waiting_for, state.next_deadline) == (
        Stage.ALLOCATE,
        WaitingFor.PREPAYMENT,
        T0 + timedelta(days=8),
    )
    state = fold(paid().events)
    assert state is not None
    assert (state.stage, state.waiting_for, state.next_deadline) == (
        Stage.VERIFY,
        WaitingFor.VERIFICATION,
        T0 + timedelta(days=20),
    )


def test_verification_with_a_future_activation_time_waits_for_it() -> None:
    s = paid()
    at = s.clock + timedelta(days=3)
    s.add(EventType.VERIFICATION_PASSED, {"activation_at": at.isoformat()})
    state = fold(s.events)
    assert state is not None
    assert (state.status, state.waiting_for, state.next_deadline) == (
        Status.AWAITING_ACTIVATION,
        WaitingFor.ACTIVATION_TIME,
        at,
    )


def test_verification_with_activation_time_now_goes_straight_to_the_carrier() -> None:
    s = paid()
    s.add(EventType.VERIFICATION_PASSED, {"activation_at": (s.clock + timedelta(hours=1)).isoformat()})
    state = fold(s.events)
    assert state is not None
    assert (state.status, state.waiting_for) == (Status.PROVISIONING, WaitingFor.CARRIER)


def test_a_partial_payment_keeps_waiting_for_the_rest() -> None:
    s = approved().add(
        EventType.PAYMENT_RECEIVED, {"payment_id": "p1", "amount_fen": 100_000, "paid_in_full": False}
    )
    state = fold(s.events)
    assert state is not None
    assert (state.status, state.paid_fen, state.payment_ids) == (Status.AWAITING_PREPAYMENT, 100_000, ("p1",))
    s.add(
        EventType.PAYMENT_RECEIVED,
        {"payment_id": "p2", "amount_fen": 60_000, "paid_in_full": True, "verify_by": T0.isoformat()},
    )
    state = fold(s.events)
    assert state is not None
    assert (state.status, state.paid_fen, state.payment_ids) == (
        Status.AWAITING_VERIFICATION,
        160_000,
        ("p1", "p2"),
    )


def test_overdue_then_change_request_then_resubmission() -> None:
    s = submitted().add(
        EventType.REVIEW_OVERDUE, actor="system", role=ActorRole.SYSTEM, after=timedelta(days=7)
    )
    state = fold(s.events)
    assert state is not None
    assert state.overdue and state.status is Status.IN_REVIEW

    resubmit_by = s.clock + timedelta(days=8)
    s.add(
        EventType.CHANGES_REQUESTED,
        {
            "fields": ["contact_address"],
            "documents": ["business_licence"],
            "resubmit_by": resubmit_by.isoformat(),
        },
        reason="address differs from the licence",
    )
    state = fold(s.events)
    assert state is not None and state.change_request is not None
    assert not state.overdue, "the applicant's turn: the review clock is not running"
    assert state.status is Status.CHANGES_REQUESTED
    assert state.waiting_for is WaitingFor.RESUBMISSION
    assert state.next_deadline == resubmit_by
    assert state.change_request.fields == ("contact_address",)
    assert state.change_request.reason == "address differs from the licence"

    new_due = s.clock + timedelta(days=9)
    s.add(
        EventType.APPLICATION_RESUBMITTED,
        {"company_name": "新名字", "review_due": new_due.isoformat()},
        actor="key_acme",
        role=ActorRole.APPLICANT,
    )
    state = fold(s.events)
    assert state is not None
    assert (state.status, state.change_request, state.next_deadline) == (Status.IN_REVIEW, None, new_due)
    assert state.company_name == "新名字"


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (EventType.APPLICATION_REJECTED, Status.REJECTED),
        (EventType.APPLICATION_ABANDONED, Status.ABANDONED),
        (EventType.APPLICATION_WITHDRAWN, Status.WITHDRAWN),
        (EventType.NUMBER_LOST, Status.NUMBER_UNAVAILABLE),
    ],
)
def test_closing_events_in_audit(kind: EventType, status: Status) -> None:
    s = (
        submitted()
        .add(EventType.REVIEW_OVERDUE)
        .add(kind, {"reason_code": "documents_invalid"}, reason="why")
    )
    state = fold(s.events)
    assert state is not None
    assert (state.stage, state.status, state.waiting_for, state.overdue) == (
        Stage.CLOSED,
        status,
        WaitingFor.NOTHING,
        False,
    )
    assert state.next_deadline is None
    if kind is EventType.APPLICATION_REJECTED:
        assert (state.rejection_code, state.rejection_reason) == ("documents_invalid", "why")


@pytest.mark.parametrize(
    ("prefix", "kind", "status"),
    [
        (approved, EventType.PREPAYMENT_EXPIRED, Status.PREPAYMENT_EXPIRED),
        (paid, EventType.VERIFICATION_FAILED, Status.VERIFICATION_FAILED),
        (paid, EventType.VERIFICATION_EXPIRED, Status.VERIFICATION_EXPIRED),
    ],
)
def test_closing_events_after_approval(prefix: Any, kind: EventType, status: Status) -> None:
    state = fold(prefix().add(kind).events)
    assert state is not None
    assert (state.stage, state.status) == (Stage.CLOSED, status)


def test_at_activation_the_nearest_deadline_is_the_first_bill() -> None:
    s = paid()
    s.add(EventType.VERIFICATION_PASSED)
    s.add(
        EventType.NUMBER_ACTIVATED,
        {
            "realname_due_at": (s.clock + timedelta(days=365)).isoformat(),
            "first_bill_at": (s.clock + timedelta(days=30)).isoformat(),
        },
        after=timedelta(0),
    )
    state = fold(s.events)
    assert state is not None
    assert (state.next_deadline, state.next_deadline_kind) == (s.clock + timedelta(days=30), "billing")
    assert [e.next_deadline_kind for e in timeline(s.events)] == [
        "operator_decision",
        "prepayment",
        "verification",
        None,  # provisioning: the carrier answers, no deadline
        "billing",
    ]


def test_a_closing_event_after_payment_carries_what_is_owed_back() -> None:
    s = paid().add(EventType.APPLICATION_WITHDRAWN, {"refund_owed_fen": 150_000})
    state = fold(s.events)
    assert state is not None and state.refund_owed_fen == 150_000
    entries = timeline(s.events)
    assert [e.refund_owed_fen for e in entries] == [None, None, None, 150_000]


def test_a_resubmission_that_moved_the_hold_moves_the_number_and_its_fees() -> None:
    s = (
        submitted()
        .add(EventType.CHANGES_REQUESTED, {"fields": ["requested_number"], "resubmit_by": T0.isoformat()})
        .add(
            EventType.APPLICATION_RESUBMITTED,
            {
                "number": "4001000001",
                "previous_number": "4001888888",
                "tier": "silver",
                "min_monthly_spend_fen": 80_000,
            },
        )
    )
    state = fold(s.events)
    assert state is not None
    assert (state.number, state.tier, state.min_monthly_spend_fen) == ("4001000001", "silver", 80_000)
    kept = fold(
        submitted()
        .add(EventType.CHANGES_REQUESTED, {"resubmit_by": T0.isoformat()})
        .add(EventType.APPLICATION_RESUBMITTED, {})
        .events
    )
    assert kept is not None and (kept.number, kept.tier) == ("4001888888", "gold")


def test_a_refused_application_is_closed_with_its_problems() -> None:
    s = Stream().add(
        EventType.APPLICATION_REFUSED,
        {
            "organisation_id": "org_acme",
            "carrier": "china_mobile",
            "company_name": "示例科技",
            "credit_code": "91440300MA5F1B2C3X",
            "status": "invalid",
            "problems": [{"field": "documents", "code": "missing_document", "message": "..."}],
        },
    )
    state = fold(s.events)
    assert state is not None
    assert (state.stage, state.status) == (Stage.CLOSED, Status.INVALID)
    assert state.problems[0]["code"] == "missing_document"


def test_events_must_come_in_version_order_of_one_stream() -> None:
    events = approved().events
    with pytest.raises(InvalidEventSequence):
        fold([events[1], events[0]])
    with pytest.raises(InvalidEventSequence):
        apply_event(fold(events[:1]), events[0].model_copy(update={"version": 2, "stream_id": "other"}))
    assert fold([]) is None


def test_timeline_says_who_did_what_when_and_why() -> None:
    s = submitted().add(
        EventType.APPLICATION_REJECTED, {"reason_code": "identity_mismatch"}, reason="ID photo does not match"
    )
    entries = timeline(s.events)
    assert [(e.version, e.event_type, e.actor, e.actor_role, e.stage, e.status) for e in entries] == [
        (1, EventType.APPLICATION_SUBMITTED, "key_acme", ActorRole.APPLICANT, Stage.AUDIT, Status.IN_REVIEW),
        (2, EventType.APPLICATION_REJECTED, "op_wang", ActorRole.OPERATOR, Stage.CLOSED, Status.REJECTED),
    ]
    assert entries[1].reason == "ID photo does not match"
    assert entries[1].occurred_at == s.events[1].occurred_at
    assert all(e.correlation_id == "corr-1" for e in entries)
    assert entries[0].next_deadline == T0 + timedelta(days=7)


def test_events_round_trip_through_json_and_fold_the_same() -> None:
    s = paid()
    again = [Event.model_validate_json(e.model_dump_json()) for e in s.events]
    assert fold(again) == fold(s.events)


def test_masking_keeps_no_plaintext_id_numbers() -> None:
    assert mask_id_number("110101198001011234") == "110***********1234"
    assert mask_phone("13800138000") == "138****8000"
    form = ApplicationForm.model_validate(
        valid_application_dict(
            agent=agent_dict(),
            documents=valid_application_dict()["documents"] + agent_documents(),
        )
    )
    text = str(application_summary(form))
    assert LEGAL_REP_ID not in text and AGENT_ID not in text
    assert LEGAL_REP_ID[6:14] not in text, "the birth date is hidden too"
    assert "13800138000" not in text
