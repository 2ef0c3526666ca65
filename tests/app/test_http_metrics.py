"""The HTTP metrics middleware on its own: streams counted while open, a route
that raised counted as the 500 the client gets, unmatched paths under one label."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Receive, Scope, Send

from app.metrics import HTTP_IN_FLIGHT, HTTP_REQUESTS, SSE_STREAMS, HttpMetricsMiddleware


class Route:
    path = "/v1/things/{thing_id}"


def _scope(with_route: bool = True) -> Scope:
    scope: Scope = {"type": "http", "method": "GET", "path": "/v1/things/app_secret_id", "headers": []}
    if with_route:
        scope["route"] = Route()
    return scope


async def _receive() -> Message:
    return {"type": "http.request", "body": b""}


async def _discard(message: Message) -> None:
    pass


def _count(route: str, status: str) -> float:
    counted: float = HTTP_REQUESTS.labels(route, "GET", status)._value.get()
    return counted


async def test_an_event_stream_counts_as_open_until_it_ends() -> None:
    opened, finish = asyncio.Event(), asyncio.Event()

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        opened.set()
        await finish.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    before_streams, before_in_flight = SSE_STREAMS._value.get(), HTTP_IN_FLIGHT._value.get()
    task = asyncio.create_task(HttpMetricsMiddleware(stream)(_scope(), _receive, _discard))
    await opened.wait()
    assert SSE_STREAMS._value.get() == before_streams + 1
    assert HTTP_IN_FLIGHT._value.get() == before_in_flight + 1
    finish.set()
    await task
    assert SSE_STREAMS._value.get() == before_streams
    assert HTTP_IN_FLIGHT._value.get() == before_in_flight


async def test_a_route_that_raises_counts_as_a_500_and_unmatched_paths_share_a_label() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    before = _count(Route.path, "500")
    with pytest.raises(RuntimeError):
        await HttpMetricsMiddleware(broken)(_scope(), _receive, _discard)
    assert _count(Route.path, "500") == before + 1

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    before = _count("unmatched", "404")
    await HttpMetricsMiddleware(not_found)(_scope(with_route=False), _receive, _discard)
    assert _count("unmatched", "404") == before + 1
