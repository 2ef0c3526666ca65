"""The requirements catalogue."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DocumentKind(BaseModel):
    kind: str
    label: str


class Requirements(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "carrier": "china_unicom",
                "company_type": "enterprise",
                "industry": "medical",
                "has_agent": False,
                "documents": [
                    {"kind": "business_licence", "label": "Business licence (营业执照) ..."},
                    {"kind": "legal_rep_id", "label": "Legal representative's resident ID card ..."},
                    {"kind": "application_form", "label": "400 service application form ..."},
                    {"kind": "industry_licence", "label": "Licence for the regulated industry ..."},
                ],
                "accepted_content_types": ["application/pdf", "image/jpeg", "image/png"],
                "max_upload_bytes": 10485760,
            }
        }
    )

    carrier: str
    company_type: str
    industry: str
    has_agent: bool
    documents: list[DocumentKind] = Field(description="Document kinds to upload, in catalogue order.")
    accepted_content_types: list[str]
    max_upload_bytes: int


class CarrierOptions(BaseModel):
    code: str
    name: str
    company_types: list[str]
    industries: list[str]


class Package(BaseModel):
    code: str = Field(description="What to send as an application's `package`.")
    label: str


class Catalogue(BaseModel):
    carriers: list[CarrierOptions]
    packages: list[Package] = Field(description="The service packages an application may choose.")
    document_kinds: list[DocumentKind]
    accepted_content_types: list[str]
    max_upload_bytes: int
