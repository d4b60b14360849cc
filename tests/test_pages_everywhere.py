"""What holds on every signed-in page, in Chromium: the server's reasons reach a Chinese page in
Chinese (a wrong password, a forbidden action, an illegal roll-call move), and every page can
sign out."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import async_playwright

from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.rollcalls import COORDINATOR

from .browser import launch
from .conftest import ADMIN_PASSWORD, make_config

PAGES = ("/", "/directory", "/rollcall", "/command", "/results", "/incidents")
WAIT = 30000
#: An English word in a message: what must not reach a Chinese page.
ENGLISH = re.compile(r"[A-Za-z]{3,}")


@pytest.fixture
async def site(aiohttp_server, tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path}/p.sqlite3"))
    server = await aiohttp_server(app, host="127.0.0.1")
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    room = await directory.create_room(admin, {"unit_id": admin.unit_id, "name": "一号值班室"})
    await directory.create_account(admin, {"username": "viewer1", "display_name": "查看员", "role": "viewer",
                                           "password": "password-1", "unit_id": admin.unit_id})
    coordinator = app[COORDINATOR]
    rid = (await coordinator.create(admin, {"room_ids": [room["id"]]}))["id"]
    await coordinator.command(admin, rid, "start", {})
    await coordinator.command(admin, rid, "finish", {})
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "b")
        yield f"http://127.0.0.1:{server.port}", rid, browser
        await browser.close()


async def sign_in(page, username, password):
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#sign-in")


async def test_server_reasons_reach_a_chinese_page_in_chinese(site):
    base, rid, browser = site
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    for n, path in enumerate(PAGES):
        await page.goto(base + path)
        await page.wait_for_selector("#sign-in-form:not([hidden])", timeout=WAIT)
        await sign_in(page, f"nobody{n}", "wrong-password")  # each its own name: 5 failures lock one
        await page.wait_for_selector("#error:not([hidden])", timeout=WAIT)
        said = await page.text_content("#error")
        assert "用户名或密码" in said and not ENGLISH.search(said), (path, said)
    # A viewer's forbidden move and an illegal one on a finished roll-call, through the page's api().
    await page.goto(base + "/results")
    await sign_in(page, "viewer1", "password-1")
    await page.wait_for_selector("#sign-out:not([hidden])", timeout=WAIT)
    refused = await page.evaluate("""async (rid) => {
      const said = [];
      for (const [method, path, body] of [["POST", "/api/rollcalls", {room_ids: [1]}],
                                          ["POST", `/api/rollcalls/${rid}/start`, {}],
                                          ["GET", "/api/rollcalls/999999", undefined]]) {
        try { await api(method, path, body); said.push("accepted"); } catch (err) { said.push(err.message); }
      }
      return said;
    }""", rid)
    assert all(not ENGLISH.search(m) and re.search(r"[\u4e00-\u9fff]", m) for m in refused), refused
    admin = await browser.new_context(locale="zh-CN")
    host_page = await admin.new_page()
    await host_page.goto(base + "/results")
    await sign_in(host_page, "admin", ADMIN_PASSWORD)
    await host_page.wait_for_selector("#sign-out:not([hidden])", timeout=WAIT)
    illegal = await host_page.evaluate("""async (rid) => {
      try { await api("POST", `/api/rollcalls/${rid}/call`, {}); return "accepted"; } catch (err) { return err.message; }
    }""", rid)
    assert re.search(r"[\u4e00-\u9fff]", illegal) and not ENGLISH.search(illegal), illegal
    await context.close()
    await admin.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_every_page_can_sign_out(site, lang):
    base, rid, browser = site
    context = await browser.new_context()
    page = await context.new_page()
    label = "退出登录" if lang == "zh-CN" else "Sign out"
    for path in PAGES:
        await page.goto(f"{base}{path}?lang={lang}")
        await page.wait_for_selector("#sign-in-form:not([hidden])", timeout=WAIT)
        await sign_in(page, "admin", ADMIN_PASSWORD)
        await page.wait_for_selector("#sign-out:visible", timeout=WAIT)
        assert (await page.text_content("#sign-out")).strip() == label, path
        await page.click("#sign-out")
        await page.wait_for_selector("#sign-in-form:not([hidden])", timeout=WAIT)
        assert (await page.request.get(f"{base}/api/me")).status == 401, path
    await context.close()
