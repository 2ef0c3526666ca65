"""Webhooks end to end: the API, the event log's trigger, the endpoint workflows
and their sender on the real stack, delivering to real HTTP receivers on
127.0.0.1 (tests/webhook_receiver.py), verified with the standardwebhooks library.

Each test acts for an organisation of its own, so no test's registrations reach
another's endpoints. Retries here are short (``FAST``) so that a receiver that
fails five times, or for the whole retry window, is a matter of seconds."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks import WebhookVerificationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.webhook_waker import WebhookWaker
from activities.webhooks import LocalWakeups, WebhookActivities
from api.auth import Principal, Role
from app.settings import Settings, WebhookSettings
from app.worker import workflow_runner
from domain.service_rules import ChangeKind
from domain.timeline import EventType
from tests.api.fixtures import Keys, application_body, make_key
from tests.calendar_support import china_today, without_official_year
from tests.webhook_receiver import Answer, Received, Receiver, always, failing_then_ok
from workflows.contracts import UPDATE_RECOMPUTE_DEADLINE, DeadlineRecomputation, DeadlineRecomputationResult
from workflows.webhook_contracts import SWEEPER_WORKFLOW_ID
from workflows.webhook_deadlines import WebhookDeadlineSweeperWorkflow
from workflows.webhook_endpoint import WebhookEndpointWorkflow

FAST = WebhookSettings(
    attempt_timeout=timedelta(seconds=2),
    retry_initial=timedelta(milliseconds=50),
    retry_max_interval=timedelta(milliseconds=250),
    retry_window=timedelta(seconds=3),
    response_body_limit=64,
    linger=timedelta(milliseconds=500),
    heartbeat_timeout=timedelta(seconds=5),
    safety_poll_interval=timedelta(seconds=1),
    deadline_notice_lead=timedelta(days=30),
    deadline_sweep_interval=timedelta(milliseconds=500),
)

REGISTRATION_TYPES = [
    "application.submitted",
    "application.approved",
    "number.allocated",
    "prepayment.due",
    "prepayment.received",
    "verification.passed",
    "provisioning.started",
    "number.activated",
    "application.rejected",
    "application.changes_requested",
    "application.resubmitted",
    "application.withdrawn",
]


@pytest.fixture(scope="module")
async def webhook_worker(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, stack_settings: Settings
) -> AsyncIterator[Settings]:
    """The endpoint and sweeper workflows, their activities and the waker, as the
    worker process runs them, with ``FAST`` retries, on a task queue of their own."""
    task_queue = f"webhooks-{uuid.uuid4()}"
    settings = stack_settings.model_copy(update={"webhooks": FAST, "temporal_task_queue": task_queue})
    wakeups = LocalWakeups()
    activities = WebhookActivities(pool, settings, wakeups=wakeups)
    worker = Worker(
        temporal_env.client,
        task_queue=task_queue,
        workflows=[WebhookEndpointWorkflow, WebhookDeadlineSweeperWorkflow],
        activities=activities.callables(),
        workflow_runner=workflow_runner(),
    )
    waker = WebhookWaker(temporal_env.client, task_queue, pool, settings, wakeups)
    stop = asyncio.Event()
    async with worker:
        waking = asyncio.create_task(waker.run(stop))
        yield settings
        stop.set()
        await waking
        await temporal_env.client.get_workflow_handle(SWEEPER_WORKFLOW_ID).terminate("tests over")
    await activities.aclose()


class Org:
    """An organisation of the test's own, with its applicant key."""

    def __init__(self, name: str, token: str, keys: Keys) -> None:
        self.name = name
        self.token = token
        self.keys = keys

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}


@pytest.fixture
async def org(pool: asyncpg.Pool, settings: Settings, api_keys: Keys) -> Org:
    name = f"org_{uuid.uuid4().hex[:12]}"
    return Org(name, await make_key(pool, settings, Role.APPLICANT, name), api_keys)


@pytest.fixture
async def other_org(pool: asyncpg.Pool, settings: Settings, api_keys: Keys) -> Org:
    name = f"org_{uuid.uuid4().hex[:12]}"
    return Org(name, await make_key(pool, settings, Role.APPLICANT, name), api_keys)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


