"""Creating, listing and revoking API keys (used by the admin routes and the CLI)."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

import asyncpg

from api.auth import ORGANISATION_ID, Role, hash_token, new_token, parse_key_id
from api.errors import InvalidInput, NotFound, field_error
from api.repositories import api_keys
from api.schemas.dates import in_window, latest
from api.schemas.keys import ApiKey, ApiKeyCreated


def _model(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        role=Role(row["role"]),
        organisation_id=row["organisation_id"],
        name=row["name"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        expires_at=row["expires_at"],
    )


async def create_key(
    conn: asyncpg.Connection,
    pepper: str,
    *,
    role: Role,
    organisation_id: str | None,
    name: str,
    created_by: str,
    expires_at: datetime | None = None,
) -> ApiKeyCreated:
    if (role is Role.APPLICANT) != (organisation_id is not None):
        raise InvalidInput(
            errors=[
                field_error(
                    "organisation_id",
                    "organisation_role_mismatch",
                    "Applicant keys need an organisation_id; other roles must not have one.",
                )
            ]
        )
    if organisation_id is not None and not ORGANISATION_ID.fullmatch(organisation_id):
        raise InvalidInput(
            errors=[
                field_error(
                    "organisation_id", "invalid_format", "Use 1-64 letters, digits, '_', '.', ':' or '-'."
                )
            ]
        )
    if expires_at is not None:
        now = datetime.now(UTC)
        if expires_at.utcoffset() is None or not in_window(expires_at, now, latest(now)):
            raise InvalidInput(
                errors=[
                    field_error(
                        "expires_at",
                        "out_of_range",
                        "Give a time with its UTC offset, after now and by "
                        f"{latest(now).date().isoformat()}.",
                    )
                ]
            )
    key_id, token = new_token()
    row = await api_keys.insert(
        conn,
        key_id=key_id,
        secret_hash=hash_token(pepper, token),
        role=role.value,
        organisation_id=organisation_id,
        name=name,
        created_by=created_by,
        expires_at=expires_at,
    )
    return ApiKeyCreated(**_model(row).model_dump(), token=token)


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> ApiKey:
    row = await api_keys.revoke(conn, key_id)
    if row is None:
        raise NotFound(f"No API key {key_id!r}")
    return _model(row)


async def list_keys(
    conn: asyncpg.Connection, *, include_revoked: bool = False, organisation_id: str | None = None
) -> list[ApiKey]:
    rows = await api_keys.list_keys(conn, include_revoked=include_revoked, organisation_id=organisation_id)
    return [_model(r) for r in rows]


async def token_is_valid(conn: asyncpg.Connection, pepper: str, token: str) -> bool:
    """Whether ``token`` is a live key (used to decide if a saved demo key still works)."""
    key_id = parse_key_id(token)
    if key_id is None:
        return False
    row = await api_keys.get(conn, key_id)
    return (
        row is not None
        and row["revoked_at"] is None
        and (row["expires_at"] is None or row["expires_at"] > datetime.now(UTC))
        and hmac.compare_digest(bytes(row["secret_hash"]), hash_token(pepper, token))
    )
