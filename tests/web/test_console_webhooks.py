"""The console's webhook pages in a real browser, on the real stack: an
organisation's endpoint receives a message (refused once, then taken) through
the endpoint workflows, and an admin reads its delivery log and redelivers it.
Screenshots under test-artifacts/console/webhooks/, axe-core on each page."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
from playwright.async_api import Browser, Locator, Page, expect

from api.auth import Role
from app.settings import Settings
from tests.api.fixtures import Keys, make_key
from tests.api.test_webhooks import webhook_worker  # noqa: F401 - the endpoint workflows, as a fixture
from tests.web.fixtures import Console, Login, check_page, new_context, sign_in, submit_application
from tests.webhook_receiver import Receiver, failing_then_ok


async def _shown_delivered(page: Page, message_id: str) -> Locator:
    """The message in the page once its log says delivered: the receiver has the
    message a moment before the worker records its answer, and the page shows the
    log as it was when it loaded, so it is loaded again until then."""
    delivery = page.locator(f'[data-delivery="{message_id}"]')
    for _ in range(100):
        if await delivery.get_attribute("data-status") == "succeeded":
            return delivery
        await asyncio.sleep(0.1)
        await page.reload()
    raise AssertionError(f"{message_id} is still {await delivery.get_attribute('data-status')}")


async def test_an_admin_reads_the_delivery_log_and_redelivers(
    browser: Browser,
    console: Console,
    staff_logins: dict[str, Login],
    api: httpx.AsyncClient,
    console_keys: Keys,
    pool: asyncpg.Pool,
    settings: Settings,
    webhook_worker: Settings,  # noqa: F811
) -> None:
    scenario = "webhooks"
    organisation = f"org_hooks_{uuid.uuid4().hex[:8]}"
    applicant = await make_key(pool, settings, Role.APPLICANT, organisation)
    keys = Keys(tokens={**console_keys.tokens, "applicant": applicant}, organisation=organisation)
    async with Receiver(failing_then_ok(1)) as receiver:
        created = await api.post(
            "/v1/webhook-endpoints",
            json={"url": receiver.url, "event_types": ["application.submitted"], "description": "订单系统"},
            headers=keys.headers("applicant"),
        )
        assert created.status_code == 201, created.text
        endpoint_id = created.json()["id"]
        app_id, _ = await submit_application(api, pool, keys)
        await receiver.wait_for(lambda got: [r.status for r in got] == [500, 200])
        message_id = receiver.received[0].webhook_id

        context = await new_context(browser)
        try:
            page, watch = await sign_in(context, console, staff_logins["admin"])
            await page.locator("nav a[href$='/webhooks']").click()
            await page.fill("input[name=organisation]", organisation)
            await page.click("form.filters button[type=submit]")
            row = page.locator(f'tr[data-endpoint="{endpoint_id}"]')
            await expect(row).to_contain_text(receiver.url)
            await check_page(page, scenario, "01-endpoints")

            await row.get_by_role("link").click()
            await page.wait_for_url(f"**/webhooks/{endpoint_id}")
            delivery = await _shown_delivered(page, message_id)
            await expect(delivery).to_contain_text(app_id)
            attempts = delivery.locator("table.attempts tbody tr")
            await expect(attempts).to_have_count(2)
            assert await attempts.locator("td.status-code").all_inner_texts() == ["500", "200"]
            assert "毫秒" in await attempts.first.inner_text()  # the latency, in Chinese
            await check_page(page, scenario, "02-delivery-log")

            # Redelivered: the same message (same webhook-id) reaches the receiver again.
            await delivery.get_by_role("button").click()
            await expect(page.locator("#redelivered")).to_contain_text(message_id)
            await receiver.wait_for(lambda got: len(got) == 3)
            assert [r.webhook_id for r in receiver.received] == [message_id] * 3
            again = await _shown_delivered(page, message_id)
            assert await again.locator("td.status-code").all_inner_texts() == ["500", "200", "200"]
            await check_page(page, scenario, "03-redelivered")
            assert not watch.problems, watch.problems
        finally:
            await context.close()

    # Only an admin manages webhooks among staff (api/permissions.py): no link, and 403.
    for name in ("operator", "viewer"):
        context = await new_context(browser)
        try:
            page, _ = await sign_in(context, console, staff_logins[name])
            assert await page.locator("nav a[href$='/webhooks']").count() == 0
            refused = await page.goto(console.at(f"/webhooks/{endpoint_id}"))
            assert refused is not None and refused.status == 403
        finally:
            await context.close()
