"""How the API judges Temporal from its health checks, through a link that slows
the real dev server's answers on purpose: one slow answer from a server that was
answering is load and refuses nothing; a second in a row, or a server that never
answered, makes workflow requests fail fast."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.readiness import WorkflowHealth


@dataclass
class SlowLink:
    """TCP to ``upstream``; every answer is held back ``delay`` seconds while set."""

    upstream: tuple[str, int]
    delay: float = 0.0
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> SlowLink:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers |= {writer, up_writer}
        with contextlib.suppress(OSError):
            await asyncio.gather(
                self._copy(reader, up_writer, slow=False), self._copy(up_reader, writer, slow=True)
            )

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, slow: bool) -> None:
        while data := await reader.read(65536):
            if slow and self.delay:
                await asyncio.sleep(self.delay)
            writer.write(data)
            await writer.drain()


@pytest.fixture
async def link(temporal_env: WorkflowEnvironment) -> AsyncIterator[SlowLink]:
    host, port = temporal_env.client.service_client.config.target_host.rsplit(":", 1)
    link = await SlowLink((host, int(port))).start()
    try:
        yield link
    finally:
        await link.stop()


async def _health(link: SlowLink, temporal_env: WorkflowEnvironment) -> WorkflowHealth:
    client = await Client.connect(f"127.0.0.1:{link.port}", namespace=temporal_env.client.namespace)
    return WorkflowHealth(
        client=client, task_queue="readiness-judgement", interval=0.1, poller_fresh_seconds=5, timeout=0.5
    )


async def test_one_slow_answer_refuses_nothing_and_a_second_in_a_row_does(
    link: SlowLink, temporal_env: WorkflowEnvironment
) -> None:
    health = await _health(link, temporal_env)
    await health.check()
    assert health.temporal_ok is True

    link.delay = 1.2  # longer than a check waits (0.5 s)
    await health.check()
    assert health.temporal_ok is True, "one slow answer under load must not refuse every write"
    assert health.unavailable() != "temporal"

    await health.check()
    assert health.temporal_ok is False
    assert health.unavailable() == "temporal"

    link.delay = 0.0
    for _ in range(20):  # the slow answers still in flight land first
        await health.check()
        if health.temporal_ok:
            break
    assert health.temporal_ok is True
    assert health.unavailable() != "temporal"
    await health.stop()


async def test_a_server_that_never_answered_is_judged_on_the_first_slow_check(
    link: SlowLink, temporal_env: WorkflowEnvironment
) -> None:
    health = await _health(link, temporal_env)
    link.delay = 1.2
    await health.check()
    assert health.temporal_ok is False
    assert health.unavailable() == "temporal"
    await health.stop()
