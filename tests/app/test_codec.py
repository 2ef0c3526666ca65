"""The AES-GCM payload codec: encryption, key rotation, and the Temporal UI's codec endpoint."""

from __future__ import annotations

import base64
import json
import os

import httpx
import pytest
from cryptography.exceptions import InvalidTag
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from app.codec import ENCODING, EncryptionCodec, UnknownEncryptionKey, key_id
from app.settings import Settings
from app.temporal import data_converter
from tests.domain.factories import LEGAL_REP_ID
from tests.workflows import support as s
from workflows.contracts import RegistrationResult

OLD = os.urandom(32)
NEW = os.urandom(32)


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_payloads_are_encrypted_and_round_trip() -> None:
    codec = EncryptionCodec([OLD])
    [encoded] = await codec.encode([plain(LEGAL_REP_ID)])
    assert encoded.metadata["encoding"] == ENCODING
    assert encoded.metadata["encryption-key-id"] == key_id(OLD).encode()
    assert LEGAL_REP_ID.encode() not in encoded.data
    [decoded] = await codec.decode([encoded])
    assert decoded == plain(LEGAL_REP_ID)
    # A payload that is not ours (say from before encryption) passes through.
    assert await codec.decode([plain("x")]) == [plain("x")]


async def test_rotation_old_key_still_decrypts_new_key_encrypts() -> None:
    before = EncryptionCodec([OLD])
    [old_payload] = await before.encode([plain("written before the rotation")])

    rotated = EncryptionCodec([NEW, OLD])
    assert await rotated.decode([old_payload]) == [plain("written before the rotation")]
    [new_payload] = await rotated.encode([plain("written after")])
    assert new_payload.metadata["encryption-key-id"] == key_id(NEW).encode()

    with pytest.raises(UnknownEncryptionKey):
        await before.decode([new_payload])
    retired = EncryptionCodec([NEW])
    with pytest.raises(UnknownEncryptionKey):
        await retired.decode([old_payload])


async def test_tampering_and_relabelling_are_detected() -> None:
    codec = EncryptionCodec([OLD, NEW])
    [payload] = await codec.encode([plain("x")])
    flipped = Payload(metadata=dict(payload.metadata), data=payload.data[:-1] + bytes([payload.data[-1] ^ 1]))
    with pytest.raises(InvalidTag):
        await codec.decode([flipped])
    # The key id is authenticated data: pointing it at another configured key fails.
    relabelled = Payload(
        metadata={**payload.metadata, "encryption-key-id": key_id(NEW).encode()}, data=payload.data
    )
    with pytest.raises(InvalidTag):
        await codec.decode([relabelled])


async def test_a_running_registration_survives_a_key_rotation(
    time_env: WorkflowEnvironment, pool, settings: Settings, task_queue: str
) -> None:
    target = time_env.client.service_client.config.target_host
    old_keys = settings.encryption_keys
    rotated_keys = [NEW, *old_keys]
    before = await Client.connect(target, data_converter=data_converter(old_keys))
    after = await Client.connect(target, data_converter=data_converter(rotated_keys))

    number = await s.fresh_number(pool)
    # No workflow cache, so no sticky queue: the next worker gets the next task at once.
    async with s.registration_worker(before, task_queue, pool, settings, max_cached_workflows=0):
        handle = await s.start(before, task_queue, s.application(number))
        await s.submitted(handle)

    # Rotated: the new key is first (encrypts), the old one stays (decrypts).
    rotated_settings = settings.model_copy(
        update={"payload_encryption_keys": ",".join(base64.b64encode(k).decode() for k in rotated_keys)}
    )
    async with s.registration_worker(after, task_queue, pool, rotated_settings):
        handle = after.get_workflow_handle(handle.id, result_type=RegistrationResult)
        status = await s.approve(handle)
        assert status.number == number
        await s.withdraw(handle)
        result = await handle.result()
    assert result.status.status.value == "withdrawn"

    key_ids = _key_ids(json.loads((await handle.fetch_history()).to_json()))
    assert key_id(old_keys[0]) in key_ids, "written before the rotation"
    assert key_id(NEW) in key_ids, "written after the rotation"
    assert key_ids.index(key_id(NEW)) > key_ids.index(key_id(old_keys[0]))
    assert key_id(old_keys[0]) not in key_ids[key_ids.index(key_id(NEW)) :], "only the first key encrypts"


