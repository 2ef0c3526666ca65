"""The application form in clear, kept encrypted, and the audited reveal of one
of its personal fields.

Everything else the system keeps of an application is the masked summary
(domain.masking). The form as submitted, and as each resubmission, is stored
AES-GCM encrypted with the payload keys, so that an operator can check one
field against a document: a reveal names one field of one application and a
reason, and is appended to the application's access log (stream
``access:<application id>``, never the registration's own stream, whose
versions belong to its workflow) before the value is shown. The timeline shows
each reveal to staff, never to the applicant.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import asyncpg

from api.auth import Principal
from api.errors import Forbidden, InvalidInput, NotFound, field_error
from api.permissions import Action, may
from api.repositories import forms
from api.services import audit
from api.services.documents import DocumentCipher
from app.logging_setup import request_id_var
from app.settings import Settings
from domain.masking import mask_id_number, mask_phone

REVEALED = "PersonalDataRevealed"

# The fields an operator may reveal, and how each is masked otherwise.
REVEALABLE: dict[str, str] = {
    "legal_representative.id_number": "id",
    "legal_representative.phone": "phone",
    "agent.id_number": "id",
    "agent.phone": "phone",
    "destination_numbers": "phones",
}


@lru_cache(maxsize=4)
def _cipher_for(keys: tuple[bytes, ...]) -> DocumentCipher:
    return DocumentCipher(list(keys))


def form_cipher(settings: Settings) -> DocumentCipher:
    """The cipher of stored forms: the documents' (the payload keys)."""
    return _cipher_for(tuple(settings.encryption_keys))


def access_stream(application_id: str) -> str:
    return f"access:{application_id}"


def _aad(application_id: str) -> str:
    # Authenticated with the ciphertext: a blob copied onto another application fails.
    return f"form:{application_id}"


async def store_form(
    conn: asyncpg.Connection,
    cipher: DocumentCipher,
    application_id: str,
    form: Mapping[str, Any],
    *,
    accepted: bool,
) -> int:
    """Stores the next version of the form, encrypted; its sequence number."""
    plain = json.dumps(form, ensure_ascii=False, sort_keys=True).encode()
    key_ref, blob = cipher.encrypt(_aad(application_id), plain)
    return await forms.insert(conn, application_id, key_id=key_ref, content=blob, accepted=accepted)


async def store_submitted_form(
    conn: asyncpg.Connection, cipher: DocumentCipher, application_id: str, form: Mapping[str, Any]
) -> None:
    """The form as submitted, encrypted; once per application however often its start is retried."""
    plain = json.dumps(form, ensure_ascii=False, sort_keys=True).encode()
    key_ref, blob = cipher.encrypt(_aad(application_id), plain)
    await forms.insert_submitted(conn, application_id, key_id=key_ref, content=blob)


async def accept_form(conn: asyncpg.Connection, application_id: str, seq: int) -> None:
    await forms.accept(conn, application_id, seq)


async def current_form(
    conn: asyncpg.Connection, cipher: DocumentCipher, application_id: str
) -> dict[str, Any] | None:
    """The form last accepted (as submitted, resubmitted, or with its reported
    changes of details), in clear; None for an application with none stored."""
    row = await forms.latest_accepted(conn, application_id)
    if row is None:
        return None
    plain = cipher.decrypt(_aad(application_id), row["encryption_key_id"], bytes(row["content"]))
    data: dict[str, Any] = json.loads(plain)
    return data


def _get(form: Mapping[str, Any], path: str) -> Any:
    value: Any = form
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _mask(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "id":
        return mask_id_number(str(value))
    if kind == "phone":
        return mask_phone(str(value))
    return [mask_phone(str(v)) for v in value]


async def masked_form(
    conn: asyncpg.Connection, cipher: DocumentCipher, application_id: str
) -> dict[str, Any] | None:
    """The latest accepted form with every revealable field masked (None: no stored
    form, for applications submitted before forms were kept)."""
    form = await current_form(conn, cipher, application_id)
    if form is None:
        return None
    for path, kind in REVEALABLE.items():
        head, _, leaf = path.rpartition(".")
        holder = _get(form, head) if head else form
        if isinstance(holder, dict) and holder.get(leaf) is not None:
            holder[leaf] = _mask(kind, holder[leaf])
    return form


async def reveal(
    conn: asyncpg.Connection,
    cipher: DocumentCipher,
    principal: Principal,
    application_id: str,
    field: str,
    reason: str,
) -> str:
    """One personal field in clear, after its reveal is recorded in the access log."""
    if not may(principal.role, Action.REVEAL_PERSONAL_DATA):
        raise Forbidden(f"The {principal.role} role may not reveal personal data")
    errors = []
    if field not in REVEALABLE:
        errors.append(field_error("field", "not_revealable", f"Reveal one of: {', '.join(REVEALABLE)}."))
    reason = reason.strip()
    if not reason or len(reason) > 1000:
        errors.append(field_error("reason", "reason_required", "Say why (1-1000 characters)."))
    if errors:
        raise InvalidInput("A reveal needs a field and a reason", errors=errors)
    form = await current_form(conn, cipher, application_id)
    value = _get(form, field) if form is not None else None
    if value is None:
        raise NotFound(f"The application has no {field} on record")
    await audit.append(
        conn,
        stream_id=access_stream(application_id),
        event_id=str(uuid.uuid4()),
        event_type=REVEALED,
        actor=principal.actor_id,
        actor_role=principal.role.value,
        reason=reason,
        correlation_id=request_id_var.get() or str(uuid.uuid4()),
        payload={"field": field},
        occurred_at=datetime.now(UTC),
    )
    return ", ".join(value) if isinstance(value, list) else str(value)
