"""Staff accounts, for administrators: the list, and creating one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api.errors import Conflict, InvalidInput
from api.permissions import Action
from web import messages as say
from web import views
from web.http import Staff, context, password_hashing, require
from web.services import staff as staff_service

router = APIRouter()


async def _page(request: Request, **extra: object) -> Response:
    async with context(request).connection() as conn:
        accounts = await staff_service.list_accounts(conn)
    status = 422 if extra.get("errors") else 200
    return views.render(
        request,
        "staff.html",
        {"accounts": accounts, "roles": [r.value for r in staff_service.STAFF_ROLES], **extra},
        status_code=status,
    )


@router.get("/staff")
async def staff_page(request: Request, staff: Annotated[Staff, require(Action.MANAGE_STAFF)]) -> Response:
    return await _page(request)


@router.post("/staff")
async def create_staff(
    request: Request,
    staff: Annotated[Staff, require(Action.MANAGE_STAFF)],
    # Bounds well above the account's own, so that its checks say what is wrong, in the form.
    username: Annotated[str, Form(max_length=1000)] = "",
    display_name: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    try:
        async with context(request).connection() as conn:
            created = await staff_service.create_account(
                conn,
                username=username,
                display_name=display_name,
                role=role,
                password=password,
                created_by=staff.actor_id,
                hashing=password_hashing(request),
            )
    except (InvalidInput, Conflict) as exc:
        errors = say.lines(request, exc)
        return await _page(
            request, errors=errors, entered={"username": username, "display_name": display_name}
        )
    return await _page(request, created=created)
