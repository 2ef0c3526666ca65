"""Console page budget in a real browser: the review queue and the application
page interactive in <= 300 ms at the 95th percentile with 10,000 registrations.

Runs in a temporary folder on free ports: embedded PostgreSQL with the real
migrations, seeded through the same code the workflow uses to write the event
log and read model (domain.timeline events folded and saved by
activities.repositories.events), the API process (`python -m app api`, which
serves the console) and Debian's chromium driven by Playwright.

    python -m bench.console_bench [--registrations 10000] [--samples 60]

"Interactive" is the browser's DOMContentLoaded end, from the navigation's start
(Navigation Timing): the HTML is parsed and the deferred scripts (htmx, the
console's) have run, so every control answers. The sign-in page, which reads
nothing from the database, is measured the same way as the baseline. Figures are
printed; the exit code is 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from playwright.async_api import Page, async_playwright

from activities.repositories.applications import record_application
from activities.repositories.events import append_and_save
from api.ids import new_id
from api.repositories import documents
from api.services import personal_data
from api.services.documents import DocumentCipher
from app.db import create_pool, migrate
from app.embedded import EmbeddedPostgres, free_port, python_module_command, spawn, stop_process
from app.settings import Settings
from domain.applicant import ApplicationForm
from domain.masking import application_summary
from domain.timeline import ActorRole, Event, EventType, RegistrationState, apply_event
from tests.domain.factories import valid_application_dict
from tests.web.fixtures import CHROMIUM, CHROMIUM_ARGS, png
from web.services import staff

TARGET_MS = 300.0
PASSWORD = "bench password 1234"
PDF = b"%PDF-1.4\n% bench\n%%EOF\n"


def _event(
    app_id: str, version: int, kind: EventType, at: datetime, payload: dict[str, Any], **kw: Any
) -> Event:
    return Event(
        stream_id=app_id,
        version=version,
        event_id=str(uuid.uuid4()),
        event_type=kind,
        actor=kw.get("actor", "staff:bench"),
        actor_role=kw.get("role", ActorRole.OPERATOR),
        reason=kw.get("reason"),
        correlation_id="bench",
        occurred_at=at,
        payload=payload,
    )


def _events(app_id: str, form: ApplicationForm, rng: random.Random, now: datetime) -> list[Event]:
    """A plausible history: every application submitted in the last 20 days; some
    overdue in review, some approved, paid, rejected."""
    at = now - timedelta(days=rng.uniform(0, 20))
    review_due = at + timedelta(days=7)
    events = [
        _event(
            app_id,
            1,
            EventType.APPLICATION_SUBMITTED,
            at,
            {
                "organisation_id": form.organisation_id,
                "carrier": form.carrier,
                "company_name": form.company_name,
                "credit_code": form.credit_code,
                "number": form.requested_number,
                "tier": "standard",
                "min_monthly_spend_fen": 30_000,
                "review_due": review_due.isoformat(),
                "activation_at": None,
                "summary": application_summary(form),
            },
            actor="apikey:bench",
            role=ActorRole.APPLICANT,
        )
    ]
    fate = rng.random()
    if fate < 0.5:  # still in review (the queue)
        if review_due < now:
            events.append(_event(app_id, 2, EventType.REVIEW_OVERDUE, review_due, {}, role=ActorRole.SYSTEM))
        return events
    decided = at + timedelta(hours=rng.uniform(1, 100))
    if fate < 0.65:
        events.append(
            _event(app_id, 2, EventType.APPLICATION_REJECTED, decided, {"reason_code": "documents_invalid"})
        )
        return events
    events.append(
        _event(
            app_id,
            2,
            EventType.APPLICATION_APPROVED,
            decided,
            {
                "number": form.requested_number,
                "tier": "standard",
                "min_monthly_spend_fen": 30_000,
                "first_prepayment_fen": 90_000,
                "pay_by": (decided + timedelta(days=7)).isoformat(),
            },
        )
    )
    if fate < 0.85:
        return events
    paid = decided + timedelta(hours=2)
    events.append(
        _event(
            app_id,
            3,
            EventType.PAYMENT_RECEIVED,
            paid,
            {
                "payment_id": f"pay_{app_id}",
                "amount_fen": 90_000,
                "paid_in_full": True,
                "verify_by": (paid + timedelta(days=15)).isoformat(),
            },
            actor="apikey:bench",
            role=ActorRole.APPLICANT,
        )
    )
    return events


async def _seed_one(
    conn: asyncpg.Connection, cipher: DocumentCipher, i: int, rng: random.Random, now: datetime
) -> tuple[str, bool]:
    app_id = new_id("app")
    data = valid_application_dict(
        organisation_id=f"org_bench{i % 50:02d}",
        company_name=f"基准测试企业{i:05d}有限公司",
        requested_number=f"40002{i:05d}",
    )
    form = ApplicationForm.model_validate(data)
    workflow_id = f"registration-{app_id}"
    await record_application(
        conn,
        application_id=app_id,
        organisation_id=form.organisation_id,
        workflow_id=workflow_id,
        carrier_code=form.carrier,
        company_name=form.company_name,
        submitted_by="apikey:bench",
        document_ids=[],
    )
    await personal_data.store_form(conn, cipher, app_id, form.model_dump(mode="json"), accepted=True)
    state: RegistrationState | None = None
    events = _events(app_id, form, rng, now)
    for event in events:
        state = apply_event(state, event)
        await append_and_save(conn, event, state, workflow_id)
    await conn.execute(
        "UPDATE application SET created_at = $2, workflow_started_at = $2 WHERE id = $1",
        app_id,
        events[0].occurred_at,
    )
    return app_id, state is not None and state.waiting_for.value == "operator_decision"


async def _attach_documents(conn: asyncpg.Connection, cipher: DocumentCipher, app_id: str, org: str) -> None:
    ids = []
    for kind, content, content_type in (
        ("business_licence", png(), "image/png"),
        ("legal_rep_id", PDF, "application/pdf"),
        ("application_form", PDF, "application/pdf"),
    ):
        doc_id = new_id("doc")
        key_ref, blob = cipher.encrypt(doc_id, content)
        await documents.insert(
            conn,
            document_id=doc_id,
            organisation_id=org,
            kind=kind,
            content_type=content_type,
            filename=None,
            size_bytes=len(content),
            sha256="0" * 64,
            encryption_key_id=key_ref,
            content=blob,
            uploaded_by="apikey:bench",
        )
        ids.append(doc_id)
    await documents.attach(conn, app_id, ids)


async def seed(url: str, settings: Settings, count: int) -> list[str]:
    """``count`` registrations; the ids of those in review."""
    pool = await create_pool(url, min_size=4, max_size=8)
    cipher = personal_data.form_cipher(settings)
    now = datetime.now(UTC)
    in_review: list[str] = []
    started = time.perf_counter()
    try:
        async with pool.acquire() as conn:
            await staff.create_account(
                conn,
                username="bench-operator",
                display_name="Bench operator",
                role="operator",
                password=PASSWORD,
                created_by="bench",
            )

        async def batch(indexes: range) -> None:
            rng = random.Random(indexes.start)
            async with pool.acquire() as conn:
                for i in indexes:
                    app_id, reviewing = await _seed_one(conn, cipher, i, rng, now)
                    if reviewing:
                        in_review.append(app_id)

        step = 500
        await asyncio.gather(*(batch(range(s, min(s + step, count))) for s in range(0, count, step)))
        async with pool.acquire() as conn:
            for app_id in in_review[:40]:
                await _attach_documents(conn, cipher, app_id, "org_bench00")
            await conn.execute("ANALYZE")
    finally:
        await pool.close()
    print(
        f"seeded {count} registrations ({len(in_review)} in review) in {time.perf_counter() - started:.1f} s"
    )
    return in_review[:40]


async def _interactive_ms(page: Page, url: str) -> tuple[float, float]:
    """(response end, DOMContentLoaded end) in ms from the navigation's start."""
    await page.goto(url, wait_until="domcontentloaded")
    timing = await page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return [n.responseEnd - n.startTime, n.domContentLoadedEventEnd - n.startTime]; }"
    )
    return float(timing[0]), float(timing[1])


