"""Committed histories of finished registrations (and of a service run after
ACTIVE, ``service_*``) replay against the current workflow code.

A failure here means a change to RegistrationWorkflow would break registrations
already running (non-determinism): version the change with workflow.patched()
instead. Regenerate the histories (tests/workflows/make_histories.py) only for an
intended break.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from app.settings import Settings
from app.temporal import data_converter
from app.worker import workflow_runner
from tests.domain.factories import AGENT_ID, LEGAL_REP_ID
from workflows.registration import RegistrationWorkflow
from workflows.service import ServiceWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_histories_of_every_ending() -> None:
    names = {p.stem for p in HISTORIES}
    assert {
        "active",
        "active_before_hand_off",
        "service_terminated",
        "rejected",
        "abandoned",
        "verification_expired",
        "withdrawn_while_provisioning",
    } <= names
    assert len(HISTORIES) >= 10


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_committed_history_replays(path: Path, settings: Settings) -> None:
    replayer = Replayer(
        workflows=[ServiceWorkflow if path.stem.startswith("service_") else RegistrationWorkflow],
        data_converter=data_converter(settings.encryption_keys),
        workflow_runner=workflow_runner(),
    )
    history = WorkflowHistory.from_json(path.stem, await asyncio.to_thread(path.read_text))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


def test_at_active_the_registration_continues_as_the_service() -> None:
    """New registrations hand over at ACTIVE; those that reached it before the
    hand-off existed (no patch marker) completed, and must still replay."""

    def last_event(name: str) -> dict[str, object]:
        events: list[dict[str, object]] = json.loads(
            (Path(__file__).parent / "histories" / f"{name}.json").read_text()
        )["events"]
        return events[-1]

    handed = last_event("active")["workflowExecutionContinuedAsNewEventAttributes"]
    assert isinstance(handed, dict) and handed["workflowType"] == {"name": "ServiceWorkflow"}
    assert "workflowExecutionCompletedEventAttributes" in last_event("active_before_hand_off")


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_committed_history_holds_no_plaintext_personal_data(path: Path) -> None:
    text = path.read_text()
    raw = [base64.b64decode(p) for p in _payload_data(json.loads(text))]
    assert raw, "the history has payloads"
    for secret in (LEGAL_REP_ID, AGENT_ID, "张伟"):
        assert secret not in text
        assert all(secret.encode() not in data for data in raw)


def _payload_data(node: object) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if "metadata" in node and "data" in node and isinstance(node["data"], str):
            found.append(node["data"])
        for value in node.values():
            found += _payload_data(value)
    elif isinstance(node, list):
        for value in node:
            found += _payload_data(value)
    return found
