"""Registration activities against the real database: one transaction per step, exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.carrier import FakeCarrier, ProvisionRequest
from activities.registration import (
    ERR_CARRIER_REJECTED,
    ERR_CARRIER_UNAVAILABLE,
    ApplyCommand,
    ApproveCommand,
    InventoryAction,
    RegistrationActivities,
    RenewHoldCommand,
    ResubmitCommand,
    TransitionCommand,
)
from activities.repositories import events, inventory
from api.ids import new_id
from app.settings import Settings
from domain.timeline import (
    ActorRole,
    ChangeRequestState,
    Event,
    EventType,
    RegistrationState,
    Stage,
    Status,
    apply_event,
)
from tests.domain.factories import LEGAL_REP_ID, document_dict
from tests.workflows import support as s


@pytest.fixture
def acts(pool: asyncpg.Pool, settings: Settings) -> RegistrationActivities:
    return RegistrationActivities(pool, settings, FakeCarrier(pool))


def draft(stream: str, version: int, kind: EventType, payload: dict[str, Any] | None = None) -> Event:
    return Event(
        stream_id=stream,
        version=version,
        event_id=str(uuid.uuid4()),
        event_type=kind,
        actor="op_test",
        actor_role=ActorRole.OPERATOR,
        correlation_id="corr-test",
        occurred_at=datetime.now(UTC),
        payload=payload or {},
    )


def later(days: float = 7) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


async def applied(acts: RegistrationActivities, number: str | None, **form: Any) -> RegistrationState:
    stream = new_id("app")
    cmd = ApplyCommand(
        workflow_id=f"registration-{stream}",
        event=draft(stream, 1, EventType.APPLICATION_SUBMITTED, {"review_due": later().isoformat()}),
        form=s.application(number, **form),
        hold_expires_at=later(),
    )
    result = await acts.apply(cmd)
    assert result.event is not None
    return apply_event(None, result.event)


async def test_apply_holds_records_and_writes_the_read_model_once(acts, pool) -> None:
    number = await s.fresh_number(pool)
    stream = new_id("app")
    cmd = ApplyCommand(
        workflow_id=f"registration-{stream}",
        event=draft(stream, 1, EventType.APPLICATION_SUBMITTED, {"review_due": later().isoformat()}),
        form=s.application(number),
        hold_expires_at=later(),
    )
    first = await acts.apply(cmd)
    again = await acts.apply(cmd)

    assert first.event is not None and not first.duplicate
    assert again.duplicate and again.event == first.event
    assert first.event.payload["number"] == number
    row = await s.number_row(pool, number)
    assert (row["status"], row["registration_id"]) == ("held", stream)
    stored = await s.stream(pool, stream)
    assert [e.event_id for e in stored] == [cmd.event.event_id]
    model = await s.read_model(pool, stream)
    assert model is not None
    assert (model["stage"], model["status"], model["number"], model["last_event_version"]) == (
        "audit",
        "in_review",
        number,
        1,
    )
    assert LEGAL_REP_ID not in str(stored[0].payload) and LEGAL_REP_ID not in str(dict(model))


async def test_concurrent_duplicates_of_one_step_append_once(acts, pool) -> None:
    number = await s.fresh_number(pool)
    state = await applied(acts, number)
    cmd = TransitionCommand(
        workflow_id=f"registration-{state.application_id}",
        state=state,
        event=draft(state.application_id, 2, EventType.APPLICATION_REJECTED, {"reason_code": "other"}),
        action=InventoryAction.RELEASE,
    )
    results = await asyncio.gather(*(acts.record(cmd) for _ in range(4)))
    assert len({r.event.event_id for r in results if r.event}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert [e.event_type for e in await s.stream(pool, state.application_id)] == [
        EventType.APPLICATION_SUBMITTED,
        EventType.APPLICATION_REJECTED,
    ]
    row = await s.number_row(pool, number)
    assert (row["status"], row["registration_id"]) == ("available", None)


async def test_another_step_at_a_taken_version_is_returned_as_superseded_and_changes_nothing(
    acts, pool
) -> None:
    """A worker died after committing a step; the replay drafted a different step
    at that version. The stored step comes back as what happened first, never as
    the draft's own success, and nothing of the draft is written."""
    number = await s.fresh_number(pool)
    state = await applied(acts, number)
    cmd = TransitionCommand(
        workflow_id=f"registration-{state.application_id}",
        state=state.model_copy(update={"version": 0}),
        event=draft(state.application_id, 1, EventType.APPLICATION_REJECTED),
        action=InventoryAction.RELEASE,
    )
    result = await acts.record(cmd)
    assert result.superseded and not result.duplicate
    assert result.event is not None and result.event.event_type is EventType.APPLICATION_SUBMITTED
    assert result.event.event_id != cmd.event.event_id
    assert (await s.number_row(pool, number))["status"] == "held", "the release rolled back with the append"
    assert len(await s.stream(pool, state.application_id)) == 1


