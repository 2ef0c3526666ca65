"""Registrations driven through the HTTP API the way a careful client would, and
the invariants checked afterwards from PostgreSQL and Temporal.

A client retries a request that got no answer, a connection error or a 5xx, with
the same Idempotency-Key where the route takes one, until a deadline; a 409 that
says the step was already taken (an earlier attempt went through unanswered) is
treated as done. Every 2xx is an acknowledgement: the action it answered must
be in the event log (``expected_event``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from app.settings import Settings
from app.temporal import data_converter
from tests.domain.factories import valid_application_dict
from workflows.contracts import QUERY_STATUS, registration_workflow_id

CARRIER = "china_unicom"
ORGANISATION = "org_bench"
PDF = b"%PDF-1.4\n% bench\n%%EOF\n"
DOCUMENT_KINDS = ("business_licence", "legal_rep_id", "application_form")

# What each acknowledged action leaves in the event log.
EXPECTED_EVENT = {
    "submit": "ApplicationSubmitted",
    "approve": "ApplicationApproved",
    "pay": "PaymentReceived",
    "verify": "VerificationPassed",
    "withdraw": "ApplicationWithdrawn",
}
# Event types a registration has at most once.
ONCE = (
    "ApplicationSubmitted",
    "ApplicationApproved",
    "VerificationPassed",
    "ProvisioningStarted",
    "NumberActivated",
    "ApplicationWithdrawn",
)


@dataclass(frozen=True)
class Ack:
    application_id: str
    action: str
    payment_id: str | None = None
    answer: str = ""  # what the 2xx said the state was


def _answer(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.status_code)
    state = body.get("registration", body) if isinstance(body, dict) else {}
    parts = [f"{k}={state[k]}" for k in ("stage", "status", "accepted", "paid_fen") if k in state]
    if "accepted" in body and "accepted" not in state:
        parts.append(f"accepted={body['accepted']}")
    return f"{response.status_code} " + " ".join(parts)


@dataclass
class Outcome:
    application_id: str | None = None
    final: str = ""  # "active", "withdrawn", or what went wrong
    seconds: float = 0.0


def payment_id(organisation: str, key: str) -> str:
    """The payment id the API derives from the Idempotency-Key (api/services/applications.py)."""
    return "pay_" + hashlib.sha256(f"{organisation}\x00{key}".encode()).hexdigest()[:32]


class GaveUp(Exception):
    pass


def _kind(response: httpx.Response) -> str:
    """A 5xx by status and, for a 503, the service it names (postgres, temporal, workers)."""
    if response.status_code == 503:
        try:
            return f"503-{response.json().get('service', '?')}"
        except ValueError:
            return "503"
    return str(response.status_code)


@dataclass
class Driver:
    """Sends requests to the live APIs in turn, keeps what clients saw."""

    base_urls: list[str]
    tokens: dict[str, str]
    deadline_seconds: float = 300.0
    errors: Counter[str] = field(default_factory=Counter)
    acks: list[Ack] = field(default_factory=list)
    documents: list[dict[str, str]] = field(default_factory=list)
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def client(self) -> httpx.AsyncClient:
        base = self.base_urls[next(self._turn) % len(self.base_urls)]
        if base not in self._clients:
            self._clients[base] = httpx.AsyncClient(
                base_url=base,
                timeout=httpx.Timeout(25.0, connect=2.0),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            )
        return self._clients[base]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    def headers(self, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}

    async def call(
        self,
        method: str,
        path: str,
        role: str,
        *,
        until: float,
        retry: bool = True,
        extra_headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """The first answer that is not a 5xx (retried, like a connection error)."""
        headers = self.headers(role, **(extra_headers or {}))
        while True:
            try:
                response = await self.client().request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                self.errors[type(exc).__name__] += 1
                if not retry:
                    raise GaveUp(type(exc).__name__) from exc
                pause = 0.3
            else:
                if response.status_code < 500:
                    return response
                self.errors[_kind(response)] += 1
                if not retry:
                    raise GaveUp(str(response.status_code))
                pause = min(1.0, float(response.headers.get("retry-after", "1")))
            if time.monotonic() + pause > until:
                raise GaveUp(f"{method} {path}: no answer before the deadline")
            await asyncio.sleep(pause * (0.5 + random.random()))

    async def upload_documents(self) -> None:
        until = time.monotonic() + 60
        for kind in DOCUMENT_KINDS:
            response = await self.call(
                "POST",
                "/v1/documents",
                "applicant",
                until=until,
                data={"kind": kind},
                files={"file": (f"{kind}.pdf", PDF, "application/pdf")},
            )
            response.raise_for_status()
            self.documents.append({"document_id": response.json()["id"]})

    def application(self, number: str, carrier: str = CARRIER) -> dict[str, Any]:
        body = valid_application_dict(carrier=carrier, requested_number=number, documents=self.documents)
        body.pop("organisation_id")
        body["activation_at"] = None  # activate as soon as verified
        return body

    async def submit_once(self, number: str) -> str | None:
        """One create with no retry, as a client that gives up would send it."""
        try:
            response = await self.call(
                "POST",
                "/v1/applications",
                "applicant",
                until=time.monotonic() + 30,
                retry=False,
                json=self.application(number),
                extra_headers={"Idempotency-Key": str(uuid.uuid4())},
            )
        except GaveUp:
            return None
        if response.status_code == 201:
            app_id: str = response.json()["id"]
            self.acks.append(Ack(app_id, "submit"))
            return app_id
        self.errors[f"submit-{response.status_code}"] += 1
        return None

    async def _outcome(self, script: Callable[[Outcome, float], Awaitable[str]]) -> Outcome:
        """Runs ``script`` (which fills in the application id and returns the
        final state) against the deadline; what stopped it becomes the outcome."""
        started = time.monotonic()
        outcome = Outcome()
        try:
            outcome.final = await script(outcome, started + self.deadline_seconds)
        except GaveUp as exc:
            outcome.final = f"gave up: {exc}"
        except AssertionError as exc:
            outcome.final = f"unexpected answer: {str(exc)[:200]}"
        outcome.seconds = time.monotonic() - started
        return outcome

    async def _approved(self, outcome: Outcome, number: str, until: float, carrier: str = CARRIER) -> int:
        """Submits and approves; the first prepayment due."""
        outcome.application_id = app_id = await self._submit(number, until, carrier)
        state = await self._decide(app_id, until)
        fees = state.get("fees") or (await self._state(app_id, until)).get("fees")
        assert fees, state
        due: int = fees["first_prepayment_fen"]
        return due

    async def _verify(self, app_id: str, until: float, *, lost_to_withdrawal: bool = False) -> None:
        body = {"outcome": "pass", "reason": "bench"}
        await self._step(
            app_id, "verify", "/verification", "operator", body, until, lost_to_withdrawal=lost_to_withdrawal
        )

    async def register(self, number: str, *, withdraw: bool = False) -> Outcome:
        """Submit, approve, then withdraw, or pay, verify and wait for ACTIVE."""

        async def script(outcome: Outcome, until: float) -> str:
            due = await self._approved(outcome, number, until)
            app_id = outcome.application_id or ""
            if withdraw:
                await self._step(app_id, "withdraw", "/withdraw", "applicant", {"reason": "bench"}, until)
                return "withdrawn"
            await self._pay(app_id, due, until)
            await self._verify(app_id, until)
            await self._wait_active(app_id, until)
            return "active"

        return await self._outcome(script)

    async def race_payment(self, number: str, carrier: str, window: float) -> Outcome:
        """Pays when the prepayment window (short for ``carrier``) is about to end,
        or has just ended: either the payment is taken (200, PaymentReceived) or
        refused (409, expired). The race of issue 12 item 1."""

        async def script(outcome: Outcome, until: float) -> str:
            due = await self._approved(outcome, number, until, carrier)
            app_id = outcome.application_id or ""
            await asyncio.sleep(max(0.0, window + random.uniform(-0.5, 0.3)))
            if not await self._pay(app_id, due, until, expired_ok=True):
                return "expired (payment refused)"
            await self._verify(app_id, until)
            await self._wait_active(app_id, until)
            return "active (paid in time)"

        return await self._outcome(script)

    async def race_withdrawal(self, number: str, provisioning_seconds: float) -> Outcome:
        """Withdraws while the (slowed) carrier provisions the number: either the
        withdrawal wins (200, ApplicationWithdrawn) or the number is active (409)."""

        async def script(outcome: Outcome, until: float) -> str:
            due = await self._approved(outcome, number, until)
            app_id = outcome.application_id or ""
            await self._pay(app_id, due, until)
            # The verification's workflow task makes the carrier call; the
            # withdrawal comes while it is on its way (the call outlasts the
            # task's heartbeat, when the workflow takes Updates again).
            verifying = asyncio.create_task(self._verify(app_id, until, lost_to_withdrawal=True))
            await asyncio.sleep(random.uniform(1.0, provisioning_seconds))
            response = await self.call(
                "POST",
                f"/v1/applications/{app_id}/withdraw",
                "applicant",
                until=until,
                json={"reason": "race"},
            )
            await verifying
            if response.status_code == 200:
                self.acks.append(Ack(app_id, "withdraw", answer=_answer(response)))
                return "withdrawn during provisioning"
            assert response.status_code == 409, response.text
            return "active before the withdrawal"

        return await self._outcome(script)

    async def _submit(self, number: str, until: float, carrier: str = CARRIER) -> str:
        key = str(uuid.uuid4())  # the same on every retry
        body = self.application(number, carrier)
        while True:
            response = await self.call(
                "POST",
                "/v1/applications",
                "applicant",
                until=until,
                json=body,
                extra_headers={"Idempotency-Key": key},
            )
            if response.status_code == 201:
                app_id: str = response.json()["id"]
                self.acks.append(Ack(app_id, "submit"))
                return app_id
            self.errors[f"submit-{response.status_code}"] += 1
            assert response.status_code == 409 and response.json().get("code") != "idempotency_key_reused", (
                response.text
            )
            await asyncio.sleep(0.5)

    async def _state(self, app_id: str, until: float) -> dict[str, Any]:
        response = await self.call("GET", f"/v1/applications/{app_id}", "operator", until=until)
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state

    async def _decide(self, app_id: str, until: float) -> dict[str, Any]:
        while True:
            response = await self.call(
                "POST",
                f"/v1/applications/{app_id}/decision",
                "operator",
                until=until,
                json={"decision": "approve"},
            )
            if response.status_code == 200:
                self.acks.append(Ack(app_id, "approve", answer=_answer(response)))
                state: dict[str, Any] = response.json()
                return state
            body = response.json()
            assert response.status_code == 409, response.text
            current = body.get("registration") or {}
            if body.get("code") == "already_decided" or current.get("stage") not in (None, "apply", "audit"):
                return current  # an earlier attempt went through unanswered
            self.errors["decide-409-not-yet"] += 1
            await asyncio.sleep(0.3)  # the apply step has not finished yet

    async def _pay(self, app_id: str, amount: int, until: float, *, expired_ok: bool = False) -> bool:
        """True once paid (acknowledged); False when refused as expired (``expired_ok``)."""
        key = str(uuid.uuid4())
        response = await self.call(
            "POST",
            f"/v1/applications/{app_id}/payments",
            "applicant",
            until=until,
            json={"amount_fen": amount},
            extra_headers={"Idempotency-Key": key},
        )
        if expired_ok and response.status_code == 409:
            return False
        assert response.status_code == 200, response.text
        self.acks.append(Ack(app_id, "pay", payment_id(ORGANISATION, key), _answer(response)))
        return True

    async def _step(
        self,
        app_id: str,
        action: str,
        suffix: str,
        role: str,
        body: dict[str, Any],
        until: float,
        *,
        lost_to_withdrawal: bool = False,
    ) -> None:
        """One operator or applicant step; a 409 is fine when an earlier attempt
        (answered or not) took it, or, with ``lost_to_withdrawal``, when a
        withdrawal came first."""
        response = await self.call("POST", f"/v1/applications/{app_id}{suffix}", role, until=until, json=body)
        if response.status_code == 200:
            self.acks.append(Ack(app_id, action, answer=_answer(response)))
            return
        assert response.status_code == 409, response.text
        problem = response.json()
        current = problem.get("registration") or {}
        self.errors[f"{action}-409"] += 1
        if problem.get("code") == "already_decided":
            return  # an earlier attempt of ours is recorded or being recorded
        done = {"verify": ("activate", "active"), "withdraw": ("closed",)}[action]
        if lost_to_withdrawal:
            done = (*done, "closed")
        assert current.get("stage") in done or (
            lost_to_withdrawal and "withdrawn" in problem.get("detail", "")
        ), response.text

    async def _wait_active(self, app_id: str, until: float) -> None:
        while True:
            state = await self._state(app_id, until)
            if state["stage"] == "active":
                return
            assert state["stage"] != "closed", state
            if time.monotonic() > until:
                raise GaveUp(f"not active before the deadline: {state['stage']}/{state['status']}")
            await asyncio.sleep(0.3)


_REGISTRATION = "SELECT id, stage, status, last_event_version, number FROM registration"

# --- invariants ----------------------------------------------------------------------


@dataclass
class Violations:
    """Invariant name -> what broke it (application id and what)."""

    found: dict[str, list[str]] = field(default_factory=dict)
    checked: Counter[str] = field(default_factory=Counter)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, what: str) -> None:
        self.found.setdefault(name, []).append(what)

    def note(self, name: str, what: str) -> None:
        self.notes.setdefault(name, []).append(what)

    def counts(self) -> dict[str, int]:
        return {name: len(self.found.get(name, [])) for name in INVARIANTS}


INVARIANTS = (
    "application without workflow",
    "acknowledged action without its event",
    "event stream with a gap",
    "duplicate event",
    "duplicate payment",
    "number held twice",
    "read model differs from the Query",
    "stuck workflow task",
)


async def check(
    pg_url: str,
    temporal_address: str,
    acks: list[Ack],
    application_ids: set[str],
    encryption_keys: list[bytes] | None = None,
) -> Violations:
    """Every invariant over ``application_ids``, from PostgreSQL and Temporal
    (``encryption_keys``: the payload keys, default those of the settings)."""
    result = Violations()
    ids = sorted(application_ids)
    conn = await asyncpg.connect(pg_url)
    try:
        apps = await conn.fetch(
            "SELECT id, workflow_started_at FROM application WHERE id = ANY($1::text[])", ids
        )
        events = await conn.fetch(
            """SELECT stream_id, version, event_type, payload->>'payment_id' AS payment_id
               FROM domain_event WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version""",
            ids,
        )
        registrations = {
            r["id"]: r
            for r in await conn.fetch(
                f"{_REGISTRATION} WHERE id = ANY($1::text[])",
                ids,
            )
        }
        held_twice = await conn.fetch(
            """SELECT number, array_agg(id) AS ids FROM registration
               WHERE number IS NOT NULL AND stage <> 'closed'
                 AND coalesce(service_state, 'active') NOT IN ('quarantined', 'released')
               GROUP BY number HAVING count(*) > 1"""
        )
        inventory = await conn.fetch(
            """SELECT r.id, r.number, n.registration_id FROM registration r
               JOIN number_inventory n ON n.number = r.number
               WHERE r.id = ANY($1::text[]) AND r.stage = 'active'
                 AND n.registration_id IS DISTINCT FROM r.id""",
            ids,
        )
    finally:
        await conn.close()

    by_stream: dict[str, list[asyncpg.Record]] = {}
    for event in events:
        by_stream.setdefault(event["stream_id"], []).append(event)
    result.checked["applications"] = len(apps)
    result.checked["events"] = len(events)
    result.checked["acknowledgements"] = len(acks)

    # Acknowledged actions have their event.
    for ack in acks:
        if ack.application_id not in application_ids:
            continue
        stream = by_stream.get(ack.application_id, [])
        wanted = EXPECTED_EVENT[ack.action]
        if ack.payment_id is not None:
            present = any(e["event_type"] == wanted and e["payment_id"] == ack.payment_id for e in stream)
        else:
            present = any(e["event_type"] == wanted for e in stream)
        if not present:
            last = stream[-1]["event_type"] if stream else "no event at all"
            result.add(
                "acknowledged action without its event",
                f"{ack.application_id}: '{ack.action}' answered {ack.answer or '2xx'}, no {wanted} in the "
                f"log (stream ends with {last}, {len(stream)} events)",
            )

    # Streams: gapless, no once-only event twice, no payment twice.
    for stream_id, stream in by_stream.items():
        versions = [e["version"] for e in stream]
        if versions != list(range(1, len(versions) + 1)):
            result.add("event stream with a gap", f"{stream_id}: versions {versions}")
        kinds = Counter(e["event_type"] for e in stream)
        for kind in ONCE:
            if kinds[kind] > 1:
                result.add("duplicate event", f"{stream_id}: {kind} x{kinds[kind]}")
        payments = Counter(e["payment_id"] for e in stream if e["event_type"] == "PaymentReceived")
        for pid, n in payments.items():
            if n > 1:
                result.add("duplicate payment", f"{stream_id}: payment {pid} recorded {n} times")

    for row in held_twice:
        result.add("number held twice", f"{row['number']}: registrations {list(row['ids'])}")
    for row in inventory:
        result.add(
            "number held twice",
            f"{row['id']}: active with {row['number']}, held in the inventory by {row['registration_id']}",
        )

    # Temporal: a workflow per application, no stuck task, Query = read model.
    # The stack runs with ENVIRONMENT=test and the development key (bench/stack.py).
    keys = encryption_keys or Settings(_env_file=None, environment="test").encryption_keys  # type: ignore[call-arg]
    client = await Client.connect(temporal_address, data_converter=data_converter(keys))
    limit = asyncio.Semaphore(16)

    async def one(app: asyncpg.Record) -> None:
        app_id = app["id"]
        handle = client.get_workflow_handle(registration_workflow_id(app_id))
        async with limit:
            try:
                description = await handle.describe()
            except RPCError:
                has_row = app_id in registrations
                result.add(
                    "application without workflow",
                    f"{app_id}: no workflow (registration row: {'yes' if has_row else 'no'}, "
                    f"workflow_started_at: {app['workflow_started_at']})",
                )
                return
            if app["workflow_started_at"] is None:
                result.note("workflow running but workflow_started_at NULL", app_id)
            pending = description.raw_description.pending_workflow_task
            if pending.attempt > 1:
                result.add("stuck workflow task", f"{app_id}: workflow task attempt {pending.attempt}")
            row = registrations.get(app_id)
            for attempt in range(5):
                try:
                    live: dict[str, Any] = await asyncio.wait_for(handle.query(QUERY_STATUS), 10)
                except Exception as exc:
                    result.add(
                        "read model differs from the Query", f"{app_id}: Query failed ({type(exc).__name__})"
                    )
                    return
                seen = (live.get("stage"), live.get("status"))
                stored = (row["stage"], row["status"]) if row is not None else None
                if stored == seen:
                    return
                if attempt < 4:  # the read model follows the workflow a moment later
                    await asyncio.sleep(1)
                    row = await _registration(pg_url, app_id)
            result.add("read model differs from the Query", f"{app_id}: read model {stored}, Query {seen}")

    await asyncio.gather(*(one(app) for app in apps))
    return result


async def _registration(pg_url: str, app_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(pg_url)
    try:
        row: asyncpg.Record | None = await conn.fetchrow(f"{_REGISTRATION} WHERE id = $1", app_id)
        return row
    finally:
        await conn.close()


def print_violations(violations: Violations, indent: str = "  ") -> None:
    counts = violations.counts()
    print(indent + ", ".join(f"{name}: {n}" for name, n in counts.items()))
    for name in INVARIANTS:
        for what in violations.found.get(name, [])[:20]:
            print(f"{indent}  VIOLATION {name}: {what}")
        more = len(violations.found.get(name, [])) - 20
        if more > 0:
            print(f"{indent}  ... and {more} more")
    for name, items in violations.notes.items():
        print(
            f"{indent}note: {name}: {len(items)} ({', '.join(items[:5])}{' ...' if len(items) > 5 else ''})"
        )
