"""The directory page for a city's administrator, in Chromium: the unit tree collapsed (a branch
opens by its button), long tables cut to their first rows with a filter, a console credential
revoked from the page (after a question), and empty tables that say 暂无."""

from __future__ import annotations

import asyncio
import os
import pathlib

import pytest
from playwright.async_api import async_playwright

from dutycall.directory.demo import load_demo
from dutycall.errors import NotSignedIn
from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.keys import SERVICES

from .browser import launch
from .conftest import ADMIN_PASSWORD, make_config

SHOTS = pathlib.Path(os.environ.get("DUTYCALL_SCREENSHOTS", pathlib.Path(__file__).parent / "artefacts"))
WAIT = 30000


@pytest.fixture
async def demo_city(aiohttp_server, tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path}/d.sqlite3"))
    server = await aiohttp_server(app, host="127.0.0.1")
    summary = await load_demo(app[SERVICES].sessionmaker, days=2, incidents=False, rollcalls=False)
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "b")
        yield f"http://127.0.0.1:{server.port}", app, summary, browser
        await browser.close()


async def sign_in(page, base, lang="zh-CN"):
    await page.goto(f"{base}/directory?lang={lang}")
    await page.fill("#username", "admin")
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_selector('#units tr[data-code="D01"]', timeout=WAIT)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_the_city_s_directory_fits_a_screen_or_three(demo_city, lang):
    base, app, summary, browser = demo_city
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await sign_in(page, base, lang)
    await page.wait_for_selector("#rooms tbody tr[data-room-id]", timeout=WAIT)
    height = await page.evaluate("() => document.documentElement.scrollHeight")
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"directory-admin-{lang}.png"), full_page=True)
    assert height < 3000, height
    # Streets are folded under their district until it is opened.
    street = page.locator('#units tr[data-code="D01S01"]')
    assert await street.is_hidden()
    await page.click('#units tr[data-code="D01"] button.toggle')
    await street.wait_for(state="visible", timeout=WAIT)
    assert await page.locator('#units tr[data-code="D02S01"]').is_hidden()
    # A long table shows its first rows; the filter finds any other.
    assert await page.locator("#rooms tbody tr[data-room-id]:visible").count() == 8
    await page.fill("#rooms-filter", "园岭")
    await page.wait_for_selector('#rooms tbody tr[data-room-id]:visible:has-text("园岭街道值班室")', timeout=WAIT)
    assert await page.locator("#rooms tbody tr[data-room-id]:visible").count() == 1
    await page.click("#rooms-more") if await page.is_visible("#rooms-more") else None
    await page.close()


async def test_a_console_credential_is_revoked_from_the_page(demo_city):
    base, app, summary, browser = demo_city
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    room = next(r for r in await directory.list_rooms(admin) if r["name"] == summary.console_room)
    page = await browser.new_page()
    await sign_in(page, base)
    await page.fill("#rooms-filter", summary.console_room)
    row = page.locator(f'#rooms tr[data-room-id="{room["id"]}"]')
    await row.locator("button.credentials").click()
    item = page.locator(f'#rooms tr.credentials[data-room-id="{room["id"]}"] li[data-state="active"]')
    await item.wait_for(timeout=WAIT)
    assert "demo console" in await item.text_content() and "尚未使用" in await item.text_content()
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), asyncio.ensure_future(d.dismiss())))
    await item.locator("button.revoke").click()
    await page.wait_for_timeout(0)
    assert await item.count() == 1  # dismissed: nothing revoked
    page.once("dialog", lambda d: (asked.append(d.message), asyncio.ensure_future(d.accept())))
    await item.locator("button.revoke").click()
    await page.wait_for_selector(f'#rooms tr.credentials[data-room-id="{room["id"]}"] li[data-state="revoked"]',
                                 timeout=WAIT)
    assert summary.console_room in asked[0] and "吊销" in asked[0] and len(asked) == 2
    token = summary.console_link.split("device=")[1]
    with pytest.raises(NotSignedIn):
        await directory.device_sign_in(token)  # the console's link no longer signs in
    await page.close()


async def test_empty_tables_say_so(aiohttp_server, tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path}/e.sqlite3"))
    server = await aiohttp_server(app, host="127.0.0.1")
    base = f"http://127.0.0.1:{server.port}"
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "b")
        page = await browser.new_page()
        await page.goto(f"{base}/results")
        await page.fill("#username", "admin")
        await page.fill("#password", ADMIN_PASSWORD)
        await page.click("#sign-in")
        await page.wait_for_selector("#notices tbody tr.empty", timeout=WAIT)
        assert await page.text_content("#notices tbody tr.empty") == "暂无"
        await page.goto(f"{base}/directory")
        await page.wait_for_selector("#rooms tbody tr.empty", timeout=WAIT)
        assert await page.text_content("#rooms tbody tr.empty") == "暂无"
        await browser.close()
