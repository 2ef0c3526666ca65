"""Error values shared by the domain rules.

Validation never stops at the first problem: callers (API, operators, workflows)
need every failing field at once, each with a stable code a client can branch on
and a message that says what to fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One failing field.

    ``field`` is a dotted/indexed path into the submitted payload, e.g.
    ``legal_representative.id_number`` or ``destination_numbers[1]``; the empty
    string means the payload as a whole.
    """

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class ValidationFailed(Exception):
    """Raised by callers that need an exception rather than a list of errors."""

    errors: list[FieldError]

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        # The errors are the only constructor argument so that the exception
        # survives pickling and re-raising across process boundaries intact.
        super().__init__(self.errors)

    def __str__(self) -> str:
        if not self.errors:
            return "validation failed"
        shown = "; ".join(f"{e.field or '<payload>'}: {e.code}" for e in self.errors[:5])
        more = len(self.errors) - 5
        suffix = f"; and {more} more" if more > 0 else ""
        return f"{len(self.errors)} field error(s): {shown}{suffix}"