async def create_endpoint(
    client: httpx.AsyncClient, org: Org, url: str, event_types: list[str] | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": url, "event_types": event_types or REGISTRATION_TYPES},
        headers=org.headers(),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def submit(client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org) -> str:
    body = await application_body(client, pool, org.token)
    response = await client.post(
        "/v1/applications", json=body, headers=org.headers(**{"Idempotency-Key": str(uuid.uuid4())})
    )
    assert response.status_code == 201, response.text
    app_id: str = response.json()["id"]
    return app_id


async def decide(client: httpx.AsyncClient, org: Org, app_id: str, **decision: Any) -> dict[str, Any]:
    response = await client.post(
        f"/v1/applications/{app_id}/decision", json=decision, headers=org.keys.headers("operator")
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def to_active(client: httpx.AsyncClient, org: Org, app_id: str) -> None:
    approved = await decide(client, org, app_id, decision="approve")
    paid = await client.post(
        f"/v1/applications/{app_id}/payments",
        json={"amount_fen": approved["fees"]["first_prepayment_fen"]},
        headers=org.headers(**{"Idempotency-Key": str(uuid.uuid4())}),
    )
    assert paid.status_code == 200, paid.text
    verified = await client.post(
        f"/v1/applications/{app_id}/verification",
        json={"outcome": "pass", "reason": "identity confirmed"},
        headers=org.keys.headers("operator"),
    )
    assert verified.status_code == 200, verified.text


async def deliveries(
    client: httpx.AsyncClient, org: Org, endpoint_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/deliveries",
        params={"limit": 200, **params},
        headers=org.headers(),
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def until(check: Any, timeout: float = 20.0) -> Any:
    """Poll ``check()`` (async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def ids(received: list[Received]) -> list[str]:
    return [r.webhook_id for r in received]


# ---------------------------------------------------------------------------


async def test_the_catalogue_covers_every_domain_event(client: httpx.AsyncClient, api_keys: Keys) -> None:
    response = await client.get("/v1/webhook-endpoints/event-types", headers=api_keys.headers("viewer"))
    assert response.status_code == 200
    items = {i["type"]: i["domain_event_types"] for i in response.json()["items"]}
    for wanted in (
        "application.submitted",
        "application.changes_requested",
        "application.resubmitted",
        "application.approved",
        "application.rejected",
        "number.allocated",
        "prepayment.due",
        "prepayment.received",
        "verification.passed",
        "verification.failed",
        "number.activated",
        "bill.issued",
        "arrears.stage_changed",
        "service.restricted",
        "service.suspended",
        "service.resumed",
        "service.terminated",
        "number.reclaimed",
        "deadline.approaching",
        "deadline.recomputed",
    ):
        assert wanted in items, wanted
    sources = {s for names in items.values() for s in names}
    assert {t.value for t in EventType} <= sources
    assert {k.value for k in ChangeKind} <= sources
    assert items["deadline.recomputed"] == ["DeadlineRecomputed"]


async def test_create_shows_the_secret_once_and_checks_its_input(
    client: httpx.AsyncClient, api_keys: Keys, org: Org, other_org: Org
) -> None:
    created = await create_endpoint(client, org, "http://127.0.0.1:9/hook", ["application.rejected"])
    assert created["secret"].startswith("whsec_")
    assert created["organisation_id"] == org.name
    fetched = (await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=org.headers())).json()
    assert "secret" not in fetched and created["secret"] not in str(fetched)
    assert fetched["event_types"] == ["application.rejected"]

    bad = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://10.1.2.3/hook", "event_types": ["application.rejected", "no.such"]},
        headers=org.headers(),
    )
    assert bad.status_code == 422
    [error] = bad.json()["errors"]
    assert (error["field"], error["code"]) == ("event_types[1]", "invalid_choice")
    assert error["message"].startswith("Unknown value 'no.such': use one of application.submitted, ")
    private = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://10.1.2.3/hook", "event_types": ["application.rejected"]},
        headers=org.headers(),
    )
    assert (private.status_code, private.json()["errors"][0]["field"]) == (422, "url")
    assert private.json()["errors"][0]["code"] == "address_refused"
    for_other = await client.post(
        "/v1/webhook-endpoints",
        json={
            "url": "http://127.0.0.1:9/",
            "event_types": ["application.rejected"],
            "organisation_id": other_org.name,
        },
        headers=org.headers(),
    )
    assert (for_other.status_code, for_other.json()["errors"][0]["code"]) == (422, "organisation_mismatch")
    admin_without_org = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/", "event_types": ["application.rejected"]},
        headers=api_keys.headers("admin"),
    )
    assert admin_without_org.status_code == 422
    assert admin_without_org.json()["errors"][0]["field"] == "organisation_id"
    # A switch takes true or false: "off" or 1 is a client's bug, not a choice.
    for value in ("off", 1):
        switched = await client.patch(
            f"/v1/webhook-endpoints/{created['id']}", json={"enabled": value}, headers=org.headers()
        )
        assert switched.status_code == 422, switched.text
        assert switched.json()["errors"][0]["field"] == "enabled"
    still = (await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=org.headers())).json()
    assert still["enabled"] is True


# What production refuses when an endpoint is saved, each address class also
# written as an IPv6 address that leads to an IPv4 one of it: IPv4-mapped,
# -compatible, NAT64 (64:ff9b::/96), 6to4 (2002::/16) and Teredo (2001::/32,
# whose client address is stored inverted).
PRODUCTION_REFUSES = {
    "loopback": [
        "https://localhost/hook",  # by the system's resolver
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::127.0.0.1]/hook",
        "https://[64:ff9b::7f00:1]/hook",
        "https://[2002:7f00:1::1]/hook",
        "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
    ],
    "private": [
        "https://[64:ff9b::a00:7]/hook",
        "https://[2002:c0a8:101::1]/hook",
        "https://[::10.0.0.7]/hook",
    ],
    "link_local": ["https://[64:ff9b::a9fe:101]/hook", "https://[2002:a9fe:101::1]/hook"],
    "metadata": [
        "https://[64:ff9b::a9fe:a9fe]/hook",
        "https://[::ffff:169.254.169.254]/hook",
        "https://[2002:a9fe:a9fe::1]/hook",
        "https://[2001:0:4136:e378:8000:63bf:5601:5601]/hook",
    ],
    "reserved": ["https://[64:ff9b::6440:1]/hook", "https://[::ffff:100.64.0.1]/hook"],
    "unspecified": ["https://[64:ff9b::]/hook", "https://[::ffff:0.0.0.0]/hook"],
    "multicast": ["https://[64:ff9b::e000:1]/hook", "https://[2002:e000:1::1]/hook"],
}


async def test_production_refuses_internal_receivers_written_as_ipv6(
    client: httpx.AsyncClient, org: Org, stack_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack_settings.webhooks, "allow_insecure_receivers", False)
    assert not stack_settings.webhook_receivers_may_be_local  # as in production
    for address_class, urls in PRODUCTION_REFUSES.items():
        for url in urls:
            response = await client.post(
                "/v1/webhook-endpoints",
                json={"url": url, "event_types": ["application.rejected"]},
                headers=org.headers(),
            )
            assert response.status_code == 422, (url, response.text)
            [error] = response.json()["errors"]
            assert (error["field"], error["code"]) == ("url", "address_refused"), url
            assert f"a {address_class} address" in error["message"], (url, error["message"])
    # A public IPv4 address reached through NAT64 is a public receiver; a change
    # of URL is judged like a new one.
    public = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://[64:ff9b::5db8:d822]/hook", "event_types": ["application.rejected"]},
        headers=org.headers(),
    )
    assert public.status_code == 201, public.text
    moved = await client.patch(
        f"/v1/webhook-endpoints/{public.json()['id']}",
        json={"url": "https://[64:ff9b::a9fe:a9fe]/hook"},
        headers=org.headers(),
    )
    assert (moved.status_code, moved.json()["errors"][0]["code"]) == (422, "address_refused")
    await client.delete(f"/v1/webhook-endpoints/{public.json()['id']}", headers=org.headers())


async def test_a_registration_arrives_signed_in_order_as_the_timeline_shows_it(
    client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org, receiver: Receiver, webhook_worker: Settings
) -> None:
    endpoint = await create_endpoint(client, org, receiver.url)
    app_id = await submit(client, pool, org)
    await to_active(client, org, app_id)
    expected = [
        "application.submitted",
        "application.approved",
        "number.allocated",
        "prepayment.due",
        "prepayment.received",
        "verification.passed",
        "number.activated",  # no provisioning.started: the activation time is now
    ]
    await receiver.wait_for(lambda got: len([r for r in got if r.status == 200]) >= len(expected))
    delivered = receiver.delivered()
    assert receiver.types() == expected
    payloads = [r.verify(endpoint["secret"]) for r in delivered]
    with pytest.raises(WebhookVerificationError):
        delivered[0].verify("whsec_" + "A" * 43)
    versions = [p["data"]["version"] for p in payloads]
    assert versions == sorted(versions) and versions[0] == 1
    assert {p["data"]["application_id"] for p in payloads} == {app_id}
    assert len(set(ids(delivered))) == len(expected)  # one webhook-id per message

    timeline = (await client.get(f"/v1/applications/{app_id}/timeline", headers=org.headers())).json()
    shown = {e["version"]: e for e in timeline["entries"]}
    for payload in payloads:
        data = payload["data"]
        entry = shown[data["version"]]
        for key in ("event_type", "actor", "actor_role", "stage", "status", "overdue", "reason"):
            assert data[key] == entry[key], (payload["type"], key)
    approval = next(p for p in payloads if p["type"] == "number.allocated")["data"]
    assert approval["actor"] == "operator"  # the applicant's view: the role, not the operator's key
    assert approval["details"]["number"]
    assert "summary" not in str(payloads)  # no application summary, masked or not
    # The log shows each message delivered at its first attempt.
    log = await until(lambda: _all_delivered(client, org, endpoint["id"], len(expected)), timeout=10)
    assert all(d["attempts"] == 1 and d["attempt_log"][0]["status_code"] == 200 for d in log)


async def _all_delivered(
    client: httpx.AsyncClient, org: Org, endpoint_id: str, count: int
) -> list[dict[str, Any]] | None:
    items = await deliveries(client, org, endpoint_id)
    done = [d for d in items if d["status"] == "succeeded"]
    return items if len(done) == count == len(items) else None


async def test_rejections_and_change_requests_carry_their_codes(
    client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org, receiver: Receiver, webhook_worker: Settings
) -> None:
    endpoint = await create_endpoint(
        client, org, receiver.url, ["application.rejected", "application.changes_requested"]
    )
    changed = await submit(client, pool, org)
    await decide(
        client, org, changed, decision="request_changes", fields=["contact_address"],
        documents=["business_licence"], reason="address does not match the licence",
    )  # fmt: skip
    rejected = await submit(client, pool, org)
    await decide(
        client, org, rejected, decision="reject", reason_code="documents_invalid", reason="illegible"
    )
    await receiver.wait_for(lambda got: len(got) >= 2)
    by_type = {p["type"]: p["data"] for p in (r.verify(endpoint["secret"]) for r in receiver.delivered())}
    change = by_type["application.changes_requested"]
    assert (change["application_id"], change["fields"], change["documents"]) == (
        changed, ["contact_address"], ["business_licence"],
    )  # fmt: skip
    assert change["reason"] == "address does not match the licence" and change["resubmit_by"]
    assert change["status"] == "changes_requested"
    rejection = by_type["application.rejected"]
    assert (rejection["application_id"], rejection["reason_code"], rejection["reason"]) == (
        rejected, "documents_invalid", "illegible",
    )  # fmt: skip
    assert (rejection["stage"], rejection["status"]) == ("closed", "rejected")
    assert receiver.types().count("application.submitted") == 0  # not subscribed


async def test_a_receiver_failing_five_times_gets_the_message_once_with_one_id(
    client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org, webhook_worker: Settings
) -> None:
    failing = failing_then_ok(5, status=503)

    def respond(n: int, headers: dict[str, str], body: bytes) -> Answer:
        answer = failing(n, headers, body)
        assert isinstance(answer, Answer)
        return Answer(answer.status, body=b"x" * 500)  # longer than the log keeps

    async with Receiver(respond) as receiver:
        endpoint = await create_endpoint(client, org, receiver.url, ["application.submitted"])
        await submit(client, pool, org)
        await receiver.wait_for(lambda got: any(r.status == 200 for r in got))
        await asyncio.sleep(0.5)  # no further attempt follows the success
    assert [r.status for r in receiver.received] == [503] * 5 + [200]
    assert len(set(ids(receiver.received))) == 1
    timestamps = [int(r.headers["webhook-timestamp"]) for r in receiver.received]
    assert timestamps == sorted(timestamps)
    for r in receiver.received:
        r.verify(endpoint["secret"])  # every attempt signed afresh
    [delivery] = await until(lambda: _all_delivered(client, org, endpoint["id"], 1))
    assert delivery["id"] == receiver.received[0].webhook_id
    assert delivery["attempts"] == 6
    log = delivery["attempt_log"]
    assert [a["status_code"] for a in log] == [503] * 5 + [200]
    assert [a["succeeded"] for a in log] == [False] * 5 + [True]
    assert all(a["latency_ms"] >= 0 for a in log)
    assert log[0]["response_body"] == "x" * 64  # truncated to the limit
    gaps = [
        datetime.fromisoformat(b["attempted_at"]) - datetime.fromisoformat(a["attempted_at"])
        for a, b in itertools.pairwise(log)
    ]
    assert all(g >= timedelta(milliseconds=35) for g in gaps), gaps  # backoff (with jitter)
    endpoint_now = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=org.headers())).json()
    assert endpoint_now["failing_since"] is None and endpoint_now["enabled"]


async def test_410_gone_disables_the_endpoint_until_its_owner_enables_it(
    client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org, webhook_worker: Settings
) -> None:
    async with Receiver(always(410)) as receiver:
        endpoint = await create_endpoint(client, org, receiver.url, ["application.submitted"])
        await submit(client, pool, org)
        disabled = await until(lambda: _disabled(client, org, endpoint["id"]))
        assert disabled["disabled_reason"] == "gone"
        assert "410" in disabled["disabled_detail"]
        await submit(client, pool, org)  # nothing is queued for a disabled endpoint
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 1
        [delivery] = await deliveries(client, org, endpoint["id"])
        assert (delivery["status"], delivery["failure_reason"]) == ("failed", "gone")
        redeliver = await client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{delivery['id']}/redeliver",
            headers=org.headers(),
        )
        assert (redeliver.status_code, redeliver.json()["code"]) == (409, "endpoint_disabled")
        enabled = await client.patch(
            f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True}, headers=org.headers()
        )
        assert enabled.status_code == 200
        assert (enabled.json()["enabled"], enabled.json()["disabled_reason"]) == (True, None)


async def _disabled(client: httpx.AsyncClient, org: Org, endpoint_id: str) -> dict[str, Any] | None:
    body: dict[str, Any] = (
        await client.get(f"/v1/webhook-endpoints/{endpoint_id}", headers=org.headers())
    ).json()
    return None if body["enabled"] else body


async def test_an_endpoint_failing_for_the_whole_window_is_disabled_and_says_why(
    client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org, webhook_worker: Settings
) -> None:
    async with Receiver(always(500)) as receiver:
        endpoint = await create_endpoint(client, org, receiver.url, ["application.submitted"])
        await submit(client, pool, org)
        disabled = await until(lambda: _disabled(client, org, endpoint["id"]), timeout=15)
    assert disabled["disabled_reason"] == "failing"
    assert "Nothing was delivered since" in disabled["disabled_detail"]
    assert "HTTP 500" in disabled["disabled_detail"]
    assert disabled["failing_since"] is not None
    [delivery] = await deliveries(client, org, endpoint["id"])
    assert (delivery["status"], delivery["failure_reason"]) == ("failed", "retries_exhausted")
    first = datetime.fromisoformat(delivery["attempt_log"][0]["attempted_at"])
    last = datetime.fromisoformat(delivery["attempt_log"][-1]["attempted_at"])
    # The last attempt is scheduled inside the window (it may start a moment late on a busy machine).
    assert timedelta(seconds=2) <= last - first <= FAST.retry_window + timedelta(seconds=1)
    assert len(receiver.received) == delivery["attempts"] >= 5


async def test_each_application_arrives_in_order_under_concurrent_events(
    client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org, webhook_worker: Settings
) -> None:
    """Five registrations moved at once, to a receiver that answers slowly and
    fails now and then: each application's messages are acknowledged in stream order."""
    calls = 0

    def respond(n: int, headers: dict[str, str], body: bytes) -> Answer:
        nonlocal calls
        calls += 1
        if calls % 4 == 0:
            return Answer(500)
        return Answer(200, delay=0.01 * (calls % 5))

    async with Receiver(respond) as receiver:
        await create_endpoint(client, org, receiver.url)
        apps = [await submit(client, pool, org) for _ in range(5)]
        await asyncio.gather(*(to_active(client, org, a) for a in apps))
        await receiver.wait_for(
            lambda got: len([r for r in got if r.status == 200]) >= 7 * len(apps), timeout=40
        )
    order = {i: n for n, i in enumerate(REGISTRATION_TYPES)}
    for app_id in apps:
        mine = [r.json() for r in receiver.delivered() if r.json()["data"]["application_id"] == app_id]
        keys = [(m["data"]["version"], order[m["type"]]) for m in mine]
        assert keys == sorted(keys), app_id
        assert len(mine) == 7, app_id
    assert len(ids(receiver.delivered())) == len(set(ids(receiver.delivered())))  # no second success


async def test_a_rotated_secret_signs_beside_the_old_one_for_the_overlap(
    client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org, receiver: Receiver, webhook_worker: Settings
) -> None:
    endpoint = await create_endpoint(client, org, receiver.url, ["application.submitted"])
    old = endpoint["secret"]
    rotated = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=org.headers()
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_")
    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=24)

    await submit(client, pool, org)
    await receiver.wait_for(lambda got: len(got) == 1)
    during = receiver.received[0]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    during.verify(old)
    during.verify(new)

    # A day later (the overlap is over): the old secret no longer signs.
    await pool.execute(
        "UPDATE webhook_endpoint SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1",
        endpoint["id"],
    )
    await submit(client, pool, org)
    await receiver.wait_for(lambda got: len(got) == 2)
    after = receiver.received[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    after.verify(new)
    with pytest.raises(WebhookVerificationError):
        after.verify(old)


async def test_redelivery_and_replay_send_again_with_the_same_ids(
    client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org, receiver: Receiver, webhook_worker: Settings
) -> None:
    endpoint = await create_endpoint(
        client, org, receiver.url, ["application.submitted", "application.withdrawn"]
    )
    before = datetime.now(UTC) - timedelta(seconds=1)
    first = await submit(client, pool, org)
    await receiver.wait_for(lambda got: len(got) == 1)
    [delivery] = await until(lambda: _all_delivered(client, org, endpoint["id"], 1))

    again = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{delivery['id']}/redeliver", headers=org.headers()
    )
    assert again.status_code == 200, again.text
    await receiver.wait_for(lambda got: len(got) == 2)
    assert ids(receiver.received) == [delivery["id"]] * 2

    # An outage: disabled while an application is withdrawn and another submitted.
    off = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False}, headers=org.headers()
    )
    assert off.json()["disabled_reason"] == "owner"
    withdrawn = await client.post(f"/v1/applications/{first}/withdraw", json={}, headers=org.headers())
    assert withdrawn.status_code == 200
    second = await submit(client, pool, org)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 2
    await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True}, headers=org.headers()
    )
    replay = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/replay",
        params={"since": before.isoformat()},
        headers=org.headers(),
    )
    assert replay.status_code == 200, replay.text
    assert replay.json()["queued"] == 3
    await receiver.wait_for(lambda got: len(got) == 5)
    replayed = receiver.received[2:]
    assert replayed[0].webhook_id == delivery["id"]  # sent before: the same id
    # In event order per application (the two applications' messages travel side by side).
    assert [r.json()["type"] for r in replayed if r.json()["data"]["application_id"] == first] == [
        "application.submitted",
        "application.withdrawn",
    ]
    assert [r.json()["type"] for r in replayed if r.json()["data"]["application_id"] == second] == [
        "application.submitted"
    ]
    for r in replayed:
        r.verify(endpoint["secret"])
    bad = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/replay",
        params={"since": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
        headers=org.headers(),
    )
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "since")


