"""What an outside walk of the console found, in a real browser on the real stack:
a Chinese operator reads Chinese (no stored codes), actors by name and times
with their zone; a refused decision keeps the form as typed and says why beside
it; a decision shows the new state at once; claims and service actions are
offered only when they can be taken. Screenshots under
test-artifacts/console/<scenario>/, axe-core on each page."""

from __future__ import annotations

import re
import uuid

import asyncpg
import httpx
from playwright.async_api import Browser, Page, expect

from tests.api.fixtures import Keys, activate
from tests.web.fixtures import Console, Login, check_page, new_context, sign_in, submit_application
from web import i18n, labels

ZH = i18n.language("zh_CN")
# A stored code shown as such: snake_case (enterprise's kin: in_review, no_four) or an
# event's CamelCase name (ApplicationSubmitted).
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
CAMEL = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)+\b")
# Where no word of lower-case Latin letters belongs at all in Chinese (a tier, a
# status or a pattern shown as stored: gold, available, no_four).
LOWER = re.compile(r"\b[a-z][a-z_]+\b")


async def _codes_shown(page: Page, selector: str, *data: str) -> list[str]:
    """Stored codes in the visible text of ``selector``, leaving out ``data``
    (ids and names people typed, which are shown as they are)."""
    text = "\n".join(await page.locator(selector).all_inner_texts())
    for value in data:
        text = text.replace(value, "")
    return SNAKE.findall(text) + CAMEL.findall(text)


async def _words_shown(page: Page, selector: str) -> list[str]:
    return LOWER.findall("\n".join(await page.locator(selector).all_inner_texts()))


async def test_a_chinese_operator_reads_chinese_actors_by_name_and_times_with_their_zone(
    browser: Browser,
    console: Console,
    staff_logins: dict[str, Login],
    api: httpx.AsyncClient,
    console_keys: Keys,
    pool: asyncpg.Pool,
) -> None:
    scenario = "walk_chinese"
    app_id, _ = await submit_application(api, pool, console_keys)
    registration = (
        await api.get(f"/v1/applications/{app_id}", headers=console_keys.headers("operator"))
    ).json()
    context = await new_context(browser)
    try:
        page, watch = await sign_in(context, console, staff_logins["operator"])
        await page.goto(console.at(f"/applications/{app_id}"))
        await expect(page.locator("#field-company_type")).to_contain_text("企业")
        await expect(page.locator("#field-industry")).to_contain_text("一般行业")
        await expect(page.locator("#field-package")).to_contain_text("标准套餐")
        tier = ZH.gettext(labels.TIERS[registration["fees"]["tier"]])
        await expect(page.locator("dd", has_text=tier)).to_have_count(1)
        submitted = page.locator('.timeline li[data-event="ApplicationSubmitted"]')
        await expect(submitted.locator("strong")).to_have_text("申请已提交")
        # The applicant's key by its name and organisation, not "apikey:<id>".
        await expect(submitted.locator(".who")).to_contain_text(
            f"test applicant · {console_keys.organisation}"
        )
        assert "apikey:" not in await page.locator(".timeline").inner_text()
        await expect(submitted.locator("time")).to_contain_text("北京时间")
        await expect(page.locator("#status-line")).to_contain_text("北京时间")  # the deadline
        data = (app_id, console_keys.organisation)
        for region in ("#status-line", ".fields", ".timeline"):
            assert not await _codes_shown(page, region, *data), region
        await check_page(page, scenario, "01-application")

        # The inventory: statuses, tiers and patterns in words.
        number = registration["number"]
        await page.goto(console.at(f"/inventory?starts_with={number[:7]}&include_unavailable=true"))
        await expect(page.locator("table.grid tbody tr").first).to_be_visible()
        assert not await _words_shown(page, "table.grid tbody")
        assert not await _words_shown(page, "form.filters select[name=tag]")
        assert not await _words_shown(page, "form.filters select[name=tier]")
        await check_page(page, scenario, "02-inventory")
        await page.goto(console.at(f"/inventory/{number}"))
        await expect(page.locator(".timeline li").first).to_contain_text("申请已提交")
        assert not await _codes_shown(page, "main", *data)
        assert not await _words_shown(page, "dl.fields")
        await check_page(page, scenario, "03-inventory-number")

        # In English the same page says the offset.
        await page.goto(console.at(f"/language?lang=en&next=/console/applications/{app_id}"))
        await expect(submitted.locator("strong")).to_have_text("Application submitted")
        await expect(submitted.locator("time")).to_contain_text("(UTC+08:00)")
        await expect(page.locator("#field-company_type")).to_contain_text("Enterprise")
        await check_page(page, scenario, "04-application-in-english")
        assert not watch.problems, watch.problems
    finally:
        await context.close()


