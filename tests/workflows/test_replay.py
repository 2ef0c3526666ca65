"""Committed histories of finished registrations (and of the service that
carries on after ACTIVE, ``service_*``) replay against the current workflow code.

A failure here means a change to the workflows alters the commands a running
registration emits (non-determinism). Before the first release (see
CONTRIBUTING.md) regenerate the histories on purpose
(``python -m tests.workflows.make_histories``) and review the diff; from the
first release on, version the change with ``workflow.patched()`` and keep the
old histories replaying.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

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
        "service_terminated",
        "service_continued_as_new",
        "rejected",
        "abandoned",
        "verification_expired",
        "withdrawn_while_provisioning",
        "deadline_recomputed",
        "abandoned_after_awaiting_calendar",
    } <= names
    assert len(HISTORIES) >= 16


@pytest.mark.parametrize("path", HISTORIES, ids=_id)
async def test_committed_history_replays(path: Path, settings: Settings) -> None:
    text = await asyncio.to_thread(path.read_text)
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    workflow = {"RegistrationWorkflow": RegistrationWorkflow, "ServiceWorkflow": ServiceWorkflow}
    replayer = Replayer(
        workflows=[workflow[started["workflowType"]["name"]]],
        data_converter=data_converter(settings.encryption_keys),
        workflow_runner=workflow_runner(),
    )
    history = WorkflowHistory.from_json(path.stem, text)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


def test_histories_cover_the_way_through_active() -> None:
    """At ACTIVE the registration's run carries on as the service, and continues
    as new into ServiceWorkflow only after a run's worth of billing."""

    def events(name: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads((ROOT / f"{name}.json").read_text())["events"]
        return found

    def workflow_type(name: str) -> str:
        started = events(name)[0]["workflowExecutionStartedEventAttributes"]
        return str(started["workflowType"]["name"])

    in_run = events("active")
    assert in_run[-1]["eventType"] == "EVENT_TYPE_TIMER_STARTED", "the service asleep, in the same run"
    assert not any(e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" for e in in_run)
    assert workflow_type("service_terminated") == "RegistrationWorkflow"
    assert "workflowExecutionCompletedEventAttributes" in events("service_terminated")[-1]
    continued = events("service_continued_as_new")[-1]["workflowExecutionContinuedAsNewEventAttributes"]
    assert continued["workflowType"] == {"name": "ServiceWorkflow"}


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