async def test_an_organisation_never_receives_nor_sees_anothers(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    api_keys: Keys,
    org: Org,
    other_org: Org,
    webhook_worker: Settings,
) -> None:
    async with Receiver() as mine, Receiver() as theirs:
        my_endpoint = await create_endpoint(client, org, mine.url, ["application.submitted"])
        their_endpoint = await create_endpoint(client, other_org, theirs.url, ["application.submitted"])
        their_app = await submit(client, pool, other_org)
        my_app = await submit(client, pool, org)
        await mine.wait_for(lambda got: len(got) == 1)
        await theirs.wait_for(lambda got: len(got) == 1)
        await until(lambda: _all_delivered(client, org, my_endpoint["id"], 1))
        # A replay of my endpoint over the last two days brings my organisation's events only.
        replay = await client.post(
            f"/v1/webhook-endpoints/{my_endpoint['id']}/replay",
            params={"since": (datetime.now(UTC) - timedelta(days=2)).isoformat()},
            headers=org.headers(),
        )
        assert replay.json()["queued"] == 1
        await mine.wait_for(lambda got: len(got) == 2)
        await asyncio.sleep(0.3)
    assert [r.json()["data"]["application_id"] for r in mine.received] == [my_app, my_app]
    assert [r.json()["data"]["application_id"] for r in theirs.received] == [their_app]

    [their_delivery] = await until(lambda: _all_delivered(client, other_org, their_endpoint["id"], 1))
    base = f"/v1/webhook-endpoints/{their_endpoint['id']}"
    recent = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for method, path in (
        ("GET", base),
        ("PATCH", base),
        ("DELETE", base),
        ("POST", f"{base}/rotate-secret"),
        ("GET", f"{base}/deliveries"),
        ("GET", f"{base}/deliveries/{their_delivery['id']}"),
        ("POST", f"{base}/deliveries/{their_delivery['id']}/redeliver"),
        ("POST", f"{base}/replay?since={recent}"),
    ):
        response = await client.request(
            method, path, json={} if method == "PATCH" else None, headers=org.headers()
        )
        assert response.status_code == 404, (method, path, response.text)
    # Their delivery id under my endpoint is no more found than under theirs.
    crossed = await client.get(
        f"/v1/webhook-endpoints/{my_endpoint['id']}/deliveries/{their_delivery['id']}", headers=org.headers()
    )
    assert crossed.status_code == 404
    listed = (await client.get("/v1/webhook-endpoints", headers=org.headers())).json()["items"]
    assert {e["id"] for e in listed} == {my_endpoint["id"]}
    admin = (
        await client.get(
            "/v1/webhook-endpoints",
            params={"organisation_id": other_org.name},
            headers=api_keys.headers("admin"),
        )
    ).json()["items"]
    assert {e["id"] for e in admin} == {their_endpoint["id"]}


