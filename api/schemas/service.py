"""Request and response bodies of the routes that act on a number in service
(after activation): operator suspension and resumption, termination (销号),
real-name confirmation and reports of changed details."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from api.schemas.common import FieldName, JsonObject, OptionalReason, Reason, UtcDateTime
from api.schemas.dates import RequestDatetime
from api.schemas.registrations import Registration
from domain.details import HOLDER_DETAILS


class _ReasonIn(BaseModel):
    """An operator's action on a number in service: always with a reason."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


def _example(reason: str) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"example": {"reason": reason}})


class SuspensionIn(_ReasonIn):
    model_config = _example("Complaints about unsolicited marketing calls from this number")


class ResumptionIn(_ReasonIn):
    model_config = _example("The holder stopped the marketing calls and signed an undertaking")


class RealnameConfirmationIn(_ReasonIn):
    model_config = _example("Holder's real-name information re-checked against the business licence")


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
                "values": {
                    "contact_address": "广东省深圳市南山区科技园南区 2 号",
                    "legal_representative.phone": "13900139000",
                },
            }
        },
    )

    changed_at: RequestDatetime = Field(
        description="When the details changed, ISO 8601 with its UTC offset; from 2000-01-01, not in the "
        "future. The change must be reported within 10 Chinese working days of it."
    )
    fields: list[FieldName] = Field(
        min_length=1,
        max_length=20,
        description="The registered details that changed, named as in the application: "
        + ", ".join(HOLDER_DETAILS)
        + ". Another name is 422.",
    )
    values: JsonObject = Field(
        max_length=20,
        description="The new value of each named field, keyed by its name, checked as the application "
        "checks it (a person, for legal_representative or agent whole: name, id_number, phone; a list "
        "for destination_numbers). Kept as the holder's current details, personal data masked outside "
        "the encrypted form.",
    )

    @field_validator("changed_at")
    @classmethod
    def _not_in_future(cls, value: datetime) -> datetime:
        if value > datetime.now(UTC):
            raise PydanticCustomError("in_future", "A change cannot be reported before it happens.")
        return value


class DetailsChangeOut(BaseModel):
    due_by: UtcDateTime = Field(description="When the change had to be reported by.")
    late: bool = Field(description="True when reported after `due_by` (kept as a compliance finding).")
    registration: Registration
