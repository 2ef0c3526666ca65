"""A tiny builder for WHERE clauses with numbered parameters.

Listing queries add only the filters a request uses, rather than writing
``($1 IS NULL OR col = $1)`` for each: PostgreSQL plans the statement once per
shape, and a generic plan cannot use an index for a condition that might be off.
"""

from __future__ import annotations

from typing import Any


class Where:
    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, clause: str, *values: Any) -> Where:
        """``clause`` with ``{}`` placeholders, one per value, e.g. ``add("stage = {}", stage)``."""
        self.clauses.append(clause.format(*(self.param(v) for v in values)))
        return self

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""