async def test_deliveries_filter_by_status_type_and_application(
    client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org, receiver: Receiver, webhook_worker: Settings
) -> None:
    endpoint = await create_endpoint(
        client, org, receiver.url, ["application.submitted", "application.rejected"]
    )
    one = await submit(client, pool, org)
    two = await submit(client, pool, org)
    await decide(client, org, two, decision="reject", reason_code="other")
    await until(lambda: _all_delivered(client, org, endpoint["id"], 3))
    assert {
        d["application_id"] for d in await deliveries(client, org, endpoint["id"], application_id=one)
    } == {one}
    rejected = await deliveries(client, org, endpoint["id"], event_type="application.rejected")
    assert [(d["application_id"], d["event_type"]) for d in rejected] == [(two, "application.rejected")]
    assert await deliveries(client, org, endpoint["id"], status="failed") == []
    page = (
        await client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", params={"limit": 2}, headers=org.headers()
        )
    ).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (
        await client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
            params={"limit": 2, "cursor": page["next_cursor"]},
            headers=org.headers(),
        )
    ).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None


async def test_an_approaching_deadline_is_noticed_once(
    client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org, receiver: Receiver, webhook_worker: Settings
) -> None:
    endpoint = await create_endpoint(client, org, receiver.url, ["deadline.approaching"])
    app_id = await submit(client, pool, org)
    registration = (await client.get(f"/v1/applications/{app_id}", headers=org.headers())).json()
    await receiver.wait_for(lambda got: len(got) == 1)
    await asyncio.sleep(4 * FAST.deadline_sweep_interval.total_seconds())  # more sweeps: no second notice
    [notice] = receiver.received
    payload = notice.verify(endpoint["secret"])
    assert payload["type"] == "deadline.approaching"
    data = payload["data"]
    assert (data["application_id"], data["kind"], data["status"]) == (
        app_id,
        "operator_decision",
        "in_review",
    )
    assert datetime.fromisoformat(data["deadline_at"]) == datetime.fromisoformat(
        registration["next_deadline"]
    )
    assert data["kind"] == registration["next_deadline_kind"]  # in the API's words
    count = await pool.fetchval("SELECT count(*) FROM deadline_notice WHERE application_id = $1", app_id)
    assert count == 1