async def test_a_version_taken_in_another_stream_is_a_conflict(acts, pool) -> None:
    """Only the stream's own stored step can stand in for a draft: an event id
    stored under another stream is a conflict no retry fixes."""
    number = await s.fresh_number(pool)
    state = await applied(acts, number)
    other = await applied(acts, await s.fresh_number(pool))
    stolen = (await s.stream(pool, other.application_id))[0]
    cmd = TransitionCommand(
        workflow_id=f"registration-{state.application_id}",
        state=state,
        event=draft(state.application_id, 2, EventType.APPLICATION_REJECTED).model_copy(
            update={"event_id": stolen.event_id}
        ),
        action=InventoryAction.RELEASE,
    )
    with pytest.raises(ApplicationError) as caught:
        await acts.record(cmd)
    assert caught.value.non_retryable
    assert (await s.number_row(pool, number))["status"] == "held"


async def test_an_invalid_application_is_refused_without_a_hold(acts, pool) -> None:
    number = await s.fresh_number(pool)
    state = await applied(acts, number, documents=[document_dict("business_licence")])
    assert (state.stage, state.status) == (Stage.CLOSED, Status.INVALID)
    assert {p["code"] for p in state.problems} == {"missing_document"}
    assert (await s.number_row(pool, number))["status"] == "available"
    model = await s.read_model(pool, state.application_id)
    assert model is not None and model["status"] == "invalid"


async def test_criteria_that_cannot_be_searched_are_refused(acts, pool) -> None:
    state = await applied(acts, None, number_criteria={"pattern_tag": "no_such_tag"})
    assert state.status is Status.INVALID
    assert state.problems[0]["field"] == "number_criteria"


async def test_approval_fixes_the_fees_from_the_tier(acts, pool) -> None:
    number = await s.fresh_number(pool)
    state = await applied(acts, number)
    result = await acts.approve(
        ApproveCommand(
            workflow_id=f"registration-{state.application_id}",
            state=state,
            event=draft(
                state.application_id, 2, EventType.APPLICATION_APPROVED, {"pay_by": later().isoformat()}
            ),
            prepayment_months=3,
            prepayment_floor_fen=60_000,
            hold_expires_at=later(),
        )
    )
    assert result.event is not None
    p = result.event.payload
    row = await s.number_row(pool, number)
    assert row["status"] == "allocated"
    assert p["min_monthly_spend_fen"] == row["min_monthly_spend_fen"]
    assert p["first_prepayment_fen"] == max(3 * row["min_monthly_spend_fen"], 60_000)
    model = await s.read_model(pool, state.application_id)
    assert model is not None and model["first_prepayment_fen"] == p["first_prepayment_fen"]


async def _lapse_hold(pool: asyncpg.Pool, number: str) -> None:
    await pool.execute(
        "UPDATE number_inventory SET hold_expires_at = now() - interval '1 minute' WHERE number = $1", number
    )


