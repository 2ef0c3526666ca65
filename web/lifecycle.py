"""The lifecycle of a registration row, in one place: the read model's
``lifecycle`` column (written with every event from ``domain.lifecycle``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.lifecycle import Lifecycle


def lifecycle_of_row(row: Mapping[str, Any]) -> Lifecycle:
    """``row`` has the registration's ``lifecycle`` column (an application the
    workflow has not answered yet has none: just submitted)."""
    return Lifecycle(row["lifecycle"] or Lifecycle.SUBMITTED)
