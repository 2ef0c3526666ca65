"""The chaos and scale-out benches' invariant checker finds what it is there to
find (the benches themselves are not run by the suite)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from app.settings import Settings
from bench import chaos, scale_out  # noqa: F401 - importable, with their stack and driver
from bench.drive import Ack, check


async def test_check_reports_lost_acknowledgements_and_orphan_applications(
    stack_settings: Settings, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment, submitted: dict[str, Any]
) -> None:
    app_id = submitted["id"]
    orphan = f"app_{uuid.uuid4().hex[:24]}"
    async with pool.acquire() as conn:
        # A row whose workflow was never started (the API died between the two).
        await conn.execute(
            """INSERT INTO application
                   (id, organisation_id, workflow_id, carrier_code, company_name, submitted_by)
               VALUES ($1, 'org_x', $2, 'china_unicom', 'x', 'bench')""",
            orphan,
            f"registration-{orphan}",
        )
    acks = [
        Ack(app_id, "submit"),  # true: ApplicationSubmitted is there
        Ack(app_id, "pay", payment_id="pay_never_recorded"),  # a 200 whose event is missing
    ]
    found = await check(
        stack_settings.database_url,
        stack_settings.temporal_address,
        acks,
        {app_id, orphan},
        stack_settings.encryption_keys,
    )
    counts = found.counts()
    assert counts["application without workflow"] == 1
    assert orphan in found.found["application without workflow"][0]
    assert counts["acknowledged action without its event"] == 1
    assert "'pay'" in found.found["acknowledged action without its event"][0]
    for name in ("event stream with a gap", "duplicate event", "duplicate payment", "stuck workflow task"):
        assert counts[name] == 0, found.found
    assert counts["read model differs from the Query"] == 0, found.found
