"""PostgreSQL failing under the API: every connection-level fault is a 503 with
Retry-After (never a 500), and the API serves again once the fault is gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from api.config import ApiSettings
from api.errors import unavailable_service
from app.settings import Settings
from tests.api.faulty_link import Fault, FaultyLink
from tests.api.fixtures import Keys
from tests.api.test_errors import assert_problem, other_app

LISTING = "/v1/registrations"


@pytest.fixture
async def link(pg_url: str) -> AsyncIterator[FaultyLink]:
    link = await FaultyLink(pg_url).start()
    try:
        yield link
    finally:
        await link.stop()


@pytest.fixture
async def api(link: FaultyLink, stack_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    fast = ApiSettings(  # type: ignore[call-arg]
        _env_file=None, pool_min_size=0, pool_acquire_timeout=1, auth_cache_seconds=0
    )
    async with other_app(stack_settings.model_copy(update={"database_url": link.url}), fast) as client:
        try:
            yield client
        finally:
            # Dead links close at once; the pool would otherwise wait on them at shutdown.
            link.fault = Fault.NONE
            link.drop_all()


async def _unavailable(api: httpx.AsyncClient, api_keys: Keys) -> None:
    response = await api.get(LISTING, headers=api_keys.headers("viewer"))
    body = assert_problem(response, 503, "service_unavailable")
    assert body["service"] == "postgres"
    assert int(response.headers["retry-after"]) > 0


async def _serving(api: httpx.AsyncClient, api_keys: Keys) -> None:
    # The pool replaces a broken connection: a retry within a few attempts
    # succeeds, and from then on every request does (none stays broken in the pool).
    for _ in range(5):
        response = await api.get(LISTING, headers=api_keys.headers("viewer"))
        if response.status_code == 200:
            break
        assert_problem(response, 503, "service_unavailable")
    else:
        pytest.fail("the API did not recover once the fault was gone")
    for _ in range(5):
        response = await api.get(LISTING, headers=api_keys.headers("viewer"))
        assert response.status_code == 200, response.text


async def test_broken_protocol_state_is_503(api: httpx.AsyncClient, link: FaultyLink, api_keys: Keys) -> None:
    """asyncpg.InternalClientError ("cannot switch to state 12"), seen when
    PostgreSQL crashed under load, was a 500 without Retry-After."""
    await _serving(api, api_keys)
    link.inject_stray_message()
    await _unavailable(api, api_keys)
    await _serving(api, api_keys)


async def test_link_cut_mid_query_is_503(api: httpx.AsyncClient, link: FaultyLink, api_keys: Keys) -> None:
    await _serving(api, api_keys)
    link.fault = Fault.CUT_ON_QUERY
    await _unavailable(api, api_keys)
    link.fault = Fault.NONE
    await _serving(api, api_keys)


@pytest.mark.parametrize("fault", [Fault.STARTING_UP, Fault.REFUSE, Fault.SILENT], ids=lambda f: f.value)
async def test_connecting_fails_is_503(
    api: httpx.AsyncClient, link: FaultyLink, api_keys: Keys, fault: Fault
) -> None:
    """A server starting up (57P03), refusing, or not answering at all (the pool's
    acquire timeout) while the pool needs a new connection."""
    await _serving(api, api_keys)
    link.fault = fault
    link.drop_all()
    await _unavailable(api, api_keys)
    link.fault = Fault.NONE
    await _serving(api, api_keys)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
        asyncpg.exceptions._base.ProtocolError("unexpected message"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("pool is closing"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),  # acquiring from an exhausted pool, or connecting
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_connection_level_failure_means_postgres_is_unavailable(exc: BaseException) -> None:
    assert unavailable_service(exc) == "postgres"


def test_an_argument_the_driver_cannot_encode_is_not_an_outage() -> None:
    # A retry would fail the same way: telling the client to retry would be a lie.
    assert unavailable_service(asyncpg.exceptions._base.DataError("value out of int64 range")) is None


async def test_an_event_stream_ends_cleanly_when_the_database_goes(
    link: FaultyLink, stack_settings: Settings, api_keys: Keys
) -> None:
    """Once a stream has answered 200 no 503 can be sent: a database that goes away
    mid-stream ends the stream (the client reconnects with Last-Event-ID) instead
    of an error after the response started."""
    streaming = ApiSettings(  # type: ignore[call-arg]
        _env_file=None, pool_min_size=0, pool_acquire_timeout=1, auth_cache_seconds=60, sse_poll_seconds=0.05
    )
    settings = stack_settings.model_copy(update={"database_url": link.url})
    async with other_app(settings, streaming) as api:
        try:
            viewer = api_keys.headers("viewer")
            await api.get(LISTING, headers=viewer)  # the key is known (cached) before the fault
            reading = asyncio.ensure_future(api.get("/v1/events", params={"after": "0"}, headers=viewer))
            await asyncio.sleep(1.0)
            link.fault = Fault.CUT_ON_QUERY
            link.drop_all()
            response = await asyncio.wait_for(reading, timeout=30)
            assert response.status_code == 200
            assert response.text.startswith(": stream start")
        finally:
            link.fault = Fault.NONE
            link.drop_all()
