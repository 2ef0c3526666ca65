"""Remote codec endpoint for the Temporal Web UI (``--ui-codec-endpoint``).

The UI posts ``{"payloads": [...]}`` to ``/encode`` or ``/decode``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from app.codec import EncryptionCodec

router = APIRouter(prefix="/v1/codec", tags=["codec"])


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
