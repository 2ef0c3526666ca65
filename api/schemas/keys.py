"""API key models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from api.auth import ORGANISATION_ID, Role
from api.schemas.common import UtcDateTime
from api.schemas.dates import RequestDatetime
from api.textguard import VisibleStr

OrganisationId = Annotated[str, Field(pattern=ORGANISATION_ID.pattern, examples=["org_acme"])]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"role": "applicant", "organisation_id": "org_acme", "name": "Acme ERP"}
        },
    )

    role: Role
    # validate_default: a missing organisation_id is reported as that field, not as the body.
    organisation_id: OrganisationId | None = Field(
        default=None,
        validate_default=True,
        description="Required for the applicant role, refused for the others.",
    )
    name: Annotated[VisibleStr, Field(min_length=1, max_length=200, description="What the key is for.")]
    expires_at: RequestDatetime | None = Field(
        default=None,
        description="When the key stops working (ISO 8601 with offset, at most 2 years ahead); "
        "null: until revoked.",
    )

    @field_validator("organisation_id")
    @classmethod
    def _organisation_matches_role(cls, value: str | None, info: ValidationInfo) -> str | None:
        role = info.data.get("role")
        if role is Role.APPLICANT and value is None:
            raise PydanticCustomError("missing", "An applicant key acts for one organisation: give its id.")
        if role is not None and role is not Role.APPLICANT and value is not None:
            article = "An" if role.value[0] in "aeiou" else "A"
            raise PydanticCustomError(
                "not_allowed",
                "{article} {role} key is not bound to an organisation: leave organisation_id out.",
                {"article": article, "role": role.value},
            )
        return value


class ApiKey(BaseModel):
    id: str = Field(description="The public part of the key, as it appears in the token and in audit logs.")
    role: Role
    organisation_id: str | None
    name: str
    created_by: str
    created_at: UtcDateTime
    revoked_at: UtcDateTime | None
    expires_at: UtcDateTime | None = Field(
        default=None, description="When the key stops working; null: never."
    )


class ApiKeyCreated(ApiKey):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "3f9a0c1b2d4e",
                "role": "applicant",
                "organisation_id": "org_acme",
                "name": "Acme ERP",
                "created_by": "apikey:0a1b2c3d4e5f",
                "created_at": "2026-11-25T08:00:00Z",
                "revoked_at": None,
                "expires_at": "2027-11-25T08:00:00Z",
                "token": "h400_3f9a0c1b2d4e_abcdefghijklmnopqrstuvwxyz234567",
            }
        }
    )

    token: str = Field(description="The key itself. Shown once: only a hash is stored.")


class ApiKeyList(BaseModel):
    items: list[ApiKey]
