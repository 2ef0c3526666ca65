"""The service state machine: billing, arrears, real-name, operator holds, termination."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.settings import CarrierDurations
from domain import service_rules as r
from domain.calendar import CHINA_TZ
from domain.service_rules import (
    ArrearsStage,
    CarrierAction,
    ChangeKind,
    ClosureReason,
    DeadlineKind,
    RealnameStage,
    ServiceDurations,
    ServiceRecord,
    ServiceRuleError,
    ServiceState,
)
from tests.calendar_support import seed_calendar

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
D = ServiceDurations()
SEEDS = seed_calendar()
DAY = timedelta(days=1)
TEN = D.details_change_working_days
SPEND = 30_000  # CNY 300 a month
OPERATOR = r.Actor("op-1", "operator")
HOLDER = r.Actor("user-1", "applicant")


def new(balance: int = 3 * SPEND, spend: int = SPEND, at: datetime = T0) -> ServiceRecord:
    return r.start(activated_at=at, balance_fen=balance, min_monthly_spend_fen=spend, durations=D)


def kinds(changes: list[r.Change]) -> list[ChangeKind]:
    return [c.kind for c in changes]


def actions(changes: list[r.Change]) -> list[CarrierAction]:
    return [a for c in changes if (a := c.carrier_action) is not None]


# --------------------------------------------------------------------------- settings


def test_durations_default_to_domain_md_and_match_settings() -> None:
    assert D.arrears_grace == 15 * DAY
    assert D.arrears_restricted == 30 * DAY
    assert D.arrears_suspended == 30 * DAY
    assert D.arrears_frozen == 180 * DAY
    assert D.quarantine == 90 * DAY
    # The whole CarrierDurations dump (as RegistrationTimings carries it) is accepted.
    dump = CarrierDurations(arrears_grace=timedelta(days=20)).model_dump(mode="json")
    parsed = ServiceDurations.model_validate(dump)
    assert parsed.arrears_grace == 20 * DAY
    assert parsed.billing_cycle == CarrierDurations().billing_cycle
    assert ServiceDurations.model_validate({}) == D


@pytest.mark.parametrize("field", ["arrears_grace", "billing_cycle", "quarantine", "realname_grace"])
def test_durations_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError):
        ServiceDurations.model_validate({field: "PT0S"})


def test_record_requires_aware_datetimes() -> None:
    with pytest.raises(ValueError):
        r.start(activated_at=datetime(2026, 1, 1), balance_fen=0, min_monthly_spend_fen=0, durations=D)


# --------------------------------------------------------------------------- start and billing


def test_start_sets_the_first_deadlines() -> None:
    rec = new()
    assert rec.state is ServiceState.ACTIVE
    assert r.next_bill_at(rec, D) == T0 + 30 * DAY
    assert rec.realname_due_at == T0 + 365 * DAY
    assert r.next_deadline(rec, D) == r.Deadline(T0 + 30 * DAY, DeadlineKind.BILLING)
    assert r.advance(rec, T0 + 30 * DAY - timedelta(microseconds=1), D).changes == []


def test_compliance_deadline_leaves_billing_out() -> None:
    rec = new(balance=0)
    assert r.next_compliance_deadline(rec, D) == r.Deadline(T0 + 365 * DAY, DeadlineKind.REALNAME)
    rec, _ = r.advance(rec, T0 + 30 * DAY, D)  # arrears start
    assert r.next_compliance_deadline(rec, D) == r.Deadline(T0 + 45 * DAY, DeadlineKind.ARREARS)
    rec, _ = r.terminate(rec, T0 + 31 * DAY, HOLDER, None, D)
    assert r.next_compliance_deadline(rec, D) == r.Deadline(T0 + 121 * DAY, DeadlineKind.QUARANTINE_END)


def test_prepayment_covers_three_cycles_then_arrears_start() -> None:
    rec = new()
    rec, changes = r.advance(rec, T0 + 90 * DAY, D)
    assert kinds(changes) == [ChangeKind.BILLED] * 3
    assert [c.charge_fen for c in changes] == [SPEND] * 3
    assert rec.balance_fen == 0
    assert rec.arrears_stage is ArrearsStage.NONE
    assert rec.cycle_number == 4
    rec, changes = r.advance(rec, T0 + 120 * DAY, D)
    assert kinds(changes) == [ChangeKind.BILLED, ChangeKind.ARREARS_GRACE]
    assert rec.balance_fen == -SPEND
    assert rec.arrears_stage is ArrearsStage.GRACE
    assert rec.state is ServiceState.ACTIVE  # grace: still in full service
    assert actions(changes) == []
    assert changes[1].details["restrict_at"] == (T0 + 135 * DAY).isoformat()


def test_changes_are_numbered_and_in_time_order() -> None:
    rec, changes = r.advance(new(balance=0), T0 + 400 * DAY, D)
    assert [c.seq for c in changes] == list(range(1, len(changes) + 1))
    assert [c.at for c in changes] == sorted(c.at for c in changes)
    assert rec.seq == len(changes)


def test_arrears_walk_every_stage_to_reclaim_quarantine_and_release() -> None:
    rec = new(balance=0)
    start = T0 + 30 * DAY  # the first bill makes the balance negative
    expected = [
        (start, ChangeKind.ARREARS_GRACE, ServiceState.ACTIVE, None),
        (start + 15 * DAY, ChangeKind.ARREARS_RESTRICTED, ServiceState.RESTRICTED, CarrierAction.RESTRICT),
        (start + 45 * DAY, ChangeKind.ARREARS_SUSPENDED, ServiceState.SUSPENDED, CarrierAction.SUSPEND),
        (start + 75 * DAY, ChangeKind.ARREARS_FROZEN, ServiceState.FROZEN, CarrierAction.FREEZE),
        (start + 255 * DAY, ChangeKind.RECLAIMED, ServiceState.QUARANTINED, CarrierAction.DEPROVISION),
        (start + 345 * DAY, ChangeKind.RELEASED, ServiceState.RELEASED, None),
    ]
    rec, changes = r.advance(rec, start + 400 * DAY, D)
    stage_changes = [c for c in changes if c.kind is not ChangeKind.BILLED]
    assert [(c.at, c.kind, c.state_after, c.carrier_action) for c in stage_changes] == expected
    assert stage_changes[4].quarantine_until == start + 345 * DAY
    assert rec.closure is not None and rec.closure.reason is ClosureReason.RECLAIMED
    assert rec.closure.released_at == start + 345 * DAY
    assert r.next_deadline(rec, D) is None
    # No bill after reclaim.
    assert max(c.at for c in changes if c.kind is ChangeKind.BILLED) < start + 255 * DAY


def test_a_whole_cycle_suspended_costs_nothing_and_starts_no_arrears() -> None:
    rec, _ = r.operator_suspend(new(balance=0), T0, OPERATOR, "complaints")
    rec, changes = r.advance(rec, T0 + 90 * DAY, D)
    assert [c.charge_fen for c in changes] == [0, 0, 0]
    assert rec.arrears_stage is ArrearsStage.NONE


def test_no_charges_while_suspended_or_frozen() -> None:
    rec = new(balance=0)
    rec, changes = r.advance(rec, T0 + 30 * DAY + 255 * DAY, D)
    suspended_from = T0 + 30 * DAY + 45 * DAY
    bills = [c for c in changes if c.kind is ChangeKind.BILLED]
    # Restricted time still costs; suspended and frozen time does not.
    for bill in bills:
        if bill.at - D.billing_cycle >= suspended_from:
            assert bill.charge_fen == 0, bill
    # The cycle in which the suspension began is charged pro rata.
    partial = next(b for b in bills if b.at - D.billing_cycle < suspended_from < b.at)
    chargeable = suspended_from - (partial.at - D.billing_cycle)
    assert partial.charge_fen == r.prorated_charge(SPEND, chargeable, D.billing_cycle)
    assert 0 < partial.charge_fen < SPEND


def test_operator_suspension_mid_cycle_bills_half() -> None:
    rec = new()
    rec, _ = r.operator_suspend(rec, T0 + 15 * DAY, OPERATOR, "complaints")
    rec, changes = r.advance(rec, T0 + 30 * DAY, D)
    assert [c.charge_fen for c in changes] == [SPEND // 2]
    rec, _ = r.operator_resume(rec, T0 + 40 * DAY, OPERATOR, "resolved")
    rec, changes = r.advance(rec, T0 + 60 * DAY, D)
    assert [c.charge_fen for c in changes] == [SPEND * 2 // 3]


@pytest.mark.parametrize(
    ("chargeable", "expected"),
    [
        (timedelta(0), 0),
        (30 * DAY, SPEND),
        (15 * DAY, SPEND // 2),
        (timedelta(seconds=1), 0),
        (40 * DAY, SPEND),
    ],
)
def test_prorated_charge(chargeable: timedelta, expected: int) -> None:
    assert r.prorated_charge(SPEND, chargeable, 30 * DAY) == expected


@given(
    spend=st.integers(min_value=0, max_value=10**8),
    seconds=st.integers(min_value=0, max_value=30 * 86400),
)
def test_prorated_charge_is_bounded_and_monotone(spend: int, seconds: int) -> None:
    cycle = 30 * DAY
    charge = r.prorated_charge(spend, timedelta(seconds=seconds), cycle)
    assert 0 <= charge <= spend
    assert charge <= r.prorated_charge(spend, timedelta(seconds=seconds + 1), cycle)


# --------------------------------------------------------------------------- payments


STAGE_TIMES = {
    ArrearsStage.GRACE: (1, ServiceState.ACTIVE),
    ArrearsStage.RESTRICTED: (16, ServiceState.RESTRICTED),
    ArrearsStage.SUSPENDED: (46, ServiceState.SUSPENDED),
    ArrearsStage.FROZEN: (76, ServiceState.FROZEN),
}


@pytest.mark.parametrize("stage", list(STAGE_TIMES))
def test_payment_before_reclaim_restores_service(stage: ArrearsStage) -> None:
    days, state = STAGE_TIMES[stage]
    rec = new(balance=0)
    now = T0 + 30 * DAY + days * DAY
    rec, _ = r.advance(rec, now, D)
    assert rec.arrears_stage is stage
    assert rec.state is state
    debt = -rec.balance_fen
    # Not enough: the arrears stay.
    rec, changes = r.pay(rec, now, "p-1", debt - 1, HOLDER)
    assert kinds(changes) == [ChangeKind.PAYMENT_RECEIVED]
    assert rec.arrears_stage is stage
    rec, changes = r.pay(rec, now, "p-2", 1, HOLDER)
    assert kinds(changes) == [ChangeKind.PAYMENT_RECEIVED, ChangeKind.ARREARS_CLEARED]
    assert rec.balance_fen == 0
    assert rec.arrears_stage is ArrearsStage.NONE
    assert rec.state is ServiceState.ACTIVE
    expected_actions = [] if state is ServiceState.ACTIVE else [CarrierAction.RESUME]
    assert actions(changes) == expected_actions
    assert r.next_deadline(rec, D) == r.Deadline(r.next_bill_at(rec, D), DeadlineKind.BILLING)


def test_duplicate_payment_is_a_no_op() -> None:
    rec = new()
    rec, changes = r.pay(rec, T0, "p-1", 100, HOLDER)
    assert len(changes) == 1
    again, changes = r.pay(rec, T0 + DAY, "p-1", 100, HOLDER)
    assert changes == []
    assert again == rec
    assert rec.total_paid_fen == 100


def test_recent_payment_ids_are_bounded() -> None:
    rec = new()
    for i in range(r.RECENT_PAYMENT_IDS + 10):
        rec, _ = r.pay(rec, T0, f"p-{i}", 1, HOLDER)
    assert len(rec.recent_payment_ids) == r.RECENT_PAYMENT_IDS
    assert rec.recent_payment_ids[-1] == f"p-{r.RECENT_PAYMENT_IDS + 9}"


@pytest.mark.parametrize("amount", [0, -5])
def test_payment_amount_must_be_positive(amount: int) -> None:
    with pytest.raises(ServiceRuleError) as err:
        r.pay(new(), T0, "p-1", amount, HOLDER)
    assert err.value.code == ServiceRuleError.INVALID


def test_no_payment_after_reclaim() -> None:
    rec, _ = r.advance(new(balance=0), T0 + 30 * DAY + 255 * DAY, D)
    assert rec.state is ServiceState.QUARANTINED
    with pytest.raises(ServiceRuleError) as err:
        r.pay(rec, T0 + 300 * DAY, "p-1", 10**6, HOLDER)
    assert err.value.code == ServiceRuleError.WRONG_STATE


# --------------------------------------------------------------------------- real-name


def test_realname_deadline_restricts_then_suspends_and_stays() -> None:
    rec = new(balance=10**9)
    due = T0 + 365 * DAY
    rec, changes = r.advance(rec, due + 200 * DAY, D)
    realname = [c for c in changes if c.kind is not ChangeKind.BILLED]
    assert [(c.at, c.kind, c.state_after) for c in realname] == [
        (due, ChangeKind.REALNAME_OVERDUE, ServiceState.ACTIVE),
        (due + 15 * DAY, ChangeKind.REALNAME_RESTRICTED, ServiceState.RESTRICTED),
        (due + 45 * DAY, ChangeKind.REALNAME_SUSPENDED, ServiceState.SUSPENDED),
    ]
    assert rec.realname_stage is RealnameStage.SUSPENDED
    assert rec.closure is None  # real-name alone never reclaims
    now = due + 200 * DAY
    rec, changes = r.confirm_realname(rec, now, OPERATOR, "documents registered", D)
    assert kinds(changes) == [ChangeKind.REALNAME_CONFIRMED]
    assert actions(changes) == [CarrierAction.RESUME]
    assert rec.state is ServiceState.ACTIVE
    assert rec.realname_due_at == now + 365 * DAY


def test_early_confirmation_moves_the_deadline() -> None:
    rec, _ = r.confirm_realname(new(), T0 + 100 * DAY, OPERATOR, "re-confirmed", D)
    assert rec.realname_due_at == T0 + 465 * DAY
    assert rec.realname_stage is RealnameStage.CURRENT


# --------------------------------------------------------------------------- operator and holds


def test_holds_combine_to_the_most_severe() -> None:
    rec = new(balance=0)
    rec, _ = r.advance(rec, T0 + 46 * DAY, D)  # arrears restricted
    assert rec.state is ServiceState.RESTRICTED
    rec, changes = r.operator_suspend(rec, T0 + 47 * DAY, OPERATOR, "improper marketing")
    assert actions(changes) == [CarrierAction.SUSPEND]
    assert rec.state is ServiceState.SUSPENDED
    # Paying clears the arrears, but the operator's suspension stays.
    rec, changes = r.pay(rec, T0 + 48 * DAY, "p-1", SPEND, HOLDER)
    assert kinds(changes) == [ChangeKind.PAYMENT_RECEIVED, ChangeKind.ARREARS_CLEARED]
    assert actions(changes) == []
    assert rec.state is ServiceState.SUSPENDED
    rec, changes = r.operator_resume(rec, T0 + 49 * DAY, OPERATOR, "cleared")
    assert actions(changes) == [CarrierAction.RESUME]
    assert rec.state is ServiceState.ACTIVE


def test_operator_resume_leaves_other_holds() -> None:
    rec = new(balance=0)
    rec, _ = r.advance(rec, T0 + 46 * DAY, D)
    assert rec.arrears_stage is ArrearsStage.RESTRICTED
    rec, _ = r.operator_suspend(rec, T0 + 47 * DAY, OPERATOR, "complaints")
    rec, changes = r.operator_resume(rec, T0 + 48 * DAY, OPERATOR, "complaint withdrawn")
    assert actions(changes) == [CarrierAction.RESTRICT]
    assert rec.state is ServiceState.RESTRICTED


def test_operator_actions_need_a_reason_and_the_right_state() -> None:
    rec = new()
    for reason in ("", "   "):
        with pytest.raises(ServiceRuleError) as err:
            r.operator_suspend(rec, T0, OPERATOR, reason)
        assert err.value.code == ServiceRuleError.INVALID
    with pytest.raises(ServiceRuleError) as err:
        r.operator_resume(rec, T0, OPERATOR, "why not")
    assert err.value.code == ServiceRuleError.WRONG_STATE
    rec, changes = r.operator_suspend(rec, T0, OPERATOR, "  complaints ")
    assert changes[0].reason == "complaints"
    assert changes[0].actor_id == "op-1"
    assert rec.operator_hold is not None and rec.operator_hold.reason == "complaints"
    with pytest.raises(ServiceRuleError) as err:
        r.operator_suspend(rec, T0, OPERATOR, "again")
    assert err.value.code == ServiceRuleError.WRONG_STATE


# --------------------------------------------------------------------------- termination


def test_termination_bills_the_partial_cycle_and_quarantines() -> None:
    rec = new()
    now = T0 + 10 * DAY
    rec, changes = r.terminate(rec, now, HOLDER, "closing the business", D)
    assert kinds(changes) == [ChangeKind.TERMINATED]
    (change,) = changes
    assert change.charge_fen == SPEND // 3
    assert change.carrier_action is CarrierAction.DEPROVISION
    assert change.quarantine_until == now + 90 * DAY
    assert rec.state is ServiceState.QUARANTINED
    assert rec.balance_fen == 3 * SPEND - SPEND // 3
    assert r.next_deadline(rec, D) == r.Deadline(now + 90 * DAY, DeadlineKind.QUARANTINE_END)
    rec, changes = r.advance(rec, now + 200 * DAY, D)
    assert kinds(changes) == [ChangeKind.RELEASED]  # no bills in quarantine
    assert rec.state is ServiceState.RELEASED
    with pytest.raises(ServiceRuleError):
        r.terminate(rec, now + 201 * DAY, HOLDER, None, D)


@pytest.mark.parametrize(
    "command",
    [
        lambda rec: r.operator_suspend(rec, T0 + DAY, OPERATOR, "x"),
        lambda rec: r.confirm_realname(rec, T0 + DAY, OPERATOR, "x", D),
        lambda rec: r.report_details_change(rec, T0 + DAY, HOLDER, T0, ["address"], T0 + 14 * DAY),
        lambda rec: r.terminate(rec, T0 + DAY, HOLDER, None, D),
    ],
)
def test_nothing_after_termination(command) -> None:  # type: ignore[no-untyped-def]
    rec, _ = r.terminate(new(), T0, HOLDER, None, D)
    with pytest.raises(ServiceRuleError) as err:
        command(rec)
    assert err.value.code == ServiceRuleError.WRONG_STATE


# --------------------------------------------------------------------------- details change


def cn(y: int, m: int, d: int, hh: int = 10) -> datetime:
    return datetime(y, m, d, hh, tzinfo=CHINA_TZ)


def test_details_change_due_counts_chinese_working_days() -> None:
    # Changed on Tuesday 2025-09-30; National Day 10-01..10-08 is off and Saturday
    # 10-11 is a make-up working day: 10 working days end on Tuesday 10-21.
    due = r.details_change_due(cn(2025, 9, 30), TEN, SEEDS)
    assert (due.at, due.provisional) == (cn(2025, 10, 21), False)
    # Across a year whose schedule is not loaded: Monday to Friday, provisional.
    due = r.details_change_due(cn(2026, 12, 28), TEN, SEEDS)
    assert (due.at, due.provisional) == (cn(2027, 1, 11), True)


def test_details_change_on_time_and_late() -> None:
    rec = new(at=cn(2025, 9, 1))
    due = cn(2025, 10, 21)
    rec, changes = r.report_details_change(rec, cn(2025, 10, 21), HOLDER, cn(2025, 9, 30), ["address"], due)
    assert changes[0].details["late"] is False
    assert changes[0].details["due_by"] == due.isoformat()
    assert changes[0].details["due_provisional"] is False
    assert rec.late_details_reports == 0
    assert changes[0].state_changed is False
    rec, changes = r.report_details_change(
        rec, cn(2025, 10, 22), HOLDER, cn(2025, 9, 30), ["contact_phone", "address", "address"], due, True
    )
    assert changes[0].details["late"] is True
    assert changes[0].details["due_provisional"] is True
    assert changes[0].details["fields"] == ["address", "contact_phone"]
    assert rec.late_details_reports == 1
    assert rec.state is ServiceState.ACTIVE  # late is a finding, not a suspension


def test_details_change_must_be_in_the_past_and_name_fields() -> None:
    rec = new()
    due = T0 + 14 * DAY
    with pytest.raises(ServiceRuleError):
        r.report_details_change(rec, T0, HOLDER, T0 + DAY, ["address"], due)
    with pytest.raises(ServiceRuleError):
        r.report_details_change(rec, T0, HOLDER, T0, [], due)
    with pytest.raises(ServiceRuleError):
        r.report_details_change(rec, T0, HOLDER, T0, [" "], due)
    with pytest.raises(ServiceRuleError):  # due before the change
        r.report_details_change(rec, T0, HOLDER, T0, ["address"], T0 - DAY)


def test_a_change_the_calendar_cannot_place_is_refused_not_a_crash() -> None:
    """0001-01-01 at +14:00 is an instant before year 1 in China: the working-day
    arithmetic overflowed. Counting its due date is a refusal (ServiceRuleError)."""
    before_year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    with pytest.raises(ServiceRuleError) as err:
        r.details_change_due(before_year_one, TEN, SEEDS)
    assert err.value.code == ServiceRuleError.INVALID


# --------------------------------------------------------------------------- carrier actions


@pytest.mark.parametrize(
    ("after", "action"),
    [
        (ServiceState.ACTIVE, CarrierAction.RESUME),
        (ServiceState.RESTRICTED, CarrierAction.RESTRICT),
        (ServiceState.SUSPENDED, CarrierAction.SUSPEND),
        (ServiceState.FROZEN, CarrierAction.FREEZE),
        (ServiceState.QUARANTINED, CarrierAction.DEPROVISION),
        (ServiceState.RELEASED, None),
    ],
)
def test_carrier_action_names_the_target_state(after: ServiceState, action: CarrierAction | None) -> None:
    before = ServiceState.SUSPENDED if after is ServiceState.ACTIVE else ServiceState.ACTIVE
    if after is ServiceState.RELEASED:
        before = ServiceState.QUARANTINED
    change = r.Change(
        seq=1, kind=ChangeKind.BILLED, at=T0, state_before=before, state_after=after, balance_fen=0
    )
    assert change.carrier_action is action
    same = change.model_copy(update={"state_before": after})
    assert same.carrier_action is None


# --------------------------------------------------------------------------- properties


Step = tuple[str, int, int]

steps = st.lists(
    st.tuples(
        st.sampled_from(
            ["wait", "wait", "wait", "pay", "suspend", "resume", "confirm", "report", "terminate"]
        ),
        st.integers(min_value=0, max_value=120 * 86400),  # seconds to wait first
        st.integers(min_value=1, max_value=4 * SPEND),  # amount, when paying
    ),
    max_size=25,
)


def run_steps(
    rec: ServiceRecord, todo: list[Step], durations: ServiceDurations
) -> tuple[ServiceRecord, list[r.Change], datetime]:
    now = T0
    changes: list[r.Change] = []
    for i, (op, wait, amount) in enumerate(todo):
        now += timedelta(seconds=wait)
        rec, fired = r.advance(rec, now, durations)
        changes += fired
        try:
            if op == "pay":
                rec, done = r.pay(rec, now, f"p-{i}", amount, HOLDER)
            elif op == "suspend":
                rec, done = r.operator_suspend(rec, now, OPERATOR, "complaints")
            elif op == "resume":
                rec, done = r.operator_resume(rec, now, OPERATOR, "resolved")
            elif op == "confirm":
                rec, done = r.confirm_realname(rec, now, OPERATOR, "confirmed", durations)
            elif op == "report":
                changed_at = now - timedelta(days=amount % 30)
                rec, done = r.report_details_change(
                    rec, now, HOLDER, changed_at, ["x"], changed_at + 14 * DAY
                )
            elif op == "terminate":
                rec, done = r.terminate(rec, now, HOLDER, None, durations)
            else:
                done = []
        except ServiceRuleError:
            done = []
        changes += done
    return rec, changes, now


short = ServiceDurations(
    arrears_grace=timedelta(days=3),
    arrears_restricted=timedelta(days=5),
    arrears_suspended=timedelta(days=5),
    arrears_frozen=timedelta(days=20),
    quarantine=timedelta(days=10),
    billing_cycle=timedelta(days=30),
    realname_reconfirm_interval=timedelta(days=60),
    realname_grace=timedelta(days=3),
    realname_restricted=timedelta(days=5),
)


@settings(max_examples=300, deadline=None)
@given(
    todo=steps,
    balance=st.integers(min_value=0, max_value=6 * SPEND),
    spend=st.sampled_from([0, 1, SPEND, 99_999]),
    durations=st.sampled_from([D, short]),
)
def test_invariants_hold_for_any_history(
    todo: list[Step], balance: int, spend: int, durations: ServiceDurations
) -> None:
    start = r.start(activated_at=T0, balance_fen=balance, min_monthly_spend_fen=spend, durations=durations)
    rec, changes, now = run_steps(start, todo, durations)

    # The stored state is always the one the holds imply.
    assert rec.state is r.effective_state(rec)
    # Money adds up, in integer fen.
    assert rec.balance_fen == balance + rec.total_paid_fen - rec.total_charged_fen
    assert rec.total_charged_fen == sum(c.charge_fen for c in changes)
    assert sum(c.charge_fen for c in changes if c.kind is ChangeKind.BILLED) <= spend * sum(
        1 for c in changes if c.kind is ChangeKind.BILLED
    )
    # Arrears exactly when the balance is negative (until the number is taken back).
    if not rec.closed:
        assert (rec.arrears_stage is not ArrearsStage.NONE) == (rec.balance_fen < 0)
    # Changes are numbered without gaps, in time order; each is one state step.
    assert [c.seq for c in changes] == list(range(1, len(changes) + 1))
    assert all(a.at <= b.at for a, b in itertools.pairwise(changes))
    assert all(a.state_after is b.state_before for a, b in itertools.pairwise(changes))
    if changes:
        assert changes[-1].state_after is rec.state
    # A carrier call exactly when the state moved; closed never reopens.
    for c in changes:
        moved = c.state_changed and c.state_after is not ServiceState.RELEASED
        assert (c.carrier_action is not None) == moved
        if c.state_before in (ServiceState.QUARANTINED, ServiceState.RELEASED):
            assert c.state_after in (ServiceState.QUARANTINED, ServiceState.RELEASED)
    # Nothing is left due once time has been advanced.
    caught_up, more = r.advance(rec, now, durations)
    assert more == [] and caught_up == rec
    after = r.next_deadline(rec, durations)
    assert after is None or after.at > now


@settings(max_examples=200, deadline=None)
@given(
    balance=st.integers(min_value=0, max_value=6 * SPEND),
    first=st.integers(min_value=0, max_value=500 * 86400),
    second=st.integers(min_value=0, max_value=500 * 86400),
    durations=st.sampled_from([D, short]),
)
def test_advancing_in_steps_equals_advancing_at_once(
    balance: int, first: int, second: int, durations: ServiceDurations
) -> None:
    rec = r.start(activated_at=T0, balance_fen=balance, min_monthly_spend_fen=SPEND, durations=durations)
    t1 = T0 + timedelta(seconds=first)
    t2 = t1 + timedelta(seconds=second)
    once, all_changes = r.advance(rec, t2, durations)
    mid, part1 = r.advance(rec, t1, durations)
    twice, part2 = r.advance(mid, t2, durations)
    assert once == twice
    assert all_changes == part1 + part2


@settings(max_examples=200, deadline=None)
@given(todo=steps, durations=st.sampled_from([D, short]))
def test_no_charge_accrues_while_suspended_or_frozen(todo: list[Step], durations: ServiceDurations) -> None:
    """Replaying the changes, every bill equals the pro-rata charge of the time the
    number spent active or restricted in its cycle."""
    start = r.start(activated_at=T0, balance_fen=0, min_monthly_spend_fen=SPEND, durations=durations)
    _, changes, _ = run_steps(start, todo, durations)
    state = ServiceState.ACTIVE
    since = T0
    chargeable = timedelta(0)
    for c in changes:
        if state in r.CHARGEABLE:
            chargeable += c.at - since
        since = c.at
        if c.kind is ChangeKind.BILLED:
            assert c.charge_fen == r.prorated_charge(SPEND, chargeable, durations.billing_cycle)
            chargeable = timedelta(0)
        if c.kind is ChangeKind.TERMINATED:
            assert c.charge_fen == r.prorated_charge(SPEND, chargeable, durations.billing_cycle)
        state = c.state_after