async def test_a_made_up_cursor_is_a_422(client: httpx.AsyncClient, org: Org) -> None:
    from api.schemas.common import encode_cursor

    endpoint = await create_endpoint(client, org, "http://127.0.0.1:9/hook", ["application.rejected"])
    for path, cursor in (
        ("/v1/webhook-endpoints", encode_cursor("whe", ["yesterday", "x"], {"organisation_id": org.name})),
        (
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
            encode_cursor("whd", ["many"], {"status": None, "event_type": None, "application_id": None}),
        ),
        (f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", "garbage"),
    ):
        response = await client.get(path, params={"cursor": cursor}, headers=org.headers())
        assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "cursor"), path


async def test_a_recomputed_deadline_reaches_its_subscribers(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    org: Org,
    receiver: Receiver,
    webhook_worker: Settings,
    temporal_env: WorkflowEnvironment,
) -> None:
    """Submitted while this year has no official schedule (a provisional review
    target), then the year loaded and the registration's deadline recomputed, as
    the calendar recompute does it: subscribers of deadline.recomputed get the
    timeline entry, with the old and new instants in ``details``."""
    endpoint = await create_endpoint(client, org, receiver.url, ["deadline.recomputed"])
    year = china_today().year
    async with without_official_year(pool, year):
        app_id = await submit(client, pool, org)
        shown = await client.get(f"/v1/applications/{app_id}", headers=org.headers())
        assert shown.json()["deadline_provisional"] is True
    recomputed = await temporal_env.client.get_workflow_handle(f"registration-{app_id}").execute_update(
        UPDATE_RECOMPUTE_DEADLINE,
        DeadlineRecomputation(year=year, calendar_version=0),
        result_type=DeadlineRecomputationResult,
    )
    assert recomputed.recomputed and not recomputed.status.deadline_provisional
    await receiver.wait_for(lambda got: len(got) == 1)
    payload = receiver.received[0].verify(endpoint["secret"])
    assert payload["type"] == "deadline.recomputed"
    data = payload["data"]
    assert (data["application_id"], data["event_type"], data["deadline_provisional"]) == (
        app_id,
        "DeadlineRecomputed",
        False,
    )
    details = data["details"]
    assert details["deadline_kind"] == "review_due" and details["calendar_version"] >= 1
    assert datetime.fromisoformat(data["next_deadline"]) == datetime.fromisoformat(details["new_at"])
    assert "counted again on calendar version" in data["reason"]


