"""Uploading, replacing and reading documents.

The bytes are checked (size, declared type, and that the content really is a
PDF, JPEG or PNG), hashed, encrypted with the payload key and stored in
PostgreSQL. Workflows and logs only ever see the DocumentRef (id, kind, type,
SHA-256), never the content.
"""

from __future__ import annotations

import hashlib
import os

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import UploadFile

from api.auth import Principal, Role
from api.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType, field_error
from api.ids import new_id
from api.repositories import documents
from api.schemas.documents import Document, DocumentList, DocumentRef
from api.textguard import is_unsafe
from app.codec import key_id
from domain.hidden_text import MESSAGE, has_hidden_characters
from domain.requirements import load_catalogue

_NONCE = 12
_CHUNK = 256 * 1024

# What each allowed type's content starts with. The declared type alone proves
# nothing: a client could label an executable "application/pdf".
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}


class DocumentCipher:
    """AES-GCM with the first payload key; any configured key decrypts (rotation)."""

    def __init__(self, keys: list[bytes]) -> None:
        self._encrypt_id = key_id(keys[0])
        self._encrypt = AESGCM(keys[0])
        self._decrypt = {key_id(k): AESGCM(k) for k in keys}

    def encrypt(self, document_id: str, content: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE)
        # The document id is authenticated: a ciphertext copied onto another row fails.
        return self._encrypt_id, nonce + self._encrypt.encrypt(nonce, content, document_id.encode())

    def decrypt(self, document_id: str, encryption_key_id: str, blob: bytes) -> bytes:
        aes = self._decrypt.get(encryption_key_id)
        if aes is None:
            raise RuntimeError(f"document {document_id} was encrypted with unknown key {encryption_key_id}")
        return aes.decrypt(blob[:_NONCE], blob[_NONCE:], document_id.encode())


def to_model(row: asyncpg.Record) -> Document:
    sha = row["sha256"].strip()
    return Document(
        id=row["id"],
        kind=row["kind"],
        content_type=row["content_type"],
        filename=row["filename"],
        size_bytes=row["size_bytes"],
        sha256=sha,
        replaces=row["replaces_id"],
        replaced_by=row["replaced_by_id"],
        created_at=row["created_at"],
        ref=DocumentRef(
            kind=row["kind"], document_id=row["id"], content_type=row["content_type"], sha256=sha
        ),
    )


def _check_kind(kind: str) -> str:
    kinds = load_catalogue().document_kinds
    kind = kind.strip().lower()
    if kind not in kinds:
        raise InvalidInput(
            errors=[field_error("kind", "unknown_document_kind", f"Use one of: {', '.join(kinds)}.")]
        )
    return kind


def allowed_content_types() -> list[str]:
    """The catalogue's accepted types that we can also recognise by content."""
    return sorted(load_catalogue().accepted_content_types & _MAGIC.keys())


async def _read_checked(upload: UploadFile, max_bytes: int) -> tuple[bytes, str]:
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    allowed = allowed_content_types()
    if declared not in allowed:
        raise UnsupportedMediaType(
            f"Upload the file as one of: {', '.join(allowed)} (got {declared or 'none'})",
            errors=[field_error("file", "unsupported_content_type", f"Allowed types: {', '.join(allowed)}.")],
        )
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"The file is larger than {max_bytes} bytes",
                errors=[field_error("file", "too_large", f"Upload at most {max_bytes} bytes.")],
            )
        parts.append(chunk)
    content = b"".join(parts)
    if not content:
        raise InvalidInput(errors=[field_error("file", "empty", "The file is empty.")])
    if not content.startswith(_MAGIC[declared]):
        raise UnsupportedMediaType(
            f"The file's content is not {declared}",
            errors=[
                field_error(
                    "file",
                    "content_type_mismatch",
                    f"The content does not look like {declared}: upload the real file.",
                )
            ],
        )
    return content, declared


async def upload(
    conn: asyncpg.Connection,
    cipher: DocumentCipher,
    principal: Principal,
    *,
    kind: str,
    file: UploadFile,
    max_bytes: int,
    replaces: asyncpg.Record | None = None,
) -> Document:
    kind = _check_kind(kind)
    content, content_type = await _read_checked(file, max_bytes)
    document_id = new_id("doc")
    key_ref, blob = cipher.encrypt(document_id, content)
    filename = (file.filename or "")[:255] or None
    if filename and has_hidden_characters(filename):
        # inv\u202eFDP.exe shows an operator "invexe.PDF": refused, not stored.
        raise InvalidInput(errors=[field_error("file", "hidden_characters", f"The file name: {MESSAGE}")])
    if filename and is_unsafe(filename):
        filename = None  # only informative: not worth refusing the upload for
    async with conn.transaction():
        if replaces is not None:
            # Locked and re-read: two concurrent replacements of one document must
            # not both succeed, or the chain would fork.
            current = await documents.get_for_update(conn, replaces["id"])
            if current is None or current["replaced_by_id"] is not None:
                raise Conflict(
                    "This document has already been replaced",
                    code="document_replaced",
                    extra={"replaced_by": current["replaced_by_id"] if current else None},
                )
        row = await documents.insert(
            conn,
            document_id=document_id,
            organisation_id=principal.require_organisation(),
            kind=kind,
            content_type=content_type,
            filename=filename,
            size_bytes=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            encryption_key_id=key_ref,
            content=blob,
            uploaded_by=principal.actor_id,
            replaces_id=replaces["id"] if replaces is not None else None,
        )
        if replaces is not None:
            await documents.mark_replaced(conn, replaces["id"], document_id)
    return to_model(row)


async def get_visible(conn: asyncpg.Connection, principal: Principal, document_id: str) -> asyncpg.Record:
    row = await documents.get(conn, document_id)
    if row is None or (
        principal.role is Role.APPLICANT and row["organisation_id"] != principal.organisation_id
    ):
        raise NotFound(f"No document {document_id!r}")
    return row


async def content(
    conn: asyncpg.Connection, cipher: DocumentCipher, principal: Principal, document_id: str
) -> tuple[Document, bytes]:
    await get_visible(conn, principal, document_id)
    row = await documents.get_content(conn, document_id)
    if row is None:
        raise NotFound(f"No document {document_id!r}")
    return to_model(row), cipher.decrypt(document_id, row["encryption_key_id"], bytes(row["content"]))


async def for_application(conn: asyncpg.Connection, application_id: str) -> DocumentList:
    rows = await documents.list_for_application(conn, application_id)
    return DocumentList(items=[to_model(r) for r in rows])