def _p(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


async def measure(base: str, in_review: list[str], samples: int) -> dict[str, dict[str, float]]:
    rng = random.Random(7)
    results: dict[str, dict[str, float]] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            pages: dict[str, Any] = {
                "sign-in (baseline)": lambda: f"{base}/console/login",
                "review queue": lambda: f"{base}/console/queue",
                "application": lambda: f"{base}/console/applications/{rng.choice(in_review)}",
            }
            baseline = pages.pop("sign-in (baseline)")
            for name, url in (("sign-in (baseline)", baseline), *pages.items()):
                if name != "sign-in (baseline)" and "/login" in page.url:
                    await page.fill("#username", "bench-operator")
                    await page.fill("#password", PASSWORD)
                    await page.click("form button[type=submit]")
                    await page.wait_for_url(lambda u: "/login" not in u)
                for _ in range(5):  # warm-up: connections, caches, the browser's own start
                    await _interactive_ms(page, url())
                server, interactive = [], []
                for _ in range(samples):
                    s, i = await _interactive_ms(page, url())
                    server.append(s)
                    interactive.append(i)
                results[name] = {
                    "response_p50": _p(server, 50),
                    "response_p95": _p(server, 95),
                    "interactive_p50": _p(interactive, 50),
                    "interactive_p95": _p(interactive, 95),
                    "interactive_max": max(interactive),
                }
        finally:
            await browser.close()
    return results


async def _wait_http(url: str, proc: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the API exited with {proc.returncode}")
            try:
                if (await client.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(url)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--registrations", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=60)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit("the console bench needs Debian's chromium: apt-get install -y chromium (make chromium)")

    tmp = Path(tempfile.mkdtemp(prefix="h400-console-bench-"))
    pg = EmbeddedPostgres(tmp / "pg", free_port(), database="hotline400_bench")
    api = None
    try:
        pg.start()
        migrate(pg.url)
        settings = Settings(_env_file=None, environment="development", database_url=pg.url)  # type: ignore[call-arg]
        in_review = asyncio.run(seed(pg.url, settings, args.registrations))
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": pg.url,
            "TEMPORAL_ADDRESS": "127.0.0.1:1",  # the pages measured never call Temporal (a lazy client)
            "API_PORT": str(port),
            "ENVIRONMENT": "development",
            "LOG_LEVEL": "WARNING",
        }
        api = spawn(python_module_command("app", "api"), env=env, log_path=tmp / "api.log")
        base = f"http://127.0.0.1:{port}"
        asyncio.run(_wait_http(f"{base}/healthz", api))
        results = asyncio.run(measure(base, in_review, args.samples))
    finally:
        if api is not None:
            stop_process(api)
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{args.registrations} registrations, {args.samples} page loads each after 5 warm-up loads (ms)")
    columns = ("response p50", "response p95", "interactive p50", "interactive p95")
    print(f"{'page':<20} " + " ".join(f"{c:>16}" for c in columns))
    for name, r in results.items():
        print(
            f"{name:<20} {r['response_p50']:>16.1f} {r['response_p95']:>16.1f} "
            f"{r['interactive_p50']:>16.1f} {r['interactive_p95']:>16.1f}"
        )
    baseline = results["sign-in (baseline)"]["interactive_p95"]
    failed = False
    for name in ("review queue", "application"):
        p95 = results[name]["interactive_p95"]
        verdict = "ok" if p95 <= TARGET_MS else "MISSED"
        failed |= p95 > TARGET_MS
        print(
            f"{name}: interactive p95 {p95:.1f} ms (target <= {TARGET_MS:.0f}; "
            f"{p95 / baseline:.1f}x the sign-in page) {verdict}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