async def test_a_retry_due_after_the_sender_lingers_is_taken_by_the_workflow_timer(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    org: Org,
    receiver: Receiver,
    webhook_worker: Settings,
    temporal_env: WorkflowEnvironment,
) -> None:
    endpoint = await create_endpoint(client, org, receiver.url, ["application.submitted"])
    await submit(client, pool, org)
    [delivery] = await until(lambda: _all_delivered(client, org, endpoint["id"], 1))
    # A retry scheduled 2 s ahead, longer than the sender lingers (0.5 s): the
    # pass ends and the endpoint's workflow sleeps on a timer until it is due.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """UPDATE webhook_delivery SET status = 'pending', next_attempt_at = now() + interval '2 seconds'
               WHERE id = $1""",
            uuid.UUID(hex=delivery["id"].removeprefix("msg_")),
        )
        await conn.execute("SELECT pg_notify('webhook_delivery', $1)", endpoint["id"])
    queued = asyncio.get_running_loop().time()
    await receiver.wait_for(lambda got: len(got) == 2, timeout=10)
    assert asyncio.get_running_loop().time() - queued >= 1.9
    assert ids(receiver.received) == [delivery["id"]] * 2
    history = await temporal_env.client.get_workflow_handle(
        f"webhook-endpoint-{endpoint['id']}"
    ).fetch_history()
    assert any(e.HasField("timer_fired_event_attributes") for e in history.events)


# ---------------------------------------------------------------------------
# Conventions shared with the rest of the API: dates, timestamps, cursors, choices


async def test_replay_takes_dates_like_every_other_route(client: httpx.AsyncClient, org: Org) -> None:
    """A number, an instant outside datetime's range, a time before 2000 or one
    without its offset: each is a 422 naming the parameter at fault."""
    endpoint = await create_endpoint(client, org, "http://127.0.0.1:9/hook", ["application.rejected"])
    path = f"/v1/webhook-endpoints/{endpoint['id']}/replay"
    recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for params, field, code in (
        ({"since": "0.5"}, "since", "datetime_format"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "since", "out_of_range"),
        ({"since": "1900-01-01T00:00:00Z"}, "since", "out_of_range"),
        ({"since": "2026-12-01T09:00:00"}, "since", "timezone_required"),
        # What an unencoded "+08:00" in a URL arrives as: the message says to write %2B.
        ({"since": recent[:19] + " 08:00"}, "since", "datetime_format"),
        ({"since": recent, "until": "2030-01-01T00:00:00"}, "until", "timezone_required"),
    ):
        response = await client.post(path, params=params, headers=org.headers())
        assert response.status_code == 422, (params, response.text)
        assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, code)], params
        if " " in params["since"]:
            assert "%2B" in response.json()["errors"][0]["message"]


async def test_webhook_answers_and_messages_write_every_timestamp_in_utc(
    client: httpx.AsyncClient, pool: asyncpg.Pool, org: Org, receiver: Receiver, webhook_worker: Settings
) -> None:
    from tests.api.test_timestamps import UTC_Z, assert_every_timestamp_is_utc_z

    endpoint = await create_endpoint(
        client, org, receiver.url, ["application.approved", "prepayment.due", "deadline.approaching"]
    )
    rotated = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=org.headers()
    )
    app_id = await submit(client, pool, org)
    await receiver.wait_for(lambda got: len(got) == 1)  # the review's deadline
    await decide(client, org, app_id, decision="approve")
    # The approval twice, and the prepayment's deadline.
    await receiver.wait_for(lambda got: len(got) == 4)
    messages = [r.json() for r in receiver.received]
    await until(lambda: _all_delivered(client, org, endpoint["id"], len(receiver.received)))
    beijing = datetime.now(UTC).astimezone(timezone(timedelta(hours=8))) - timedelta(minutes=5)
    replay = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/replay",
        params={"since": beijing.isoformat()},
        headers=org.headers(),
    )
    answers: dict[str, Any] = {
        "created": endpoint,
        "rotated": rotated.json(),
        "listed": (await client.get("/v1/webhook-endpoints", headers=org.headers())).json(),
        "deliveries": (
            await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=org.headers())
        ).json(),
        "replay": replay.json(),
        "messages": messages,
    }
    assert_every_timestamp_is_utc_z(answers)
    assert replay.json()["since"] == beijing.astimezone(UTC).isoformat().replace("+00:00", "Z")
    due = next(m for m in messages if m["type"] == "prepayment.due")
    assert UTC_Z.fullmatch(due["data"]["details"]["pay_by"])  # the event's facts too
    notice = next(m for m in messages if m["type"] == "deadline.approaching")
    assert UTC_Z.fullmatch(notice["data"]["deadline_at"]) and UTC_Z.fullmatch(notice["timestamp"])


async def test_a_delivery_cursor_continues_only_its_own_filters(
    client: httpx.AsyncClient, pool: asyncpg.Pool, api_keys: Keys, org: Org, other_org: Org
) -> None:
    endpoint = await create_endpoint(
        client, org, "http://127.0.0.1:9/hook", ["application.submitted", "application.rejected"]
    )
    path = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"
    for _ in range(3):
        await submit(client, pool, org)
    first = await until(lambda: _page(client, org, path, {"limit": 1, "event_type": "application.submitted"}))
    assert first["next_cursor"]
    others: list[dict[str, Any]] = [
        {"limit": 1},
        {"limit": 1, "event_type": "application.rejected"},
        {"status": "failed"},
    ]
    for other in others:
        response = await client.get(
            path, params={**other, "cursor": first["next_cursor"]}, headers=org.headers()
        )
        # As every listing of the API answers it (README, "Using the API"): naming `cursor`.
        assert (response.status_code, response.json()["code"]) == (400, "cursor_mismatch"), other
        assert [e["field"] for e in response.json()["errors"]] == ["cursor"]
    same = await client.get(
        path,
        params={"limit": 1, "event_type": "application.submitted", "cursor": first["next_cursor"]},
        headers=org.headers(),
    )
    assert same.status_code == 200 and same.json()["items"][0]["id"] != first["items"][0]["id"]

    unknown = await client.get(path, params={"event_type": "application.teleported"}, headers=org.headers())
    assert unknown.status_code == 422
    [error] = unknown.json()["errors"]
    assert (error["field"], error["code"]) == ("event_type", "invalid_choice")

    # The endpoints listing too: an admin's cursor is for one organisation.
    for owner in (org, other_org):
        await create_endpoint(client, owner, "http://127.0.0.1:9/hook", ["application.rejected"])
    await create_endpoint(client, other_org, "http://127.0.0.1:9/hook", ["application.rejected"])
    admin = api_keys.headers("admin")
    page = (
        await client.get(
            "/v1/webhook-endpoints", params={"organisation_id": other_org.name, "limit": 1}, headers=admin
        )
    ).json()
    crossed = await client.get(
        "/v1/webhook-endpoints",
        params={"organisation_id": org.name, "limit": 1, "cursor": page["next_cursor"]},
        headers=admin,
    )
    assert (crossed.status_code, crossed.json()["code"]) == (400, "cursor_mismatch")


async def _page(
    client: httpx.AsyncClient, org: Org, path: str, params: dict[str, Any]
) -> dict[str, Any] | None:
    """The first page, once the listing has more than one page."""
    page: dict[str, Any] = (await client.get(path, params=params, headers=org.headers())).json()
    return page if page["next_cursor"] else None


async def test_a_replay_is_bounded_in_time_and_in_messages(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    org: Org,
    receiver: Receiver,
    webhook_worker: Settings,
    stack_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = await create_endpoint(client, org, receiver.url, ["application.submitted"])
    path = f"/v1/webhook-endpoints/{endpoint['id']}/replay"
    since = datetime.now(UTC) - timedelta(minutes=5)
    for _ in range(3):
        await submit(client, pool, org)
    await until(lambda: _all_delivered(client, org, endpoint["id"], 3))

    long_ago = datetime.now(UTC) - timedelta(days=4)
    for params, field in (
        ({"since": long_ago.isoformat()}, "since"),
        (
            {"since": long_ago.isoformat(), "until": (long_ago + timedelta(days=3, seconds=1)).isoformat()},
            "until",
        ),
    ):
        response = await client.post(path, params=params, headers=org.headers())
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert (error["field"], error["code"]) == (field, "window_too_long")
        assert "at most 3 days" in error["message"]

    monkeypatch.setattr(stack_settings.webhooks, "replay_max_messages", 2)
    too_many = await client.post(path, params={"since": since.isoformat()}, headers=org.headers())
    assert too_many.status_code == 422, too_many.text
    [error] = too_many.json()["errors"]
    assert (error["field"], error["code"]) == ("until", "too_many_messages")
    assert "more than 2 messages" in error["message"]
    # Nothing was queued by the refused call.
    assert {d["status"] for d in await deliveries(client, org, endpoint["id"])} == {"succeeded"}
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 3

    monkeypatch.setattr(stack_settings.webhooks, "replay_max_messages", 3)
    replayed = await client.post(path, params={"since": since.isoformat()}, headers=org.headers())
    assert (replayed.status_code, replayed.json()["queued"]) == (200, 3)
    await receiver.wait_for(lambda got: len(got) == 6)


async def test_a_service_deadline_is_noticed_in_the_services_own_words(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    settings: Settings,
    org: Org,
    receiver: Receiver,
    webhook_worker: Settings,
) -> None:
    """A number in arrears whose real-name registration is overdue too: its next
    deadline is the next arrears step, which the service calls ``arrears``, and
    so does the notice (the read-model row alone would suggest ``realname``)."""
    from activities.repositories import events as event_store
    from activities.repositories import inventory
    from activities.service import ApplyServiceChange, ServiceActivities, ServiceView
    from activities.service_carrier import FakeServiceCarrier
    from api.ids import new_id
    from domain import service_rules as rules
    from domain.timeline import RegistrationState, Stage, Status
    from tests.api.fixtures import PREFIX
    from tests.factories_inventory import add_fresh_numbers, in_minutes

    endpoint = await create_endpoint(client, org, receiver.url, ["deadline.approaching"])
    now = datetime.now(UTC)
    durations = rules.ServiceDurations()
    record = rules.start(
        activated_at=now - timedelta(days=400),
        balance_fen=-100,
        min_monthly_spend_fen=100,
        durations=durations,
    ).model_copy(
        update={
            "cycle_start": now - timedelta(days=1),
            "arrears_stage": rules.ArrearsStage.GRACE,
            "arrears_stage_at": now - durations.arrears_grace + timedelta(hours=2),
            "realname_stage": rules.RealnameStage.OVERDUE,
            "realname_stage_at": now - timedelta(days=1),
        }
    )
    due = rules.next_compliance_deadline(record, durations)
    assert due is not None and due.kind is rules.DeadlineKind.ARREARS

    app_id = new_id("app")
    (number,) = await add_fresh_numbers(pool, 1, prefix=PREFIX)
    async with pool.acquire() as conn, conn.transaction():
        await inventory.hold_number(conn, number, app_id, in_minutes(30))
        await inventory.allocate(conn, number, app_id)
        await inventory.activate(conn, number, app_id)
        # The API's record of the application, which GET /v1/applications/{id} reads with the row.
        await conn.execute(
            """INSERT INTO application
                   (id, organisation_id, workflow_id, carrier_code, company_name, submitted_by)
               VALUES ($1, $2, $3, 'china_unicom', '深圳市示例科技有限公司', 'tests')""",
            app_id,
            org.name,
            f"registration-{app_id}",
        )
        await event_store.save_registration(
            conn,
            RegistrationState(
                application_id=app_id,
                organisation_id=org.name,
                carrier="china_unicom",
                company_name="深圳市示例科技有限公司",
                credit_code="91440300MA5F1B2C3X",
                stage=Stage.ACTIVE,
                status=Status.ACTIVE,
                number=number,
                created_at=now,
                updated_at=now,
            ),
            f"registration-{app_id}",
        )
    change = rules.Change(
        seq=1,
        kind=rules.ChangeKind.ARREARS_GRACE,
        at=now,
        state_before=rules.ServiceState.ACTIVE,
        state_after=rules.ServiceState.ACTIVE,
        balance_fen=-100,
        actor_id="system",
        actor_role="system",
        reason="balance below zero",
    )
    view = ServiceView(
        service_state=record.state,
        arrears_stage=record.arrears_stage,
        realname_stage=record.realname_stage,
        realname_due_at=record.realname_due_at,
        balance_fen=record.balance_fen,
        next_deadline=due.at,
        next_deadline_kind=due.kind,
        overdue=True,
    )
    service = ServiceActivities(pool, settings, FakeServiceCarrier(pool))
    await service.apply_change(
        ApplyServiceChange(
            application_id=app_id,
            number=number,
            carrier="china_unicom",
            correlation_id="test",
            event_id=str(uuid.uuid4()),
            change=change,
            view=view,
        )
    )
    await receiver.wait_for(lambda got: len(got) == 1)
    data = receiver.received[0].verify(endpoint["secret"])["data"]
    assert (data["application_id"], data["kind"]) == (app_id, "arrears")
    assert datetime.fromisoformat(data["deadline_at"]) == due.at
    # The same words as the registration's nearest deadline in the API.
    shown = (await client.get(f"/v1/applications/{app_id}", headers=org.headers())).json()
    assert (shown["next_deadline_kind"], shown["next_deadline"]) == ("arrears", data["deadline_at"])


async def test_the_consoles_audit_trail_reaches_neither_the_feed_nor_a_webhook(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    settings: Settings,
    api_keys: Keys,
    org: Org,
    receiver: Receiver,
    webhook_worker: Settings,
) -> None:
    """A staff sign-in (stream staff:<id>) and a reveal of personal data (stream
    access:<application id>) are in the event log beside the registration's
    events; /v1/events and webhooks carry the registration's only."""
    from activities.repositories.service import append_event
    from api.services import personal_data
    from tests.api.test_dashboard import last_position, read_stream
    from web.services import staff

    endpoint = await create_endpoint(
        client, org, receiver.url, ["application.submitted", "application.approved"]
    )
    app_id = await submit(client, pool, org)
    await receiver.wait_for(lambda got: len(got) == 1)
    start = await last_position(pool)
    username, password = f"audit-{uuid.uuid4().hex[:8]}", "correct horse battery staple"
    async with pool.acquire() as conn:
        await staff.create_account(
            conn,
            username=username,
            display_name="Audit",
            role="operator",
            password=password,
            created_by="tests",
        )
        account = await staff.sign_in(
            pool.acquire, username, password, max_failures=5, lockout=timedelta(minutes=1)
        )
        operator = Principal(account.id, Role.OPERATOR, None, kind="staff")
        await personal_data.reveal(
            conn,
            personal_data.form_cipher(settings),
            operator,
            app_id,
            "legal_representative.id_number",
            "checking the licence scan",
        )
        # Even an audit event naming the organisation and a type its endpoint wants.
        await append_event(
            conn,
            stream_id=personal_data.access_stream(app_id),
            event_id=str(uuid.uuid4()),
            event_type="ApplicationApproved",
            actor=operator.actor_id,
            actor_role="operator",
            reason="audit",
            correlation_id="test",
            payload={"organisation_id": org.name},
            occurred_at=datetime.now(UTC),
        )
        audit = await conn.fetch(
            "SELECT position, event_type FROM domain_event WHERE position > $1 ORDER BY position", start
        )
    assert {r["event_type"] for r in audit} >= {"StaffSignedIn", "PersonalDataRevealed"}
    await decide(client, org, app_id, decision="approve")

    # The viewer's feed goes from the registration's submission to its approval.
    [approval] = await read_stream(client, api_keys, after=start, limit=1)
    assert (approval["event"], approval["data"]["application_id"]) == ("ApplicationApproved", app_id)
    await receiver.wait_for(lambda got: len(got) == 2)
    await asyncio.sleep(0.5)  # nothing else follows
    assert [(r.json()["type"], r.json()["data"]["application_id"]) for r in receiver.received] == [
        ("application.submitted", app_id),
        ("application.approved", app_id),
    ]
    queued = await pool.fetchval(
        "SELECT count(*) FROM webhook_delivery WHERE endpoint_id = $1 AND event_position = ANY($2::bigint[])",
        endpoint["id"],
        [r["position"] for r in audit],
    )
    assert queued == 0