def _key_ids(node: object) -> list[str]:
    """Encryption key ids of the payloads in a history event (as JSON), in order."""
    found: list[str] = []
    if isinstance(node, dict):
        key = (
            node.get("metadata", {}).get("encryption-key-id")
            if isinstance(node.get("metadata"), dict)
            else None
        )
        if key:
            found.append(base64.b64decode(key).decode())
        for value in node.values():
            found += _key_ids(value)
    elif isinstance(node, list):
        for value in node:
            found += _key_ids(value)
    return found


async def test_the_codec_endpoint_decodes_real_history_for_the_temporal_ui(
    time_env: WorkflowEnvironment, pool, settings: Settings, task_queue: str
) -> None:
    from api.main import create_app

    number = await s.fresh_number(pool)
    async with s.registration_worker(time_env.client, task_queue, pool, settings):
        handle = await s.start(time_env.client, task_queue, s.application(number))
        await s.submitted(handle)
        await s.withdraw(handle)
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input
    body = json_format.MessageToDict(started)
    assert LEGAL_REP_ID not in str(body), "what the UI fetches from the server is ciphertext"

    # The codec needs neither the pool nor Temporal: no lifespan, nothing else to wait for.
    app = create_app(settings.model_copy(update={"environment": "development"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as ui:
        decoded = await ui.post("/v1/codec/decode", json=body)
        assert decoded.status_code == 200, decoded.text
        plaintext = base64.b64decode(decoded.json()["payloads"][0]["data"]).decode()
        assert LEGAL_REP_ID in plaintext and s.app_id(handle) in plaintext

        encoded = await ui.post("/v1/codec/encode", json=decoded.json())
        assert encoded.status_code == 200
        assert LEGAL_REP_ID not in str(encoded.json())
        again = await ui.post("/v1/codec/decode", json=encoded.json())
    assert again.json() == decoded.json()


async def test_malformed_or_tampered_codec_input_is_422_naming_the_payload(settings: Settings) -> None:
    """Anything but well-formed payloads was a 500 (a protobuf ParseError, a
    failed decryption), for anyone who could reach the codec."""
    from api.main import create_app

    app = create_app(settings.model_copy(update={"environment": "development"}))
    codec = EncryptionCodec(settings.encryption_keys)
    [sealed] = await codec.encode([plain(LEGAL_REP_ID)])

    def as_json(payload: Payload) -> dict[str, object]:
        return {
            "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
            "data": base64.b64encode(payload.data).decode(),
        }

    tampered = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    unknown_key = Payload(
        metadata={**sealed.metadata, "encryption-key-id": b"0123456789abcdef"}, data=sealed.data
    )
    truncated = Payload(metadata=dict(sealed.metadata), data=b"")
    cases: list[tuple[str, object, str]] = [
        # Surrogate pairs, as schemathesis sent them (one character each once parsed).
        ("/v1/codec/decode", {"\ud8f4\udff9": {"x": 0.5}}, "\U0004d3f9"),
        ("/v1/codec/encode", {"E\udb86\udc57": [None]}, "E\U000f1857"),
        ("/v1/codec/encode", {"payloads": [None]}, "payloads[0]"),
        ("/v1/codec/encode", {"payloads": "x"}, "payloads"),
        ("/v1/codec/decode", {"payloads": [{"data": "not base64!"}]}, "payloads[0].data"),
        ("/v1/codec/decode", {"payloads": [{"metadata": {"encoding": 7}}]}, "payloads[0].metadata.encoding"),
        ("/v1/codec/decode", {"payloads": [as_json(tampered)]}, "payloads[0].data"),
        ("/v1/codec/decode", {"payloads": [as_json(truncated)]}, "payloads[0].data"),
        ("/v1/codec/decode", {"payloads": [as_json(unknown_key)]}, "payloads[0].metadata.encryption-key-id"),
        ("/v1/codec/decode", {"payloads": [{"data": ""}] * 1001}, "payloads"),
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as ui:
        for path, body, field in cases:
            response = await ui.post(
                path, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 422, (path, body, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert field in [e["field"] for e in response.json()["errors"]], (field, response.json())
        # A payload that is not encrypted passes through; an encrypted one opens.
        mixed = {"payloads": [as_json(plain("x")), as_json(sealed)]}
        decoded = await ui.post("/v1/codec/decode", json=mixed)
        assert decoded.status_code == 200, decoded.text
        assert [base64.b64decode(p["data"]) for p in decoded.json()["payloads"]] == [
            b'"x"',
            plain(LEGAL_REP_ID).data,
        ]
