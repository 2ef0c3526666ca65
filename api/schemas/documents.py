"""Uploaded documents."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import UtcDateTime


class Document(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "doc_01jd8k3m5n7p9q2r4s6t8v",
                "kind": "business_licence",
                "content_type": "application/pdf",
                "filename": "licence.pdf",
                "size_bytes": 183211,
                "sha256": "9f2c4b1e5d7a3c8b0e6f1a2d4c5b7e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                "replaces": None,
                "replaced_by": None,
                "created_at": "2026-11-25T01:00:00Z",
                "ref": {
                    "kind": "business_licence",
                    "document_id": "doc_01jd8k3m5n7p9q2r4s6t8v",
                    "content_type": "application/pdf",
                    "sha256": "9f2c4b1e5d7a3c8b0e6f1a2d4c5b7e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                },
            }
        }
    )

    id: str
    kind: str
    content_type: str
    filename: str | None
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the file, hex.")
    replaces: str | None = Field(description="The document this one replaced.")
    replaced_by: str | None = Field(description="The document that replaced this one; use that one instead.")
    created_at: UtcDateTime
    ref: DocumentRef = Field(description="What to put in an application's documents list.")


class DocumentRef(BaseModel):
    kind: str
    document_id: str
    content_type: str
    sha256: str


class DocumentList(BaseModel):
    items: list[Document]


Document.model_rebuild()