async def test_approval_after_a_lapsed_hold_takes_the_number_again(acts, pool) -> None:
    number = await s.fresh_number(pool)
    state = await applied(acts, number)
    await _lapse_hold(pool, number)
    async with pool.acquire() as conn:
        await inventory.release_expired(conn, datetime.now(UTC))
    assert (await s.number_row(pool, number))["status"] == "available"
    result = await acts.approve(
        ApproveCommand(
            workflow_id=f"registration-{state.application_id}",
            state=state,
            event=draft(state.application_id, 2, EventType.APPLICATION_APPROVED),
            prepayment_months=3,
            prepayment_floor_fen=60_000,
            hold_expires_at=later(),
        )
    )
    assert result.event is not None and result.event.event_type is EventType.APPLICATION_APPROVED
    assert (await s.number_row(pool, number))["status"] == "allocated"


async def test_approval_after_the_number_was_taken_records_it_lost(acts, pool) -> None:
    number = await s.fresh_number(pool)
    state = await applied(acts, number)
    await _lapse_hold(pool, number)
    other = await applied(acts, number)
    assert other.number == number, "someone else took the lapsed number"
    result = await acts.approve(
        ApproveCommand(
            workflow_id=f"registration-{state.application_id}",
            state=state,
            event=draft(state.application_id, 2, EventType.APPLICATION_APPROVED),
            prepayment_months=3,
            prepayment_floor_fen=60_000,
            hold_expires_at=later(),
        )
    )
    assert result.event is not None and result.event.event_type is EventType.NUMBER_LOST
    row = await s.number_row(pool, number)
    assert (row["status"], row["registration_id"]) == ("held", other.application_id)
    model = await s.read_model(pool, state.application_id)
    assert model is not None and model["status"] == "number_unavailable"


async def test_a_resubmission_may_not_change_carrier_or_organisation(acts, pool) -> None:
    number = await s.fresh_number(pool)
    state = await applied(acts, number)
    result = await acts.resubmit(
        ResubmitCommand(
            workflow_id=f"registration-{state.application_id}",
            state=state,
            event=draft(state.application_id, 2, EventType.APPLICATION_RESUBMITTED),
            form=s.application(number, carrier="china_unicom", organisation_id="org_other"),
        )
    )
    assert result.event is None
    assert {(p["field"], p["code"]) for p in result.problems} == {
        ("carrier", "cannot_change"),
        ("organisation_id", "cannot_change"),
    }
    assert len(await s.stream(pool, state.application_id)) == 1


def _resubmission(state: RegistrationState, number: str | None, **form: Any) -> ResubmitCommand:
    return ResubmitCommand(
        workflow_id=f"registration-{state.application_id}",
        state=state,
        event=draft(state.application_id, 2, EventType.APPLICATION_RESUBMITTED),
        form=s.application(number, **form),
        previous=s.application(state.number),
        hold_expires_at=later(),
    )


async def test_a_resubmission_asking_for_another_number_moves_the_hold_in_its_step(acts, pool) -> None:
    old, new = await s.fresh_number(pool), await s.fresh_number(pool)
    state = await applied(acts, old)
    cmd = _resubmission(state, new)
    result = await acts.resubmit(cmd)
    assert result.event is not None
    payload = result.event.payload
    record = await s.number_row(pool, new)
    assert (payload["number"], payload["previous_number"], payload["tier"]) == (new, old, record["tier"])
    assert (record["status"], record["registration_id"]) == ("held", state.application_id)
    assert (await s.number_row(pool, old))["status"] == "available"
    after = apply_event(state, result.event)
    assert (after.number, after.tier, after.summary["requested_number"]) == (new, record["tier"], new)
    model = await s.read_model(pool, state.application_id)
    assert model is not None and (model["number"], model["tier"]) == (new, record["tier"])
    # A retry of the committed step changes nothing more.
    again = await acts.resubmit(cmd)
    assert again.duplicate and again.event == result.event
    assert (await s.number_row(pool, new))["registration_id"] == state.application_id
    # The resubmitted form is the application's current one, stored with its event
    # (once): what a workflow that applies the event without its Update reads back.
    current = await acts.current_form(state.application_id)
    assert current is not None and current.requested_number == new
    forms = await pool.fetchval(
        "SELECT count(*) FROM application_form WHERE application_id = $1", state.application_id
    )
    assert forms == 2  # as submitted (the apply step) and as resubmitted


