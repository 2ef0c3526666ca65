"""/docs works without internet: every asset comes from the API itself.

Checked twice: the HTML references no other host and every asset it names
loads from the app; and a real browser (Debian's chromium, driven by
Playwright) renders Swagger UI while every request to another host is refused.
"""

from __future__ import annotations

import re
import shutil
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.live_server import served

__all__ = ["served"]  # a fixture, used by name

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
_REFERENCES = re.compile(
    r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'|(https?://[^\s"'<>)]+)"""
)


def references(html: str) -> list[str]:
    return [next(g for g in match.groups() if g) for match in _REFERENCES.finditer(html)]


async def test_the_docs_page_names_no_other_host_and_its_assets_load(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    found = references(response.text)
    assert "/v1/openapi.json" in found
    assert [r for r in found if urlsplit(r).netloc or urlsplit(r).scheme] == []
    assets = [r for r in found if r.startswith("/docs/assets/")]
    assert len(assets) == 3, found  # the script, the stylesheet, the icon
    for asset in assets:
        loaded = await client.get(asset)
        assert loaded.status_code == 200, asset
        assert len(loaded.content) > 100, asset


async def test_swagger_ui_renders_in_a_browser_with_no_other_host_reachable(served: str) -> None:
    if not shutil.which(CHROMIUM):
        pytest.skip("needs Debian's chromium: apt-get install chromium (make test installs it when root)")
    from playwright.async_api import Route, async_playwright

    elsewhere: list[str] = []
    failed: list[str] = []

    async def only_this_host(route: Route) -> None:
        if route.request.url.startswith(served):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = await browser.new_page()
            await page.route("**/*", only_this_host)
            page.on("requestfailed", lambda request: failed.append(request.url))
            await page.goto(f"{served}/docs")
            title = page.locator(".swagger-ui .info .title")
            await title.wait_for(timeout=15_000)
            assert "400 number registration API" in await title.inner_text()
            # The operations are listed: the document was fetched and rendered.
            assert await page.locator(".opblock").count() > 20
        finally:
            await browser.close()
    assert elsewhere == []
    assert failed == []
