"""Remote codec endpoint for the Temporal Web UI (``--ui-codec-endpoint``).

The UI posts ``{"payloads": [...]}`` to ``/encode`` or ``/decode``. Decoding
reveals personal data, so outside development it needs an operator or admin key
(configure the UI to pass one); only the embedded dev UI calls it without
credentials.

Every input is checked before it reaches the codec: a body of another shape,
text that is not base64, a ciphertext that was tampered with or encrypted with a
key this process does not have, each is 422 naming the payload at fault.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Depends, Request
from google.protobuf.message import DecodeError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError
from temporalio.api.common.v1 import Payload

from api.errors import Forbidden, InvalidInput, Unauthorized, field_error
from api.permissions import Action, may
from api.routers._common import documented
from api.textguard import SafeStr
from app.codec import EncryptionCodec, UnknownEncryptionKey

# A Temporal UI page decodes a history page's payloads at once; far fewer than this.
MAX_PAYLOADS = 1000


def _base64(value: str) -> str:
    # Protobuf's JSON form: standard or URL-safe alphabet, padding optional.
    try:
        decoded = base64.b64decode(
            value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise PydanticCustomError("base64", "Give the bytes as base64.") from None
    return base64.b64encode(decoded).decode()


# Within the body limit (API_MAX_JSON_BYTES), so that a longer one is refused by name.
Base64 = Annotated[str, Field(max_length=192 * 1024), AfterValidator(_base64)]


class PayloadJson(BaseModel):
    """A Temporal Payload in protobuf's JSON form (bytes as base64)."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[Annotated[SafeStr, Field(max_length=256)], Base64] = Field(
        default_factory=dict, max_length=32
    )
    data: Base64 = ""

    def to_proto(self) -> Payload:
        return Payload(
            metadata={k: base64.b64decode(v) for k, v in self.metadata.items()},
            data=base64.b64decode(self.data),
        )

    @classmethod
    def of(cls, payload: Payload) -> PayloadJson:
        return cls(
            metadata={k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
            data=base64.b64encode(payload.data).decode(),
        )


class Payloads(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "eyJhIjogMX0="}]}
        },
    )

    payloads: list[PayloadJson] = Field(default_factory=list, max_length=MAX_PAYLOADS)


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


@router.post(
    "/encode",
    response_model=Payloads,
    summary="Encrypt payloads (Temporal UI codec)",
    description="Outside development: operators and admins only.",
)
async def encode(request: Request, body: Payloads) -> Payloads:
    codec = _codec(request)
    return Payloads(payloads=[PayloadJson.of(codec.encode_one(p.to_proto())) for p in body.payloads])


@router.post(
    "/decode",
    response_model=Payloads,
    summary="Decrypt payloads (Temporal UI codec)",
    description="Outside development: operators and admins only. A payload that is not encrypted is "
    "returned as it is; one that cannot be decrypted is 422 naming it.",
)
async def decode(request: Request, body: Payloads) -> Payloads:
    codec = _codec(request)
    decoded: list[PayloadJson] = []
    errors = []
    for index, payload in enumerate(body.payloads):
        try:
            decoded.append(PayloadJson.of(codec.decode_one(payload.to_proto())))
        except UnknownEncryptionKey:
            errors.append(
                field_error(
                    f"payloads[{index}].metadata.encryption-key-id",
                    "unknown_key",
                    "Encrypted with a key this service does not have.",
                )
            )
        except (InvalidTag, DecodeError, ValueError):
            # Tampered, truncated, relabelled with another key id, or not a payload inside.
            errors.append(
                field_error(f"payloads[{index}].data", "undecryptable", "This payload cannot be decrypted.")
            )
    if errors:
        raise InvalidInput("Some payloads cannot be decrypted", errors=errors)
    return Payloads(payloads=decoded)
