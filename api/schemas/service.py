"""Request and response bodies of the routes that act on a number in service
(after activation): operator suspension and resumption, termination (销号),
real-name confirmation and reports of changed details."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from api import textguard
from api.schemas.registrations import Registration


def _storable(value: str) -> str:
    if textguard.is_unsafe(value):
        raise PydanticCustomError("invalid_character", textguard.MESSAGE)
    return value


def _not_blank(value: str) -> str:
    value = _storable(value).strip()
    if not value:
        raise PydanticCustomError("blank", "Must not be only whitespace.")
    return value


# The length is checked on the string itself (textguard.SafeStr would check it
# after its own validator, with a message about items). The service workflow
# refuses a blank reason too, but without naming the field; checked here so
# that the 422 names it.
RequiredReason = Annotated[
    str,
    Field(min_length=1, max_length=1000, description="Why; recorded in the timeline."),
    AfterValidator(_not_blank),
]
OptionalReason = Annotated[str, Field(max_length=1000), AfterValidator(_storable)]
DetailName = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_not_blank)]


class SuspensionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"reason": "Complaints about unsolicited marketing calls from this number"}
        },
    )

    reason: RequiredReason


class ResumptionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"reason": "The holder stopped the marketing calls and signed an undertaking"}
        },
    )

    reason: RequiredReason


class RealnameConfirmationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"reason": "Holder's real-name information re-checked against the business licence"}
        },
    )

    reason: RequiredReason


class TerminationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"reason": "Business moved to another number"}}
    )

    reason: OptionalReason | None = None


class DetailsChangeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "changed_at": "2026-11-20T09:00:00+08:00",
                "fields": ["contact_address", "legal_representative.phone"],
            }
        },
    )

    changed_at: AwareDatetime = Field(
        description="When the details changed, with its UTC offset; not in the future. The change must "
        "be reported within 10 Chinese working days of it."
    )
    fields: list[DetailName] = Field(
        min_length=1,
        max_length=50,
        description="The registered details that changed, named as in the application.",
    )

    @field_validator("changed_at")
    @classmethod
    def _not_in_future(cls, value: datetime) -> datetime:
        if value > datetime.now(UTC):
            raise PydanticCustomError("in_future", "A change cannot be reported before it happens.")
        return value


class DetailsChangeOut(BaseModel):
    due_by: datetime = Field(description="When the change had to be reported by.")
    late: bool = Field(description="True when reported after `due_by` (kept as a compliance finding).")
    registration: Registration
