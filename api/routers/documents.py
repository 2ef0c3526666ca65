"""Document uploads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Request, Response, UploadFile

from api.auth import Principal, allow
from api.permissions import Action
from api.routers._common import Ctx, documented
from api.schemas.documents import Document
from api.services import documents

router = APIRouter(prefix="/v1/documents", tags=["documents"])

DocumentId = Annotated[str, Path(pattern=r"^doc_[a-z0-9]{20,32}$")]
FileField = Annotated[UploadFile, File(description="PDF, JPEG or PNG, at most API_MAX_UPLOAD_BYTES.")]


def _cipher(request: Request) -> documents.DocumentCipher:
    cipher: documents.DocumentCipher = request.app.state.document_cipher
    return cipher


@router.post(
    "",
    status_code=201,
    response_model=Document,
    summary="Upload a document",
    description="Multipart upload of one file with its `kind` (see GET /v1/requirements/catalogue). "
    "The answer's `ref` (or just its `document_id`) goes in an application's `documents`. "
    "The file's content must match its declared type.",
    **documented(413, 415),
)
async def upload_document(
    request: Request,
    response: Response,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.UPLOAD_DOCUMENT)],
    file: FileField,
    kind: Annotated[str, Form(min_length=1, max_length=64, examples=["business_licence"])],
) -> Document:
    async with ctx.connection() as conn:
        doc = await documents.upload(
            conn, _cipher(request), principal, kind=kind, file=file, max_bytes=ctx.api.max_upload_bytes
        )
    response.headers["Location"] = f"/v1/documents/{doc.id}"
    return doc


@router.post(
    "/{document_id}/replace",
    status_code=201,
    response_model=Document,
    summary="Replace a document",
    description="Uploads a new version of a document (same kind). Documents are never changed: the new "
    "one gets its own id and names the old one in `replaces`; list the new id when resubmitting. "
    "A document can be replaced once; replace the newest one after that (409 otherwise).",
    **documented(404, 409, 413, 415),
)
async def replace_document(
    request: Request,
    response: Response,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.UPLOAD_DOCUMENT)],
    document_id: DocumentId,
    file: FileField,
) -> Document:
    async with ctx.connection() as conn:
        old = await documents.get_visible(conn, principal, document_id)
        doc = await documents.upload(
            conn,
            _cipher(request),
            principal,
            kind=old["kind"],
            file=file,
            max_bytes=ctx.api.max_upload_bytes,
            replaces=old,
        )
    response.headers["Location"] = f"/v1/documents/{doc.id}"
    return doc


@router.get(
    "/{document_id}",
    response_model=Document,
    summary="A document's details",
    **documented(404),
)
async def get_document(
    ctx: Ctx, principal: Annotated[Principal, allow(Action.READ_DOCUMENT)], document_id: DocumentId
) -> Document:
    async with ctx.connection() as conn:
        return documents.to_model(await documents.get_visible(conn, principal, document_id))


@router.get(
    "/{document_id}/content",
    summary="Download a document",
    description="The file as uploaded. Operators open documents from here while reviewing.",
    response_class=Response,
    responses={
        200: {
            "content": {t: {} for t in ("application/pdf", "image/jpeg", "image/png")},
            "description": "The file.",
        },
        **documented(404)["responses"],
    },
)
async def get_document_content(
    request: Request,
    ctx: Ctx,
    principal: Annotated[Principal, allow(Action.READ_DOCUMENT)],
    document_id: DocumentId,
) -> Response:
    async with ctx.connection() as conn:
        doc, content = await documents.content(conn, _cipher(request), principal, document_id)
    return Response(
        content,
        media_type=doc.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{doc.id}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "ETag": f'"{doc.sha256}"',
        },
    )
