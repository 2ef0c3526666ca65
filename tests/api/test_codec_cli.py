"""The command the README gives for seeing decrypted payloads works: the temporal
CLI, pointed at the API's codec endpoint with an operator key, shows a
registration's history decrypted; without them it sees only ciphertext."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from temporalio.testing import WorkflowEnvironment

from app.embedded import temporal_cli_path
from tests.api.fixtures import Keys
from tests.api.live_server import served
from workflows.contracts import registration_workflow_id

__all__ = ["served"]  # a fixture, used by name

ENCRYPTED = base64.b64encode(b"binary/encrypted").decode()
JSON_PLAIN = base64.b64encode(b"json/plain").decode()


async def _temporal(*args: str) -> tuple[int, str]:
    # Asynchronous: the codec endpoint it calls is served by this test's event loop.
    proc = await asyncio.create_subprocess_exec(
        str(temporal_cli_path()),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode()


def _first_input(history: str) -> dict[str, Any]:
    """The registration's start argument, as the history shows it."""
    events = json.loads(history)["events"]
    payload: dict[str, Any] = events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    return payload


async def test_the_cli_shows_a_history_decrypted_through_the_codec_endpoint(
    served: str, temporal_env: WorkflowEnvironment, api_keys: Keys, submitted: dict[str, Any]
) -> None:
    address = temporal_env.client.service_client.config.target_host
    show = ["workflow", "show", "--address", address, "-w", registration_workflow_id(submitted["id"])]

    code, encrypted = await _temporal(*show, "--output", "json")
    assert code == 0, encrypted
    assert _first_input(encrypted)["metadata"]["encoding"] == ENCRYPTED
    assert submitted["organisation_id"].encode() not in base64.b64decode(_first_input(encrypted)["data"])

    codec = ["--codec-endpoint", f"{served}/v1/codec"]
    code, _ = await _temporal(*show, "--output", "json", *codec)
    assert code != 0  # outside development the codec wants an operator or admin key

    auth = ["--codec-auth", f"Bearer {api_keys['operator']}"]
    code, decrypted = await _temporal(*show, "--output", "json", *codec, *auth)
    assert code == 0, decrypted
    assert ENCRYPTED not in decrypted  # every payload, not only the input
    start = _first_input(decrypted)
    assert start["metadata"]["encoding"] == JSON_PLAIN
    argument = json.loads(base64.b64decode(start["data"]))
    assert (argument["application_id"], argument["form"]["organisation_id"]) == (
        submitted["id"],
        submitted["organisation_id"],
    )
