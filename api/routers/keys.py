"""API key management (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from api.auth import Principal, allow
from api.permissions import Action
from api.routers._common import Ctx, documented
from api.schemas.keys import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyList
from api.services import keys

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])

KeyId = Annotated[str, Path(pattern=r"^[a-z0-9]{12}$", description="The key id (the part after h400_).")]


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    description="Creates a key bound to one role (and, for applicants, one organisation). "
    "The token is in this response only.",
    **documented(),
)
async def create_key(
    body: ApiKeyCreate, ctx: Ctx, principal: Annotated[Principal, allow(Action.MANAGE_API_KEYS)]
) -> ApiKeyCreated:
    async with ctx.connection() as conn:
        return await keys.create_key(
            conn,
            ctx.settings.api_key_pepper,
            role=body.role,
            organisation_id=body.organisation_id,
            name=body.name,
            created_by=principal.actor_id,
            expires_at=body.expires_at,
        )


@router.get("", response_model=ApiKeyList, summary="List API keys (never their tokens)", **documented())
async def list_keys(
    ctx: Ctx,
    _: Annotated[Principal, allow(Action.MANAGE_API_KEYS)],
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.")] = False,
    organisation_id: Annotated[str | None, Query(max_length=64)] = None,
) -> ApiKeyList:
    async with ctx.connection() as conn:
        items = await keys.list_keys(conn, include_revoked=include_revoked, organisation_id=organisation_id)
    return ApiKeyList(items=items)


@router.delete(
    "/{key_id}",
    response_model=ApiKey,
    summary="Revoke an API key",
    description="Revoking is immediate in this process and within `API_AUTH_CACHE_SECONDS` in others. "
    "Revoking a revoked key is a no-op.",
    **documented(404),
)
async def revoke_key(
    key_id: KeyId, request: Request, ctx: Ctx, _: Annotated[Principal, allow(Action.MANAGE_API_KEYS)]
) -> ApiKey:
    async with ctx.connection() as conn:
        revoked = await keys.revoke_key(conn, key_id)
    request.app.state.authenticator.forget(key_id)
    return revoked