async def test_a_refused_decision_keeps_the_form_and_a_decision_shows_the_new_state(
    browser: Browser,
    console: Console,
    staff_logins: dict[str, Login],
    api: httpx.AsyncClient,
    console_keys: Keys,
    pool: asyncpg.Pool,
) -> None:
    scenario = "walk_decision"
    raced, _ = await submit_application(api, pool, console_keys)
    context = await new_context(browser)
    try:
        page, _watch = await sign_in(context, console, staff_logins["operator"])
        await page.goto(console.at(f"/applications/{raced}"))
        await expect(page.locator("#claim-panel button")).to_have_text("认领")  # it waits for a decision
        note = "营业执照照片模糊，无法辨认"
        await page.check("input[name=decision][value=reject]")
        await page.fill("textarea[name=reason]", note)
        await page.click("#decide")  # no rejection reason chosen
        refusal = page.locator("#decision-result [data-outcome=refused]")
        await expect(refusal).to_have_text("驳回原因：请选择驳回原因。")  # rejection reason: choose why
        await expect(page.locator("textarea[name=reason]")).to_have_value(note)
        await expect(page.locator("input[name=decision][value=reject]")).to_be_checked()
        await check_page(page, scenario, "01-refused-form-kept")

        # Meanwhile someone approves it through the API: the page's decision loses,
        # says so beside the form, which keeps the note, and the status line moves on.
        approved = await api.post(
            f"/v1/applications/{raced}/decision",
            json={"decision": "approve"},
            headers=console_keys.headers("operator"),
        )
        assert approved.status_code == 200, approved.text
        await page.select_option("select[name=reason_code]", "documents_invalid")
        await page.click("#decide")
        await expect(page.locator("#decision-result [data-outcome=lost]")).to_be_visible()
        await expect(page.locator("#app-status")).not_to_have_text("审核中")  # not "in review" any more
        await expect(page.locator("textarea[name=reason]")).to_have_value(note)
        await check_page(page, scenario, "02-lost-race-new-state")

        # Approved here: the page shows the new state, without the decision form,
        # and the timeline names the operator.
        decided, _ = await submit_application(api, pool, console_keys)
        await page.goto(console.at(f"/applications/{decided}"))
        await page.check("input[name=decision][value=approve]")
        await page.click("#decide")
        await expect(page.locator('.done-banner[data-outcome="done"]')).to_contain_text("审核决定已记录")
        current = (
            await api.get(f"/v1/applications/{decided}", headers=console_keys.headers("operator"))
        ).json()
        assert current["status"] != "in_review"
        await expect(page.locator("#app-status")).not_to_have_text("审核中")
        assert await page.locator("#decision-panel").count() == 0
        approval = page.locator('.timeline li[data-event="ApplicationApproved"]')
        await expect(approval.locator("strong")).to_have_text("申请已批准")
        await expect(approval.locator(".who")).to_contain_text("Test operator (审核员)")
        # Nothing waits for staff now: no claim offered, and a claim sent anyway is refused.
        assert await page.locator("#claim-panel button").count() == 0
        token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
        refused = await page.request.post(
            console.at(f"/applications/{decided}/claim"),
            headers={"HX-Request": "true", "X-CSRF-Token": token or ""},
        )
        assert refused.status == 409 and "无法认领" in await refused.text()
        await check_page(page, scenario, "03-approved-new-state")
    finally:
        await context.close()


async def test_service_actions_are_offered_only_when_they_can_be_taken(
    browser: Browser,
    console: Console,
    staff_logins: dict[str, Login],
    api: httpx.AsyncClient,
    console_keys: Keys,
    pool: asyncpg.Pool,
) -> None:
    scenario = "walk_service_actions"
    app_id, _ = await submit_application(api, pool, console_keys)
    await activate(api, console_keys, app_id)
    context = await new_context(browser)
    try:
        page, watch = await sign_in(context, console, staff_logins["operator"])
        await page.goto(console.at(f"/numbers/{app_id}"))
        await expect(page.locator("#suspend")).to_be_visible()
        assert await page.locator("#resume").count() == 0  # nothing to resume
        # The forms fit the page, in either language (the change-of-details fields
        # once pushed it sideways with the English labels).
        for lang, actions in (("en", "Actions"), ("zh_CN", "操作")):
            await page.goto(console.at(f"/language?lang={lang}&next=/console/numbers/{app_id}"))
            await expect(page.locator("#actions-h")).to_have_text(actions)
            assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), lang
        await check_page(page, scenario, "01-in-service")
        for _attempt in range(20):  # just activated: the service may still be taking over
            await page.fill("form[hx-post$='/suspension'] input[name=reason]", f"投诉 {uuid.uuid4().hex[:4]}")
            await page.click("#suspend")
            try:
                await expect(page.locator(".done-banner")).to_have_text("已停机。", timeout=3000)
                break
            except AssertionError:
                await page.goto(console.at(f"/numbers/{app_id}"))
        await expect(page.locator("#number-state")).to_have_text("停机")
        await expect(page.locator("#resume")).to_be_visible()
        assert await page.locator("#suspend").count() == 0  # already suspended by an operator
        suspended = page.locator('.timeline li[data-event="OperatorSuspended"]')
        await expect(suspended.locator(".who")).to_contain_text("Test operator")
        await check_page(page, scenario, "02-suspended")
        await page.fill("form[hx-post$='/resumption'] input[name=reason]", "已整改")
        await page.click("#resume")
        await expect(page.locator(".done-banner")).to_have_text("已复机。")
        await expect(page.locator("#suspend")).to_be_visible()
        assert await page.locator("#resume").count() == 0
        assert not watch.problems, watch.problems
    finally:
        await context.close()

    viewer = await new_context(browser)
    try:
        page, _ = await sign_in(viewer, console, staff_logins["viewer"])
        await page.goto(console.at(f"/numbers/{app_id}"))
        await expect(page.locator("#number-state")).to_be_visible()
        assert await page.locator("#service-panel").count() == 0  # a viewer changes nothing
    finally:
        await viewer.close()