async def test_a_resubmission_whose_number_was_taken_meanwhile_keeps_the_old_hold(acts, pool) -> None:
    """The API checked the number; another application took it before the step ran."""
    old, wanted = await s.fresh_number(pool), await s.fresh_number(pool)
    state = await applied(acts, old)
    other = await applied(acts, wanted)
    result = await acts.resubmit(_resubmission(state, wanted))
    assert result.event is None
    assert [(p["field"], p["code"]) for p in result.problems] == [("requested_number", "number_unavailable")]
    assert (
        (await s.number_row(pool, old))["registration_id"],
        (await s.number_row(pool, wanted))["registration_id"],
    ) == (
        state.application_id,
        other.application_id,
    )
    assert len(await s.stream(pool, state.application_id)) == 1


async def test_a_resubmission_must_change_what_the_change_request_named(acts, pool) -> None:
    number = await s.fresh_number(pool)
    state = await applied(acts, number)
    state = state.model_copy(
        update={
            "status": Status.CHANGES_REQUESTED,
            "change_request": ChangeRequestState(
                fields=("contact_address", "legal_representative.phone"),
                documents=("business_licence",),
                requested_at=datetime.now(UTC),
                resubmit_by=later(),
            ),
        }
    )
    # The same phone typed otherwise is the same phone.
    person = {"name": "张伟", "id_number": LEGAL_REP_ID, "phone": "138-0013-8000"}
    same = await acts.resubmit(_resubmission(state, number, legal_representative=person))
    assert same.event is None
    assert [(p["field"], p["code"]) for p in same.problems] == [
        ("contact_address", "unchanged"),
        ("legal_representative.phone", "unchanged"),
        ("documents", "unchanged_document"),
    ]
    assert "business_licence" in same.problems[2]["message"]


async def test_renew_hold_moves_the_lease(acts, pool) -> None:
    number = await s.fresh_number(pool)
    state = await applied(acts, number)
    until = later(30)
    assert await acts.renew_hold(
        RenewHoldCommand(registration_id=state.application_id, number=number, expires_at=until)
    )
    assert (await s.number_row(pool, number))["hold_expires_at"] == until
    assert not await acts.renew_hold(
        RenewHoldCommand(registration_id="someone-else", number=number, expires_at=until)
    )


async def test_provision_maps_carrier_failures_to_retryable_or_not(acts, pool) -> None:
    number = await s.fresh_number(pool)
    request = ProvisionRequest(
        request_id=f"req-{uuid.uuid4()}",
        registration_id="r",
        number=number,
        carrier=s.CARRIER,
        destinations=[],
    )
    env = ActivityEnvironment()
    await s.inject_fault(pool, number, fail_times=1)
    with pytest.raises(ApplicationError) as caught:
        await env.run(acts.provision, request)
    assert caught.value.type == ERR_CARRIER_UNAVAILABLE and not caught.value.non_retryable
    result = await env.run(acts.provision, request)
    assert result.request_id == request.request_id

    refused = request.model_copy(update={"request_id": f"req-{uuid.uuid4()}"})
    await s.inject_fault(pool, number, reject=True)
    with pytest.raises(ApplicationError) as caught:
        await env.run(acts.provision, refused)
    assert caught.value.type == ERR_CARRIER_REJECTED and caught.value.non_retryable


async def test_the_read_model_never_goes_back_a_version(pool) -> None:
    stream = new_id("app")
    base = RegistrationState(
        application_id=stream,
        organisation_id="org",
        carrier=s.CARRIER,
        company_name="c",
        credit_code="x",
        stage=Stage.AUDIT,
        status=Status.IN_REVIEW,
        created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
    )
    async with pool.acquire() as conn:
        await events.save_registration(conn, base.model_copy(update={"version": 2}), "wf")
        await events.save_registration(
            conn, base.model_copy(update={"version": 1, "status": Status.CHANGES_REQUESTED}), "wf"
        )
        row = await events.get_registration(conn, stream)
    assert row is not None and (row["status"], row["last_event_version"]) == ("in_review", 2)
