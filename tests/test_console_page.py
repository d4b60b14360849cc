"""The duty console (``/``) as duty staff use it, in Chromium, in Chinese and in English:
names instead of room ids, a countdown while it rings, 已应答 with the time in the deployment's
zone or 未应答, a leave and a sign-out that ask first, and a host's list of rooms to enter.

Screenshots go to ``DUTYCALL_SCREENSHOTS`` (default ``tests/artefacts``, not committed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pathlib
import re
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import async_playwright

from dutycall.web import create_app
from dutycall.web.app import CONFERENCE
from dutycall.web.auth import DIRECTORY, ROSTER
from dutycall.web.rollcalls import COORDINATOR

from .browser import launch, write_y4m
from .conftest import ADMIN_PASSWORD, make_config
from .test_browser import open_console
from .utils import wait_for

SHOTS = pathlib.Path(os.environ.get("DUTYCALL_SCREENSHOTS", pathlib.Path(__file__).parent / "artefacts"))
WAIT = 30000
ZONE = "Asia/Shanghai"


async def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"console-{name}.png"), full_page=True)


@pytest.fixture
async def city(aiohttp_server, tmp_path):
    """A server in Beijing time with two districts, a duty room each (a console link for the
    first, one rostered officer today), and a host of the first district."""
    app = create_app(make_config(f"sqlite:///{tmp_path}/c.sqlite3", timezone=ZONE))
    server = await aiohttp_server(app, host="127.0.0.1")
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    ids = {}
    for code, name in (("D1", "东城区"), ("D2", "西城区")):
        unit = await directory.create_unit(admin, {"code": code, "name": name, "kind": "district",
                                                   "parent_id": admin.unit_id})
        ids[code] = unit["id"]
        ids[f"room{code}"] = (await directory.create_room(admin, {"unit_id": unit["id"],
                                                                  "name": f"{name}值班室"}))["id"]
    await directory.create_account(admin, {"username": "host1", "display_name": "东城值班主任", "role": "host",
                                           "password": "password-1", "unit_id": ids["D1"]})
    token = (await directory.create_device_credential(admin, ids["roomD1"]))["token"]
    today = dt.datetime.now(ZoneInfo(ZONE)).date().isoformat()
    await app[ROSTER].set_shift(admin, ids["roomD1"], today, {"leader_name": "王五",
                                                              "officers": [{"name": "张三", "phone": ""}]})
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "b", write_y4m(tmp_path / "green.y4m", (40, 180, 60)))
        yield server, app, admin, ids, token, browser
        await browser.close()


async def _ring(app, admin, room_id, title, window=60.0):
    """A roll-call of one room, started and calling it."""
    coordinator = app[COORDINATOR]
    created = await coordinator.create(admin, {"title": title, "room_ids": [room_id], "answer_window": window,
                                               "late_after": min(30.0, window)})
    await wait_for(lambda: coordinator.readiness([room_id])[room_id] == [], timeout=20, what="ready on standby")
    await coordinator.command(admin, created["id"], "start", {})
    await wait_for(lambda: coordinator.is_connected(created["id"], room_id), timeout=20, what="in the roll-call")
    await coordinator.command(admin, created["id"], "call", {})
    return created["id"]


async def test_a_console_names_its_rooms_counts_down_and_says_how_the_call_went(city):
    server, app, admin, ids, token, browser = city
    base = f"http://127.0.0.1:{server.port}"
    page = await open_console(browser, base, None, token)
    await page.wait_for_selector('#status[data-state="connected"]', timeout=WAIT)
    # On standby: the duty room's name, not standby-<id>; nothing to pick or type.
    await page.wait_for_selector("#room-title:not([hidden])", timeout=WAIT)
    assert await page.text_content("#room-title") == "待命：东城区值班室"
    assert await page.is_hidden("#room-field") and await page.is_hidden("#room-pick-field")
    await shot(page, "standby-zh")

    coordinator = app[COORDINATOR]
    rid = await _ring(app, admin, ids["roomD1"], "周一例行点名")
    await page.wait_for_selector("#ring:not([hidden])", timeout=WAIT)
    assert await page.text_content("#room-title") == "视频点名：周一例行点名"
    assert "rollcall-" not in await page.inner_text("body")
    # A countdown of the answer window, going down.
    first = int(await page.get_attribute("#ring-countdown", "data-left"))
    assert 55 <= first <= 60 and re.fullmatch(r"剩余 \d+ 秒", await page.text_content("#ring-countdown"))
    await page.wait_for_selector(f'#ring-countdown:not([data-left="{first}"])', timeout=5000)
    await shot(page, "ringing-zh")
    await page.click('#rostered button[data-name="张三"]')
    await page.wait_for_selector('#answer-state[data-state="answered"]', timeout=WAIT)
    assert await page.is_hidden("#ring")
    said = await page.text_content("#answer-state")
    # The time is Beijing time (the server's --timezone), whatever the browser's zone.
    found = re.fullmatch(r"已应答 (\d\d):(\d\d):(\d\d)（张三）", said)
    assert found, said
    shown = dt.datetime.now(ZoneInfo(ZONE)).replace(hour=int(found[1]), minute=int(found[2]), second=int(found[3]))
    assert abs((dt.datetime.now(ZoneInfo(ZONE)) - shown).total_seconds()) < 120, said
    board = await coordinator.board(admin, rid)
    assert board["rooms"][0]["officer"] == "张三"
    await shot(page, "answered-zh")
    await coordinator.command(admin, rid, "finish", {})
    await page.wait_for_selector("#room-title:text-is('待命：东城区值班室')", timeout=WAIT)

    # A call nobody answers: 未应答 once the window passes.
    await _ring(app, admin, ids["roomD1"], "夜间抽查", window=2.0)
    await page.wait_for_selector("#ring:not([hidden])", timeout=WAIT)
    await page.wait_for_selector('#answer-state[data-state="missed"]', timeout=WAIT)
    assert await page.text_content("#answer-state") == "未应答（应答时限已过，已记录）"
    assert await page.is_hidden("#ring")
    await shot(page, "missed-zh")

    # 离开 asks first: dismissed, the console stays; accepted, it goes offline.
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), asyncio.ensure_future(d.dismiss())))
    await page.click("#leave")
    await wait_for(lambda: bool(asked), what="the leave question")
    assert "离线" in asked[0]
    assert await page.get_attribute("#status", "data-state") == "connected"
    page.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await page.click("#leave")
    await page.wait_for_selector('#status[data-state="idle"]', timeout=WAIT)
    await page.close()


async def test_sign_out_on_a_console_asks_first_in_english(city):
    server, app, admin, ids, token, browser = city
    base = f"http://127.0.0.1:{server.port}"
    page = await open_console(browser, base, None, token, lang="en")
    await page.wait_for_selector('#status[data-state="connected"]', timeout=WAIT)
    assert await page.text_content("#room-title") == "Standby: 东城区值班室"
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), asyncio.ensure_future(d.dismiss())))
    await page.click("#sign-out")
    await wait_for(lambda: bool(asked), what="the sign-out question")
    assert asked[0].startswith("Sign out?") and "console link" in asked[0]
    assert await page.is_visible("#join-form")
    await shot(page, "standby-en")
    page.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await page.click("#sign-out")
    await page.wait_for_selector("#sign-in-form:not([hidden])", timeout=WAIT)
    await page.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_a_host_picks_a_room_by_name_within_scope(city, lang):
    server, app, admin, ids, token, browser = city
    base = f"http://127.0.0.1:{server.port}"
    console = await open_console(browser, base, None, token)  # the district's console, on standby
    await console.wait_for_selector('#status[data-state="connected"]', timeout=WAIT)
    coordinator = app[COORDINATOR]
    _, host = await app[DIRECTORY].sign_in("host1", "password-1")
    await coordinator.create(host, {"title": "东城区周例会", "room_ids": [ids["roomD1"]]})
    await coordinator.create(admin, {"title": "全市周例会", "room_ids": [ids["roomD2"]]})  # the city's: not its

    page = await browser.new_page()
    await page.goto(f"{base}/?lang={lang}")
    await page.fill("#username", "host1")
    await page.fill("#password", "password-1")
    await page.click("#sign-in")
    await page.wait_for_selector("#room-pick-field:not([hidden])", timeout=WAIT)
    options = await page.locator("#room-pick option").all_text_contents()
    scheduled = "未开始" if lang == "zh-CN" else "not started"
    other = "其他会商室（输入名称）…" if lang == "zh-CN" else "Another meeting room (type a name)…"
    # Its district's roll-call and duty room only (西城区 is another district's), and a meeting room.
    assert options == [f"东城区周例会（{scheduled}）", "东城区值班室", other], options
    assert await page.is_hidden("#room-field")  # no empty free-text field
    groups = await page.eval_on_selector_all("#room-pick optgroup", "gs => gs.map(g => g.label)")
    assert groups == (["视频点名", "值班室（抽查）"] if lang == "zh-CN" else ["Roll-calls", "Duty rooms (spot-check)"])
    await page.select_option("#room-pick", label="东城区值班室")
    await shot(page, f"host-pick-{lang}")
    await page.click("#join")
    await page.wait_for_selector('#status[data-state="connected"]', timeout=WAIT)
    standby = "待命：" if lang == "zh-CN" else "Standby: "
    await page.wait_for_selector(f"#room-title:text-is('{standby}东城区值班室')", timeout=WAIT)
    # The host is in the duty room's standby room, with its console (a spot-check).
    conference = app[CONFERENCE]
    await wait_for(lambda: len(conference.participants_tagged(f"duty_room:{ids['roomD1']}")) == 1, what="console")
    await shot(page, f"host-spot-check-{lang}")
    # The meeting-room choice shows the field to type a name into.
    await page.click("#leave")
    await page.select_option("#room-pick", value="")
    assert await page.is_visible("#room")
    await page.close()
    await console.close()


async def test_the_room_list_is_scope_checked(city):
    server, app, admin, ids, token, browser = city
    from .test_exports import Api

    base = f"http://127.0.0.1:{server.port}"
    await app[COORDINATOR].create(admin, {"title": "西城区周例会", "room_ids": [ids["roomD2"]]})
    host = await Api.account(base, "host1", "password-1")
    status, rooms = await host.call("GET", "/api/console/rooms")
    assert status == 200
    assert [r["name"] for r in rooms["standby"]] == ["东城区值班室"] and rooms["rollcalls"] == []
    everyone = await Api.account(base, "admin", ADMIN_PASSWORD)
    status, rooms = await everyone.call("GET", "/api/console/rooms")
    assert [r["title"] for r in rooms["rollcalls"]] == ["西城区周例会"] and len(rooms["standby"]) == 2
    console = await Api.console(base, token)
    status, mine = await console.call("GET", "/api/console/rooms")
    assert [r["room"] for r in mine["standby"]] == [f"standby-{ids['roomD1']}"] and mine["rollcalls"] == []
    for api in (host, everyone, console):
        await api.close()
