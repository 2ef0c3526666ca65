"""Remote codec endpoint for the Temporal Web UI (``--ui-codec-endpoint``).

The UI posts ``{"payloads": [...]}`` to ``/encode`` or ``/decode``. Decoding
reveals personal data, so outside development it needs an operator or admin key
(configure the UI to pass one); the embedded dev UI calls it without credentials.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from api.errors import Forbidden, Unauthorized
from api.permissions import Action, may
from api.routers._common import documented
from app.codec import EncryptionCodec


async def _staff_if_required(request: Request) -> None:
    if not request.app.state.codec_requires_auth:
        return
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise Unauthorized()
    if not may(principal.role, Action.DECODE_PAYLOADS):
        raise Forbidden("Only operators and admins may use the payload codec")


router = APIRouter(
    prefix="/v1/codec",
    tags=["codec"],
    dependencies=[Depends(_staff_if_required)],
    responses=documented()["responses"],
)


def _codec(request: Request) -> EncryptionCodec:
    codec: EncryptionCodec = request.app.state.codec
    return codec


@router.post("/encode", summary="Encrypt payloads (Temporal UI codec)")
async def encode(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    payloads = json_format.ParseDict(body, Payloads())
    encoded = await _codec(request).encode(payloads.payloads)
    return json_format.MessageToDict(Payloads(payloads=encoded))


@router.post("/decode", summary="Decrypt payloads (Temporal UI codec)")
async def decode(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    payloads = json_format.ParseDict(body, Payloads())
    decoded = await _codec(request).decode(payloads.payloads)
    return json_format.MessageToDict(Payloads(payloads=decoded))
