"""The requirements catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Principal, allow
from api.permissions import Action
from api.routers._common import Ctx, documented
from api.schemas.requirements import Catalogue, Requirements
from api.services import requirements

router = APIRouter(prefix="/v1/requirements", tags=["requirements"])

Key = Annotated[str, Query(min_length=1, max_length=64)]


@router.get(
    "",
    response_model=Requirements,
    summary="Documents a carrier, company type and industry require",
    description="Which documents to upload for this case, in catalogue order, with the accepted file "
    "types and the size limit. Unknown values are 422 naming each field and listing the valid ones.",
    **documented(),
)
async def get_requirements(
    ctx: Ctx,
    _: Annotated[Principal, allow(Action.READ_CATALOGUE)],
    carrier: Annotated[str, Query(min_length=1, max_length=64, examples=["china_unicom"])],
    company_type: Annotated[str, Query(min_length=1, max_length=64, examples=["enterprise"])],
    industry: Annotated[str, Query(min_length=1, max_length=64, examples=["medical"])],
    has_agent: Annotated[
        bool, Query(description="Someone other than the legal representative files.")
    ] = False,
) -> Requirements:
    return requirements.requirements(carrier, company_type, industry, has_agent, ctx.api.max_upload_bytes)


@router.get(
    "/catalogue",
    response_model=Catalogue,
    summary="Carriers, company types, industries, packages and document kinds",
    description="The values GET /v1/requirements accepts, the packages an application may choose, and "
    "every document kind with its label.",
    **documented(),
)
async def get_catalogue(ctx: Ctx, _: Annotated[Principal, allow(Action.READ_CATALOGUE)]) -> Catalogue:
    return requirements.catalogue_overview(ctx.api.max_upload_bytes)
