"""Fee rules: integer fen, first prepayment of max(3 months, CNY 600)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.fees import FeeSchedule, first_prepayment_fen, format_cny


@pytest.mark.parametrize(
    ("monthly", "expected"),
    [
        (0, 60_000),  # floor applies to free tiers too
        (10_000, 60_000),  # 3 x CNY 100 = 300 < 600
        (20_000, 60_000),  # exactly at the floor
        (20_001, 60_003),
        (50_000, 150_000),
        (1_000_000, 3_000_000),
    ],
)
def test_first_prepayment_defaults(monthly: int, expected: int) -> None:
    assert first_prepayment_fen(monthly) == expected


def test_first_prepayment_settings() -> None:
    assert first_prepayment_fen(50_000, months=6) == 300_000
    assert first_prepayment_fen(10_000, months=1, floor_fen=0) == 10_000
    assert first_prepayment_fen(10_000, floor_fen=100_000) == 100_000


@given(
    monthly=st.integers(min_value=0, max_value=10**9),
    months=st.integers(min_value=1, max_value=24),
    floor=st.integers(min_value=0, max_value=10**7),
)
def test_first_prepayment_property(monthly: int, months: int, floor: int) -> None:
    fee = first_prepayment_fen(monthly, months, floor)
    assert isinstance(fee, int)
    assert fee >= floor
    assert fee >= months * monthly
    assert fee in (floor, months * monthly)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((-1,), ValueError),
        ((100, 0), ValueError),
        ((100, 3, -1), ValueError),
        ((100.0,), TypeError),
        (("100",), TypeError),
        ((True,), TypeError),
        ((100, 2.5), TypeError),
    ],
)
def test_first_prepayment_rejects_bad_input(args: tuple[object, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        first_prepayment_fen(*args)  # type: ignore[arg-type]


def test_fee_schedule() -> None:
    schedule = FeeSchedule.for_tier(50_000)
    assert schedule == FeeSchedule(min_monthly_spend_fen=50_000, first_prepayment_fen=150_000)
    assert FeeSchedule.for_tier(0).first_prepayment_fen == 60_000
    assert FeeSchedule.for_tier(50_000, months=1, floor_fen=0).first_prepayment_fen == 50_000
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.first_prepayment_fen = 1  # type: ignore[misc]
    assert dataclasses.asdict(schedule) == {"min_monthly_spend_fen": 50_000, "first_prepayment_fen": 150_000}


def test_fee_schedule_rejects_non_fen() -> None:
    with pytest.raises(ValueError):
        FeeSchedule(min_monthly_spend_fen=-1, first_prepayment_fen=0)
    with pytest.raises(TypeError):
        FeeSchedule(min_monthly_spend_fen=100, first_prepayment_fen=600.0)  # type: ignore[arg-type]


def test_format_cny() -> None:
    assert format_cny(60_000) == "CNY 600.00"
    assert format_cny(123_456_789) == "CNY 1,234,567.89"
    assert format_cny(5) == "CNY 0.05"
    assert format_cny(-150) == "-CNY 1.50"
