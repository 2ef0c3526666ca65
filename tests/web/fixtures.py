"""Fixtures of the console suite, loaded by tests/conftest.py as a plugin.

One real uvicorn serving the whole application (API and console) on a free
port, with the session's worker, and one Chromium (Debian's ``chromium``
package) driven by Playwright, shared by every scenario; each scenario opens
its own browser contexts (cookie jars)."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from temporalio.worker import Worker

from api.config import ApiSettings
from api.main import create_app
from api.permissions import Role
from app.embedded import free_port
from app.settings import PROJECT_ROOT, Settings
from tests.api.fixtures import CARRIER, PDF, PREFIX, Keys, make_key, upload
from tests.domain.factories import valid_application_dict
from tests.factories_inventory import add_fresh_numbers
from web.config import ConsoleSettings
from web.services import staff as staff_service

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "console"
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PASSWORD = "correct horse battery staple"


def png(width: int = 120, height: int = 80) -> bytes:
    """A real (decodable) PNG: a blue rectangle, so that the browser can draw it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\x1f\x5f\xa8" * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@dataclass
class Console:
    url: str
    settings: Settings
    pool: asyncpg.Pool

    def at(self, path: str) -> str:
        return f"{self.url}/console{path}"


@pytest.fixture(scope="session")
def console_settings() -> ConsoleSettings:
    return ConsoleSettings(
        _env_file=None,  # type: ignore[call-arg]
        max_failed_sign_ins=3,
        lockout_seconds=60,
        sign_ins_per_minute=1000,
    )


@pytest.fixture(scope="session")
async def console(
    stack_settings: Settings,
    api_settings: ApiSettings,
    console_settings: ConsoleSettings,
    api_worker: Worker,
    pool: asyncpg.Pool,
) -> AsyncIterator[Console]:
    """The application served by a real uvicorn on a free port (ENVIRONMENT=test:
    cookies are Secure, as in production)."""
    app = create_app(stack_settings, api_settings, console_settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the console's uvicorn did not start")
    try:
        yield Console(f"http://127.0.0.1:{port}", stack_settings, pool)
    finally:
        server.should_exit = True
        await task


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail("the browser tests need Debian's chromium: apt-get install -y chromium")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    _require_chromium()
    clean_artifacts()  # the folder shows the last run's pages only
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    password: str = PASSWORD


@pytest.fixture(scope="session")
async def staff_logins(pool: asyncpg.Pool) -> dict[str, Login]:
    """A console account per role, and a second operator."""
    logins: dict[str, Login] = {}
    suffix = uuid.uuid4().hex[:8]
    async with pool.acquire() as conn:
        for name, role in (
            ("operator", "operator"),
            ("operator2", "operator"),
            ("admin", "admin"),
            ("viewer", "viewer"),
        ):
            login = Login(f"{name}-{suffix}", role)
            await staff_service.create_account(
                conn,
                username=login.username,
                display_name=f"Test {name}",
                role=role,
                password=login.password,
                created_by="tests",
            )
            logins[name] = login
    return logins


@pytest.fixture(scope="session")
async def console_keys(pool: asyncpg.Pool, settings: Settings, api_keys: Keys) -> Keys:
    """The API suite's keys, with an applicant of an organisation of its own: the
    console's scenarios filter the queue by it, whatever else is in review."""
    organisation = f"org_console_{uuid.uuid4().hex[:8]}"
    token = await make_key(pool, settings, Role.APPLICANT, organisation)
    return Keys(tokens={**api_keys.tokens, "applicant": token}, organisation=organisation)


@pytest.fixture
async def api(console: Console) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the same server's API (what applicants use)."""
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as client:
        yield client


async def new_context(browser: Browser) -> BrowserContext:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(20_000)
    return context


class PageWatch:
    """Console messages a page logged: a Content-Security-Policy violation or a
    script error is a failure of the page, whatever the test checks."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("console", lambda m: self._console(m.type, f"{m.text} at {m.location.get('url')}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def _console(self, kind: str, text: str) -> None:
        if "Content Security Policy" in text or (kind == "error" and "favicon" not in text):
            self.problems.append(f"{kind}: {text}")


async def sign_in(context: BrowserContext, console: Console, login: Login) -> tuple[Page, PageWatch]:
    page = await context.new_page()
    watch = PageWatch(page)
    await page.goto(console.at("/login"))
    await page.fill("#username", login.username)
    await page.fill("#password", login.password)
    await page.click("form button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
    return page, watch


async def screenshot(page: Page, scenario: str, name: str) -> Path:
    folder = ARTIFACTS / scenario
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


_AXE_SOURCE: str | None = None


async def accessibility_problems(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations in the page as it is now (WCAG 2 A and AA)."""
    global _AXE_SOURCE  # noqa: PLW0603 - read once per session
    if _AXE_SOURCE is None:
        _AXE_SOURCE = AXE.read_text(encoding="utf-8")
    # Evaluated through the DevTools protocol, which the page's CSP does not govern.
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.evaluate(_AXE_SOURCE)
    result = await page.evaluate(
        """async () => {
            const tags = ['wcag2a', 'wcag2aa', 'wcag21aa'];
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({id: v.id, impact: v.impact, help: v.help,
                            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    problems: list[dict[str, Any]] = result
    return problems


async def check_page(page: Page, scenario: str, name: str) -> None:
    """Screenshot for people to look at, then the accessibility check."""
    await screenshot(page, scenario, name)
    problems = await accessibility_problems(page)
    assert not problems, f"{name}: {json.dumps(problems, ensure_ascii=False, indent=1)}"


async def submit_application(
    api: httpx.AsyncClient, pool: asyncpg.Pool, keys: Keys, *, company_name: str | None = None
) -> tuple[str, dict[str, Any]]:
    """An application submitted through the API with real documents (the business
    licence as a PNG picture); its id and the body sent."""
    token = keys["applicant"]
    number = (await add_fresh_numbers(pool, 1, prefix=PREFIX))[0]
    docs = [{"document_id": (await upload(api, token, "business_licence", png(), "image/png"))["id"]}]
    for kind in ("legal_rep_id", "application_form"):
        docs.append({"document_id": (await upload(api, token, kind, PDF))["id"]})
    body = valid_application_dict(
        carrier=CARRIER,
        requested_number=number,
        documents=docs,
        company_name=company_name or f"控制台测试{uuid.uuid4().hex[:6]}有限公司",
        activation_at=None,  # as soon as verified (the factory's fixed date has passed)
    )
    body.pop("organisation_id")
    response = await api.post(
        "/v1/applications",
        json=body,
        headers=keys.headers("applicant", **{"Idempotency-Key": str(uuid.uuid4())}),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created["id"], body


async def wait_for_api_state(
    api: httpx.AsyncClient, keys: Keys, application_id: str, **expected: str
) -> dict[str, Any]:
    current: dict[str, Any] = {}
    for _ in range(300):
        current = (
            await api.get(f"/v1/applications/{application_id}", headers=keys.headers("operator"))
        ).json()
        if all(current.get(k) == v for k, v in expected.items()):
            return current
        await asyncio.sleep(0.1)
    pytest.fail(f"{application_id} did not reach {expected}: {current}")


def clean_artifacts() -> None:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
