"""Fee rules for an allocated 400 number.

Money is always an integer number of fen (1 CNY = 100 fen): floats cannot hold
0.1 exactly, and a ledger that drifts by a fen fails reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREPAYMENT_MONTHS = 3
DEFAULT_PREPAYMENT_FLOOR_FEN = 60_000  # CNY 600


def first_prepayment_fen(
    min_monthly_spend_fen: int,
    months: int = DEFAULT_PREPAYMENT_MONTHS,
    floor_fen: int = DEFAULT_PREPAYMENT_FLOOR_FEN,
) -> int:
    """The first prepayment: at least ``months`` of the minimum monthly spend
    and at least ``floor_fen``."""
    _check_fen(min_monthly_spend_fen, "min_monthly_spend_fen")
    _check_fen(floor_fen, "floor_fen")
    if _as_int(months, "months") < 1:
        raise ValueError(f"months must be at least 1, got {months}")
    return max(months * min_monthly_spend_fen, floor_fen)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """The fees fixed for a number when it is allocated."""

    min_monthly_spend_fen: int
    first_prepayment_fen: int

    def __post_init__(self) -> None:
        _check_fen(self.min_monthly_spend_fen, "min_monthly_spend_fen")
        _check_fen(self.first_prepayment_fen, "first_prepayment_fen")

    @classmethod
    def for_tier(
        cls,
        min_monthly_spend_fen: int,
        months: int = DEFAULT_PREPAYMENT_MONTHS,
        floor_fen: int = DEFAULT_PREPAYMENT_FLOOR_FEN,
    ) -> FeeSchedule:
        return cls(
            min_monthly_spend_fen=min_monthly_spend_fen,
            first_prepayment_fen=first_prepayment_fen(min_monthly_spend_fen, months, floor_fen),
        )


def format_cny(fen: int) -> str:
    """Human display, e.g. ``format_cny(60000) == 'CNY 600.00'``."""
    _as_int(fen, "fen")
    sign = "-" if fen < 0 else ""
    yuan, rest = divmod(abs(fen), 100)
    return f"{sign}CNY {yuan:,}.{rest:02d}"


def _as_int(value: object, name: str) -> int:
    # bool is an int subclass, and a float or Decimal here means someone did
    # money arithmetic outside integer fen: both are bugs upstream.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def _check_fen(value: object, name: str) -> None:
    if _as_int(value, name) < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
