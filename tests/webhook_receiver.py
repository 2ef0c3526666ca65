"""A webhook receiver for tests and the bench: a small HTTP/1.1 server on
127.0.0.1 in the calling process, standing in for a customer's endpoint.

It records every request (headers, body, arrival time) and answers what
``respond`` says for each one: a status, optionally after a delay, or never
(``hang``, to catch a sender mid-request). Keep-alive, Content-Length bodies
only: what the sender speaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import standardwebhooks


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    arrived: float  # time.time()
    status: int  # what was answered (0: nothing, the request hung)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    def verify(self, secret: str) -> Any:
        """The payload, if the signature verifies with ``secret`` (the Standard Webhooks verifier)."""
        return standardwebhooks.Webhook(secret).verify(self.body, self.headers)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"ok"
    delay: float = 0.0
    hang: bool = False
    headers: dict[str, str] = field(default_factory=dict)


Respond = Callable[[int, dict[str, str], bytes], Answer | Awaitable[Answer]]


def always(status: int = 200, **kw: Any) -> Respond:
    return lambda n, headers, body: Answer(status, **kw)


def failing_then_ok(failures: int, status: int = 500) -> Respond:
    """``failures`` answers of ``status`` per message id, then 200."""
    seen: dict[str, int] = {}

    def respond(n: int, headers: dict[str, str], body: bytes) -> Answer:
        key = headers.get("webhook-id", "")
        seen[key] = seen.get(key, 0) + 1
        return Answer(status) if seen[key] <= failures else Answer(200)

    return respond


class Receiver:
    def __init__(self, respond: Respond | None = None, *, record: bool = True) -> None:
        self.respond: Respond = respond or always(200)
        self.received: list[Received] = []
        self.record = record
        self.count = 0
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> Receiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                headers: dict[str, str] = {}
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                arrived = time.time()
                self.count += 1
                answer = self.respond(self.count, headers, body)
                if not isinstance(answer, Answer):
                    answer = await answer
                if answer.hang:
                    await self._note(Received(headers, body, arrived, 0))
                    await asyncio.Event().wait()
                if answer.delay:
                    await asyncio.sleep(answer.delay)
                head = {"Content-Length": str(len(answer.body)), **answer.headers}
                lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
                writer.write(f"HTTP/1.1 {answer.status} X\r\n{lines}\r\n".encode() + answer.body)
                await writer.drain()
                await self._note(Received(headers, body, arrived, answer.status))
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _note(self, received: Received) -> None:
        async with self._arrived:
            if self.record:
                self.received.append(received)
            self._arrived.notify_all()

    async def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 30.0) -> None:
        """Until ``predicate(self.received)`` holds."""

        async def check() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: predicate(self.received))

        try:
            await asyncio.wait_for(check(), timeout)
        except TimeoutError:
            t0 = self.received[0].arrived if self.received else 0
            summary = [
                (r.status, r.headers.get("webhook-id", "")[:12], round(r.arrived - t0, 2))
                for r in self.received
            ]
            raise AssertionError(f"receiver waited {timeout} s; got {summary}") from None

    def delivered(self) -> list[Received]:
        """Requests answered 2xx, in arrival order."""
        return [r for r in self.received if 200 <= r.status < 300]

    def types(self) -> list[str]:
        return [r.json()["type"] for r in self.delivered()]
