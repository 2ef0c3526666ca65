"""The lifecycle of a registration row, in one place.

The read model does not carry a lifecycle column yet; until it does, it is
computed here from the columns it is derived from (domain.lifecycle), and every
page and count of the console goes through this one function. When the column
lands, this becomes ``Lifecycle(row["lifecycle"])``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.lifecycle import Lifecycle, lifecycle_of
from domain.service_rules import ArrearsStage, ClosureReason, ServiceState
from domain.timeline import Stage, Status


def lifecycle_of_row(row: Mapping[str, Any]) -> Lifecycle:
    """``row`` has stage, status, service_state and arrears_stage (registration columns)."""
    state = ServiceState(row["service_state"]) if row["service_state"] else None
    # A quarantined number was either reclaimed for arrears or given up by its holder.
    closure = (
        ClosureReason.RECLAIMED
        if row["arrears_stage"] == ArrearsStage.RECLAIMED.value
        else ClosureReason.TERMINATED
    )
    return lifecycle_of(
        Stage(row["stage"] or Stage.APPLY), Status(row["status"] or Status.SUBMITTED), state, closure
    )
