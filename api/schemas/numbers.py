"""Number search results."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import UtcDateTime


class NumberOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "number": "4006888168",
                "display": "400-688-8168",
                "carrier": "china_unicom",
                "status": "available",
                "tier": "gold",
                "tags": ["aaa", "lucky_group"],
                "has_four": False,
                "min_monthly_spend_fen": 200000,
            }
        }
    )

    number: str
    display: str = Field(description="400-XXX-XXXX")
    carrier: str
    status: str
    tier: str
    tags: list[str]
    has_four: bool
    min_monthly_spend_fen: int = Field(description="Minimum monthly spend for this number, CNY fen.")
    registration_id: str | None = Field(default=None, description="Holder (staff views only).")
    hold_expires_at: UtcDateTime | None = Field(default=None, description="Staff views only.")


class NumberPage(BaseModel):
    items: list[NumberOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
    sampled: bool = Field(description="Results start at a random point (sample=true) and wrap around.")
