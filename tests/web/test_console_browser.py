"""The operator console in a real browser, on the real stack: uvicorn, PostgreSQL,
the Temporal dev server and a worker. Each scenario saves screenshots of its
key pages under test-artifacts/console/<scenario>/ and runs axe-core in each
(no serious or critical violation)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
from playwright.async_api import Browser, Page, expect

from tests.api.fixtures import Keys
from tests.web.fixtures import (
    Console,
    Login,
    PageWatch,
    check_page,
    new_context,
    sign_in,
    submit_application,
    wait_for_api_state,
)


async def _count(page: Page, lifecycle: str) -> int:
    return int(await page.locator(f'td[data-lifecycle="{lifecycle}"]').inner_text())


async def _count_reaches(page: Page, lifecycle: str, at_least: int) -> None:
    """Waits, without reloading, for the live dashboard to count ``at_least`` in
    ``lifecycle`` (at least: other tests' registrations share the database)."""
    await page.wait_for_function(
        '([lc, n]) => Number(document.querySelector(`td[data-lifecycle="${lc}"]`).textContent) >= n',
        arg=[lifecycle, at_least],
    )


async def test_an_application_from_queue_to_service(
    browser: Browser,
    console: Console,
    staff_logins: dict[str, Login],
    api: httpx.AsyncClient,
    console_keys: Keys,
    pool: asyncpg.Pool,
) -> None:
    scenario = "review_to_service"
    context = await new_context(browser)
    try:
        page, watch = await sign_in(context, console, staff_logins["operator"])
        assert page.url.endswith("/console/queue")
        await page.goto(console.at(f"/queue?organisation={console_keys.organisation}"))
        cookie = next(c for c in await context.cookies() if c["name"] == "h400_console")
        assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Lax")
        await check_page(page, scenario, "01-queue")

        dashboard = await context.new_page()
        dashboard_watch = PageWatch(dashboard)
        await dashboard.goto(console.at("/dashboard"))
        in_service_before = await _count(dashboard, "in_service")
        in_review_before = await _count(dashboard, "in_review")
        await check_page(dashboard, scenario, "02-dashboard-before")

        # Submitted through the API: the open queue shows it without a reload.
        app_id, body = await submit_application(api, pool, console_keys)
        row = page.locator(f'tr[data-application="{app_id}"]')
        await expect(row).to_be_visible()
        await _count_reaches(dashboard, "in_review", in_review_before + 1)
        await check_page(page, scenario, "03-queue-with-new-application")

        await row.get_by_role("link").click()
        await page.wait_for_url(f"**/applications/{app_id}")
        # The business licence is a picture, drawn in the page from the console's documents route.
        image = page.locator("img.doc-image").first
        await expect(image).to_be_visible()
        await page.wait_for_function("() => document.querySelector('img.doc-image').naturalWidth > 0")
        assert await page.locator(".checklist .missing").count() == 0
        await check_page(page, scenario, "04-application")

        # Personal data is masked; a reveal names a reason and shows in the timeline.
        id_field = page.locator("#field-legal_representative-id_number")
        assert "*" in await id_field.inner_text()
        await id_field.locator("input[name=reason]").fill("核对身份证复印件")
        await id_field.get_by_role("button").click()
        revealed = page.locator('.revealed[data-field="legal_representative.id_number"]')
        await expect(revealed).to_have_text(body["legal_representative"]["id_number"])
        # On the record at once: the page's timeline shows who revealed which field and why.
        on_record = page.locator('.timeline li[data-event="PersonalDataRevealed"]')
        await expect(on_record).to_contain_text("法定代表人：身份证号：核对身份证复印件")
        await expect(on_record.locator(".who")).to_contain_text("Test operator")
        timeline = (
            await api.get(f"/v1/applications/{app_id}/timeline", headers=console_keys.headers("operator"))
        ).json()
        reveals = [e for e in timeline["entries"] if e["event_type"] == "PersonalDataRevealed"]
        assert len(reveals) == 1 and "核对身份证复印件" in reveals[0]["reason"], timeline

        # Request changes naming two fields.
        await page.reload()
        await page.check("input[name=decision][value=request_changes]")
        await page.check("input[name=fields][value=contact_address]")
        await page.check("input[name=fields][value=destination_numbers]")
        await page.fill("textarea[name=reason]", "地址与营业执照不符，落地号码需更新")
        await page.click("#decide")
        await expect(page.locator('[data-outcome="done"]')).to_be_visible()
        await check_page(page, scenario, "05-changes-requested")
        state = await wait_for_api_state(api, console_keys, app_id, status="changes_requested")
        assert sorted(state["change_request"]["fields"]) == ["contact_address", "destination_numbers"]

        # The applicant resubmits through the API; the case is back in the queue.
        body["contact_address"] = "广东省深圳市南山区科技园南区 2 号"
        body["destination_numbers"] = ["13900139000"]
        resubmitted = await api.post(
            f"/v1/applications/{app_id}/resubmit", json=body, headers=console_keys.headers("applicant")
        )
        assert resubmitted.status_code == 200, resubmitted.text
        await page.goto(console.at(f"/queue?organisation={console_keys.organisation}"))
        await expect(page.locator(f'tr[data-application="{app_id}"]')).to_be_visible()

        # Approve.
        await page.goto(console.at(f"/applications/{app_id}"))
        await page.check("input[name=decision][value=approve]")
        await page.click("#decide")
        await expect(page.locator('[data-outcome="done"]')).to_be_visible()
        approved = await wait_for_api_state(api, console_keys, app_id, status="awaiting_prepayment")
        paid = await api.post(
            f"/v1/applications/{app_id}/payments",
            json={"amount_fen": approved["fees"]["first_prepayment_fen"]},
            headers=console_keys.headers("applicant", **{"Idempotency-Key": str(uuid.uuid4())}),
        )
        assert paid.status_code == 200, paid.text

        # Verify: the number reaches service.
        await page.goto(console.at(f"/applications/{app_id}"))
        await page.check("input[name=outcome][value=pass]")
        await page.fill("#verification-panel input[name=reason]", "实名信息与证件一致")
        await page.click("#verify")
        await expect(page.locator('[data-outcome="done"]')).to_be_visible()
        await wait_for_api_state(api, console_keys, app_id, stage="active")
        await page.goto(console.at(f"/numbers/{app_id}"))
        await expect(page.locator("#number-state")).to_have_text("在用")
        await check_page(page, scenario, "06-number-in-service")

        # Suspended and resumed, each with a reason (the page reloads with the new state).
        for form, reason, shown in (
            ("suspension", "投诉：营销骚扰电话", "停机"),
            ("resumption", "持有人已整改", "在用"),
        ):
            for _attempt in range(20):  # just activated: the service may still be taking over
                await page.fill(f"form[hx-post$='/{form}'] input[name=reason]", reason)
                await page.click(f"form[hx-post$='/{form}'] button")
                try:
                    await expect(page.locator("#number-state")).to_have_text(shown, timeout=3000)
                    break
                except AssertionError:
                    await page.goto(console.at(f"/numbers/{app_id}"))
            await expect(page.locator("#number-state")).to_have_text(shown)
        await check_page(page, scenario, "07-number-suspended-then-resumed")

        # The dashboard, open all along, counts it in service.
        await _count_reaches(dashboard, "in_service", in_service_before + 1)
        await check_page(dashboard, scenario, "08-dashboard-after")
        for path, name in (("/numbers", "09-numbers"), ("/inventory", "10-inventory")):
            await page.goto(console.at(path))
            await check_page(page, scenario, name)
        await page.goto(console.at("/language?lang=en&next=/console/queue"))
        await expect(page.locator("h1")).to_have_text("Review queue")
        await check_page(page, scenario, "11-queue-in-english")
        assert not watch.problems, watch.problems
        assert not dashboard_watch.problems, dashboard_watch.problems
    finally:
        await context.close()


async def test_two_reviewers_deciding_at_once_one_wins(
    browser: Browser,
    console: Console,
    staff_logins: dict[str, Login],
    api: httpx.AsyncClient,
    console_keys: Keys,
    pool: asyncpg.Pool,
) -> None:
    scenario = "decision_race"
    app_id, _ = await submit_application(api, pool, console_keys)
    first, second = await new_context(browser), await new_context(browser)
    try:
        pages = []
        for context, login in ((first, staff_logins["operator"]), (second, staff_logins["operator2"])):
            page, _watch = await sign_in(context, console, login)
            await page.goto(console.at(f"/applications/{app_id}"))
            pages.append(page)
        # The first claims the case: the second sees who is on it.
        await pages[0].locator("#claim-panel").get_by_role("button").click()
        await expect(pages[0].locator("#claim-panel .ok")).to_be_visible()
        await pages[1].reload()
        await expect(pages[1].locator("#claim-panel .warn")).to_contain_text("Test operator")
        await check_page(pages[1], scenario, "01-claimed-by-another")

        await pages[0].check("input[name=decision][value=approve]")
        await pages[1].check("input[name=decision][value=reject]")
        await pages[1].select_option("select[name=reason_code]", "documents_invalid")
        await asyncio.gather(pages[0].click("#decide"), pages[1].click("#decide"))
        outcomes = []
        for page in pages:
            result = page.locator("[data-outcome]").first
            await expect(result).to_be_visible()
            outcomes.append(await result.get_attribute("data-outcome"))
        assert sorted(str(o) for o in outcomes) == ["done", "lost"], outcomes
        loser = pages[outcomes.index("lost")]
        await expect(loser.locator('[data-outcome="current"]')).to_be_visible()
        await check_page(loser, scenario, "02-lost-the-race")
        await check_page(pages[outcomes.index("done")], scenario, "03-won-the-race")

        events = await pool.fetch(
            "SELECT event_type FROM domain_event WHERE stream_id = $1 AND event_type IN "
            "('ApplicationApproved', 'ApplicationRejected')",
            app_id,
        )
        assert len(events) == 1, events  # nothing applied twice
    finally:
        await first.close()
        await second.close()


async def test_a_viewer_sees_everything_and_can_change_nothing(
    browser: Browser,
    console: Console,
    staff_logins: dict[str, Login],
    api: httpx.AsyncClient,
    console_keys: Keys,
    pool: asyncpg.Pool,
) -> None:
    scenario = "viewer"
    app_id, _ = await submit_application(api, pool, console_keys)
    context = await new_context(browser)
    try:
        page, watch = await sign_in(context, console, staff_logins["viewer"])
        assert page.url.endswith("/console/dashboard")
        await expect(page.locator("#figures")).to_be_visible()
        await check_page(page, scenario, "01-dashboard")
        await page.goto(console.at(f"/applications/{app_id}"))
        await expect(page.locator("h1")).to_be_visible()
        for action in ("#decision-panel", "form.reveal", "#claim-panel button", "#verification-panel"):
            assert await page.locator(action).count() == 0, action
        await check_page(page, scenario, "02-application-read-only")
        assert not watch.problems, watch.problems
        assert await page.locator("nav a[href$='/queue']").count() == 0
        queue = await page.goto(console.at("/queue"))
        assert queue is not None and queue.status == 403

        # Even a well-formed request with the viewer's own CSRF token is refused.
        await page.goto(console.at(f"/applications/{app_id}"))
        token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
        refused = await page.request.post(
            console.at(f"/applications/{app_id}/decision"),
            form={"decision": "approve", "csrf_token": token or ""},
        )
        assert refused.status == 403
        state = await wait_for_api_state(api, console_keys, app_id, status="in_review")
        assert state["status"] == "in_review"
    finally:
        await context.close()


async def test_sign_out_ends_the_session_and_csrf_is_required(
    browser: Browser,
    console: Console,
    staff_logins: dict[str, Login],
    api: httpx.AsyncClient,
    console_keys: Keys,
    pool: asyncpg.Pool,
) -> None:
    scenario = "session"
    app_id, _ = await submit_application(api, pool, console_keys)
    context = await new_context(browser)
    try:
        # A session id planted before sign-in is not the one signed in.
        planted = "planted-by-someone-else"
        await context.add_cookies(
            [
                {
                    "name": "h400_console",
                    "value": planted,
                    "domain": "127.0.0.1",
                    "path": "/console",
                    "secure": True,
                }
            ]
        )
        page, _watch = await sign_in(context, console, staff_logins["admin"])
        first_cookie = next(c["value"] for c in await context.cookies() if c["name"] == "h400_console")
        assert first_cookie != planted

        # A change without the CSRF token is refused; with it, it goes through.
        without = await page.request.post(
            console.at(f"/applications/{app_id}/claim"), headers={"HX-Request": "true"}
        )
        assert without.status == 403
        token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
        with_token = await page.request.post(
            console.at(f"/applications/{app_id}/claim"),
            headers={"HX-Request": "true", "X-CSRF-Token": token or ""},
        )
        assert with_token.status == 204

        # An admin creates a staff account in the console.
        await page.goto(console.at("/staff"))
        await check_page(page, scenario, "01-staff")
        username = f"new-{uuid.uuid4().hex[:8]}"
        await page.fill("#new-username", username)
        await page.fill("#new-name", "New reviewer")
        await page.select_option("#new-role", "operator")
        await page.fill("#new-password", "a long enough password")
        await page.click("form[action$='/staff'] button[type=submit]")
        await expect(page.locator("td", has_text=username)).to_be_visible()

        # Signing out ends the session: its cookie no longer signs anyone in.
        await page.goto(console.at("/login"))
        await page.click("#sign-out")
        await page.wait_for_url("**/console/login")
        await check_page(page, scenario, "02-signed-out")
        after = await page.goto(console.at("/queue"))
        assert after is not None and after.url.endswith("/console/login")

        replay = await browser.new_context()
        try:
            await replay.add_cookies(
                [
                    {
                        "name": "h400_console",
                        "value": first_cookie,
                        "url": console.url + "/console/",
                        "secure": True,
                    }
                ]
            )
            old = await (await replay.new_page()).goto(console.at("/queue"))
            assert old is not None and old.url.endswith("/console/login")
        finally:
            await replay.close()
    finally:
        await context.close()


async def test_repeated_failed_sign_ins_lock_the_account_and_are_recorded(
    browser: Browser, console: Console, staff_logins: dict[str, Login], pool: asyncpg.Pool
) -> None:
    scenario = "lockout"
    context = await new_context(browser)
    login = staff_logins["operator2"]
    try:
        locked = Login(f"locked-{uuid.uuid4().hex[:8]}", "operator")
        async with pool.acquire() as conn:
            from web.services import staff as staff_service

            account = await staff_service.create_account(
                conn,
                username=locked.username,
                display_name="Locked",
                role="operator",
                password=locked.password,
                created_by="tests",
            )
        page = await context.new_page()
        for _ in range(3):
            await page.goto(console.at("/login"))
            await page.fill("#username", locked.username)
            await page.fill("#password", "not the password")
            await page.click("form button[type=submit]")
        await expect(page.locator(".error")).to_contain_text("锁定")
        await check_page(page, scenario, "01-locked")
        # Now even the right password is refused until the lock ends.
        await page.fill("#username", locked.username)
        await page.fill("#password", locked.password)
        await page.click("form button[type=submit]")
        await expect(page.locator(".error")).to_contain_text("锁定")
        events = [
            r["event_type"]
            for r in await pool.fetch(
                "SELECT event_type FROM domain_event WHERE stream_id = $1 ORDER BY version",
                f"staff:{account.id}",
            )
        ]
        assert events == [
            "StaffAccountCreated",
            "StaffSignInFailed",
            "StaffSignInFailed",
            "StaffSignInFailed",
            "StaffLockedOut",
            "StaffSignInFailed",
        ], events
        assert login.username  # another account is not affected
        page2, _ = await sign_in(context, console, login)
        assert "/login" not in page2.url
    finally:
        await context.close()
