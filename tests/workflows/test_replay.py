"""Committed histories of finished registrations (and of a service run after
ACTIVE, ``service_*``) replay against the current workflow code.

``histories/before_hand_off/`` keeps the histories the registration wrote before
it handed over to the service workflow at ACTIVE (commit d30c4a9): runs that
started on older code must keep replaying, not only what today's code writes.

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

ROOT = Path(__file__).parent / "histories"
HISTORIES = sorted(ROOT.rglob("*.json"))


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT).with_suffix(""))


def test_there_are_histories_of_every_ending() -> None:
    names = {_id(p) for p in HISTORIES}
    assert {
        "active",
        "before_hand_off/active",
        "before_hand_off/withdrawn_while_provisioning",
        "service_terminated",
        "rejected",
        "abandoned",
        "verification_expired",
        "withdrawn_while_provisioning",
    } <= names
    assert len(HISTORIES) >= 20


@pytest.mark.parametrize("path", HISTORIES, ids=_id)
async def test_committed_history_replays(path: Path, settings: Settings) -> None:
    replayer = Replayer(
        workflows=[ServiceWorkflow if path.stem.startswith("service_") else RegistrationWorkflow],
        data_converter=data_converter(settings.encryption_keys),
        workflow_runner=workflow_runner(),
    )
    history = WorkflowHistory.from_json(path.stem, await asyncio.to_thread(path.read_text))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


def test_histories_cover_both_sides_of_the_hand_off_patch() -> None:
    """New registrations hand over at ACTIVE; those that reached it before the
    hand-off existed (no patch marker) completed. Both kinds must be here."""

    def last_event(name: str) -> dict[str, object]:
        events: list[dict[str, object]] = json.loads((ROOT / f"{name}.json").read_text())["events"]
        return events[-1]

    handed = last_event("active")["workflowExecutionContinuedAsNewEventAttributes"]
    assert isinstance(handed, dict) and handed["workflowType"] == {"name": "ServiceWorkflow"}
    assert "workflowExecutionCompletedEventAttributes" in last_event("before_hand_off/active")


@pytest.mark.parametrize("path", HISTORIES, ids=_id)
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
