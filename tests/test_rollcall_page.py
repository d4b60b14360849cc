"""The host's /rollcall page in a real headless Chromium, as a city duty host uses it: weekly and
monthly plans from a form (the next five occurrences checked against dateutil), the room picker
(unit tree, all/none per branch, search by name and pinyin initials, saved groups), the live
pre-check and a board pushed over the signalling socket (never polled), history with rates, a
reload mid roll-call, buttons by role and phase, a phone-sized screen; and the saved groups' API
(scope-checked).

Screenshots go to DUTYCALL_SCREENSHOTS, or tests/artifacts/rollcall (gitignored).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pathlib
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiortc.mediastreams import AudioStreamTrack
from dateutil.rrule import MO, TH, WEEKLY, rrule
from playwright.async_api import async_playwright

from dutycall import timezone
from dutycall.client import SignallingClient, publish, sign_in
from dutycall.rollcall.models import RoomGroup
from dutycall.synthetic import PreEncodedTrack
from dutycall.web.auth import DIRECTORY
from dutycall.web.rollcalls import COORDINATOR

from .browser import launch
from .conftest import ADMIN_PASSWORD
from .utils import wait_for

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SHOTS = pathlib.Path(os.environ.get("DUTYCALL_SCREENSHOTS") or pathlib.Path(__file__).parent / "artifacts" / "rollcall")
WAIT = 20000
PASSWORD = "password-1"


@dataclass
class City:
    base: str
    app: Any
    units: dict[str, int]
    rooms: dict[str, int]


@pytest.fixture
async def city(server) -> City:
    """The city with two districts and their streets, a duty room in each unit; a city host
    (赵主任), a city viewer, a host of 西山区 and a street duty officer."""
    directory = server.app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    units = {"city": admin.unit_id}
    rooms = {"市值班室": (await directory.create_room(admin, {"unit_id": admin.unit_id, "name": "市值班室"}))["id"]}
    for code, name, kind, parent in (("D1", "东湖区", "district", "city"), ("S1", "东湖街道", "street", "D1"),
                                     ("S2", "湖滨街道", "street", "D1"), ("D2", "西山区", "district", "city"),
                                     ("S3", "西山街道", "street", "D2")):
        units[code] = (await directory.create_unit(admin, {"code": code, "name": name, "kind": kind,
                                                           "parent_id": units[parent]}))["id"]
        room = f"{name}值班室"
        rooms[room] = (await directory.create_room(admin, {"unit_id": units[code], "name": room}))["id"]
    for username, name, role, unit in (("zhuren", "赵主任", "host", "city"), ("chakan", "钱查看", "viewer", "city"),
                                       ("xishan", "孙主任", "host", "D2"), ("jiedao", "李值班", "duty_officer", "S1")):
        await directory.create_account(admin, {"username": username, "display_name": name, "role": role,
                                               "password": PASSWORD, "unit_id": units[unit]})
    return City(f"http://127.0.0.1:{server.port}", server.app, units, rooms)


@pytest.fixture
async def browser(tmp_path):
    async with async_playwright() as pw:
        chromium = await launch(pw, tmp_path / "chromium")
        yield chromium
        await chromium.close()


async def open_page(browser, city: City, username: str, path: str = "/rollcall", viewport=DESKTOP, lang=None,
                    ws_route=None):
    """Signed in on ``path``; ``ws_route``: a Playwright handler the page's signalling sockets go through."""
    context = await browser.new_context(viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    page = await context.new_page()
    if ws_route is not None:
        await page.route_web_socket(lambda url: urllib.parse.urlsplit(url).path == "/ws", ws_route)
    page.on("pageerror", lambda exc: print(f"[{username}] page error: {exc}"))
    await page.goto(city.base + path + (("&" if "?" in path else "?") + f"lang={lang}" if lang else ""))
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_selector("#host:not([hidden])", timeout=WAIT)
    return page


async def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def no_sideways_scroll(page) -> None:
    widths = await page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


#: A small picture encoded once and looped: a console that costs the test's event loop nothing.
_PACKETS: list[bytes] = []


class Console:
    """A duty room's console (aiortc): signed in with its device credential, in ``room``, sending
    video and audio."""

    async def start(self, city: City, room_id: int, room: str | None = None) -> Console:
        directory = city.app[DIRECTORY]
        _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
        token = (await directory.create_device_credential(admin, room_id))["token"]
        cookies = await sign_in(city.base, device_token=token)
        self.client = await SignallingClient(city.base.replace("http", "ws") + "/ws", cookies=cookies).connect()
        await self.client.join(room or f"standby-{room_id}", "")
        if not _PACKETS:
            _PACKETS.extend(await asyncio.to_thread(PreEncodedTrack.encode, width=160, height=120, fps=10,
                                                    bitrate=100_000, seconds=1.0))
        self.pc, _ = await publish(self.client, video=PreEncodedTrack(_PACKETS, fps=10), audio=AudioStreamTrack())
        return self

    async def close(self) -> None:
        await self.pc.close()
        await self.client.close()


def next_five(days: tuple[Any, ...], hour: int, minute: int) -> list[dt.datetime]:
    """What dateutil says of a weekly rule from now, in the deployment's zone."""
    now = timezone.now()
    rule = rrule(WEEKLY, byweekday=days, byhour=hour, byminute=minute, bysecond=0,
                 dtstart=now.replace(second=0, microsecond=0))
    return [w for w in rule.xafter(now, count=5)]


async def previewed(page) -> list[dt.datetime]:
    items = page.locator("#plan-next li")
    return [dt.datetime.fromisoformat(iso) for iso in await items.evaluate_all("(els) => els.map((e) => e.dataset.iso)")]


async def test_a_host_plans_weekly_and_monthly_roll_calls_with_the_form(city, browser):
    page = await open_page(browser, city, "zhuren")
    await page.wait_for_selector("#plans tr.empty >> text=暂无", timeout=WAIT)
    await page.fill("#plan-title", "每周街道点名")
    await page.select_option("#plan-target", str(city.units["D1"]))
    await page.check('#plan-kinds input[value="street"]')
    await page.check('#plan-weekdays input[value="TH"]')  # Monday is ticked already
    await page.fill("#plan-time", "08:30")
    expected = next_five((MO, TH), 8, 30)
    await page.wait_for_selector("#plan-rrule >> text=FREQ=WEEKLY;BYDAY=MO,TH", timeout=WAIT)

    async def shows_expected():
        return await previewed(page) == expected

    await wait_for(shows_expected, timeout=20, interval=0.2, what="the next five Mondays and Thursdays")
    await shot(page, "plan-form")
    await page.click("#plan-save")
    row = page.locator("#plans tbody tr", has_text="每周街道点名")
    await row.wait_for(timeout=WAIT)
    assert "每周一、四 08:30" in await row.locator("td.schedule").text_content()
    assert await row.locator("td.next").text_content() == expected[0].strftime("%Y-%m-%d %H:%M")

    # Edit: monthly on the 15th at 07:00; the preview follows the form.
    await row.locator("button.edit").click()
    await page.check('input[name="plan-freq"][value="monthly"]')
    await page.fill("#plan-monthday", "15")
    await page.fill("#plan-time", "07:00")
    await page.wait_for_selector("#plan-rrule >> text=FREQ=MONTHLY;BYMONTHDAY=15", timeout=WAIT)

    async def fifteenths():
        shown = await previewed(page)
        return len(shown) == 5 and all(w.day == 15 and (w.hour, w.minute) == (7, 0) for w in shown)

    await wait_for(fifteenths, timeout=20, interval=0.2, what="five 15ths at 07:00")
    await page.click("#plan-save")
    await page.wait_for_selector('#plans td.schedule >> text=每月 15 日 07:00', timeout=WAIT)

    # Pause, then delete: asked first; "no" keeps it.
    row = page.locator("#plans tbody tr", has_text="每周街道点名")
    await row.locator("button.pause").click()
    await page.wait_for_selector('#plans tr[data-active="false"] >> text=已暂停', timeout=WAIT)
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.dismiss()))
    await row.locator("button.delete").click()
    await page.wait_for_selector('#plans tr[data-active="false"]', timeout=WAIT)
    await row.locator("button.resume").click()
    await page.wait_for_selector('#plans tr[data-active="true"]', timeout=WAIT)
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await row.locator("button.delete").click()
    await page.wait_for_selector("#plans tr.empty >> text=暂无", timeout=WAIT)


async def test_the_precheck_is_read_over_http_while_the_socket_is_down(city, browser):
    """A proxy drops the page's signalling socket and refuses it again: the pre-check is read over
    HTTP (every 15 s) until the socket is back, so a console connecting still shows as ready."""
    sockets: list = []
    up = True

    def route(ws) -> None:
        if up:
            ws.connect_to_server()
            sockets.append(ws)
        else:
            asyncio.ensure_future(ws.close())

    page = await open_page(browser, city, "zhuren", ws_route=route)
    await page.wait_for_selector("input.pick", state="attached", timeout=WAIT)
    street = city.rooms["东湖街道值班室"]
    await page.fill("#picker-search", "东湖街道")
    await page.check(f'input.pick[value="{street}"]')
    await page.fill("#picker-search", "")
    await page.wait_for_selector(f'#precheck li[data-room-id="{street}"][data-state="offline"]', timeout=WAIT)
    reads = "performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/api/rollcalls/precheck')).length"
    assert await page.evaluate(reads) == 0  # pushed while the socket is up
    up = False
    for ws in sockets:
        await ws.close()
    await wait_for(lambda: page.evaluate("window.dutycallDebug.precheckPolling()"), timeout=20,
                   what="the pre-check read over HTTP")
    console = await Console().start(city, street)
    try:
        await page.wait_for_selector(f'#precheck li[data-room-id="{street}"][data-state="ready"]', timeout=40000)
        assert await page.evaluate(reads) >= 2
        await shot(page, "precheck-http-fallback")
        # The socket back: pushed again, no more reads over HTTP.
        up = True
        await wait_for(lambda: page.evaluate("!window.dutycallDebug.precheckPolling()"), timeout=60,
                       what="the pre-check pushed again")
        before = await page.evaluate(reads)
        await console.close()
        console = None
        await page.wait_for_selector(f'#precheck li[data-room-id="{street}"][data-state="offline"]', timeout=10000)
        assert await page.evaluate(reads) == before
    finally:
        if console is not None:
            await console.close()


async def test_picker_precheck_pushed_board_history_and_reload(city, browser):
    page = await open_page(browser, city, "zhuren")
    await page.wait_for_selector("input.pick", state="attached", timeout=WAIT)
    assert await page.locator("input.pick:checked").count() == 0  # nothing pre-ticked
    assert await page.locator("#create-rollcall").is_disabled()
    # Search by pinyin initials, then by name.
    await page.fill("#picker-search", "hbjd")
    visible = page.locator("label.room:visible")
    await wait_for(lambda: visible.all_text_contents(), timeout=10, what="search results")
    assert [t.strip() for t in await visible.all_text_contents()] == ["湖滨街道值班室"]
    await page.fill("#picker-search", "西山")
    await wait_for(lambda: page.locator("label.room", has_text="东湖区值班室").is_hidden(), timeout=10)
    assert sorted(t.strip() for t in await visible.all_text_contents()) == ["西山区值班室", "西山街道值班室"]
    await page.fill("#picker-search", "")
    # The district's branch picks its own room and its streets', no other.
    await page.check(f'details[data-unit-id="{city.units["D1"]}"] > summary input.branch')
    district = [city.rooms[n] for n in ("东湖区值班室", "东湖街道值班室", "湖滨街道值班室")]
    checked = await page.locator("input.pick:checked").evaluate_all("(els) => els.map((e) => Number(e.value))")
    assert sorted(checked) == sorted(district)
    assert await page.locator(f'details[data-unit-id="{city.units["city"]}"] > summary input.branch').evaluate(
        "(e) => e.indeterminate")

    # The pre-check: every picked room offline, then one console connects and it turns ready.
    street = city.rooms["东湖街道值班室"]
    for room_id in district:
        await page.wait_for_selector(f'#precheck li[data-room-id="{room_id}"][data-state="offline"]', timeout=WAIT)
    console = await Console().start(city, street)
    await page.wait_for_selector(f'#precheck li[data-room-id="{street}"][data-state="ready"]', timeout=WAIT)
    await shot(page, "precheck")
    # Pushed over the socket, not polled: a console going away shows as offline within seconds,
    # without a reload and without the page reading the pre-check over HTTP.
    precheck_reads = "performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/api/rollcalls/precheck')).length"
    assert await page.evaluate(precheck_reads) == 0
    assert not await page.evaluate("window.dutycallDebug.precheckPolling()")
    await console.close()
    await page.wait_for_selector(f'#precheck li[data-room-id="{street}"][data-state="offline"]', timeout=5000)
    await shot(page, "precheck-offline")
    console = await Console().start(city, street)
    await page.wait_for_selector(f'#precheck li[data-room-id="{street}"][data-state="ready"]', timeout=WAIT)
    assert await page.evaluate(precheck_reads) == 0

    # A saved group round-trips through the page.
    await page.fill("#group-name", "东湖区全部")
    await page.click("#group-form button[type=submit]")
    await page.wait_for_selector("#group-list button.group-apply >> text=东湖区全部 (3)", timeout=WAIT)
    await page.click("#pick-none")
    assert await page.locator("input.pick:checked").count() == 0
    await page.click("#group-list button.group-apply >> text=东湖区全部")
    await wait_for(lambda: page.locator("input.pick:checked").count(), timeout=10)
    assert await page.locator("input.pick:checked").count() == 3

    # The board: its 在线 is the pre-check's answer, and it follows the socket.
    await page.fill("#rc-name", "周一街道点名")
    await page.click("#create-rollcall")
    await page.wait_for_selector(f'#board tr[data-room-id="{street}"][data-presence="ready"]', timeout=WAIT)
    offline_room = city.rooms["湖滨街道值班室"]
    await page.wait_for_selector(f'#board tr[data-room-id="{offline_room}"][data-presence="offline"]', timeout=WAIT)
    rid = int(page.url.split("id=")[1].split("&")[0])
    assert await page.get_attribute("#command-link", "href") == f"/command?rollcall={rid}"
    await page.click('.controls button[data-action="start"]')
    await page.wait_for_selector('#phase[data-phase="running"]', timeout=WAIT)
    assert await page.locator('.controls button[data-action="start"]').is_hidden()

    # A reload mid roll-call lands back on the same board, from the server.
    await page.reload()
    await page.wait_for_selector('#phase[data-phase="running"]', timeout=WAIT)
    await wait_for(lambda: page.evaluate("window.dutycallDebug.following()"), timeout=20, what="following again")
    board_reads = "performance.getEntriesByType('resource').filter((e) => /\\/api\\/rollcalls\\/\\d+$/.test(e.name)).length"
    reads_before = await page.evaluate(board_reads)

    # The console moves into the roll-call's room, is called and answers: each step is pushed.
    await console.close()
    console = await Console().start(city, street, f"rollcall-{rid}")
    await page.wait_for_selector(f'#board tr[data-room-id="{street}"][data-presence="in_room"]', timeout=WAIT)
    await page.click(f'#board tr[data-room-id="{street}"] button.call')
    ring = await console.client.wait_event("rollcall_ring", timeout=20, duty_room_id=street)
    assert ring["roll_call_id"] == rid
    await console.client.request("rollcall_answer", roll_call_id=rid, officer="张三")
    await page.wait_for_selector(f'#board tr[data-room-id="{street}"][data-status="on_time"] >> text=张三',
                                 timeout=WAIT)
    # A console coming online on standby changes the board's 在线 too.
    other = await Console().start(city, offline_room)
    await page.wait_for_selector(f'#board tr[data-room-id="{offline_room}"][data-presence="ready"]', timeout=WAIT)
    await other.close()
    await page.wait_for_selector(f'#board tr[data-room-id="{offline_room}"][data-presence="offline"]', timeout=WAIT)
    assert await page.evaluate(board_reads) == reads_before, "the board was read over HTTP, not pushed"
    await page.click(f'#board tr[data-room-id="{offline_room}"] button.call')
    await page.wait_for_selector(f'#board tr[data-room-id="{offline_room}"][data-status="offline"]', timeout=WAIT)
    await shot(page, "board-running")

    # Finishing asks first; a finished roll-call offers no 开始 and no 结束.
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.click('.controls button[data-action="finish"]')
    await page.wait_for_selector('#phase[data-phase="finished"]', timeout=WAIT)
    assert await page.locator(".controls button[data-action]:visible").count() == 0
    # History: the roll-call with its host and rates; its open button shows its board.
    row = page.locator(f'#history tr[data-rollcall-id="{rid}"]')
    await row.locator("td.phase >> text=已结束").wait_for(timeout=WAIT)
    assert await row.locator("td.host").text_content() == "赵主任"
    assert await row.locator("td.rooms").text_content() == "3"
    assert await row.locator("td.answered-rate").text_content() == "33.3%"
    assert await row.locator("td.late-rate").text_content() == "0.0%"
    assert await row.locator("td.absent-rate").text_content() == "66.7%"
    assert await row.locator("a.sheet-pdf").get_attribute("href") == f"/api/rollcalls/{rid}/sheet.pdf"
    await page.click("#close-board")
    await page.wait_for_selector("#board-section", state="hidden")
    await row.locator("button.open").click()
    await page.wait_for_selector(f'#board tr[data-room-id="{street}"][data-status="on_time"]', timeout=WAIT)
    await shot(page, "history")
    await console.close()


async def test_buttons_follow_role_and_phase_and_a_phone_never_scrolls_sideways(city, browser):
    directory = city.app[DIRECTORY]
    _, host = await directory.sign_in("zhuren", PASSWORD)
    coordinator = city.app[COORDINATOR]
    done = await coordinator.create(host, {"title": "已结束的点名", "room_ids": [city.rooms["市值班室"]]})
    await coordinator.command(host, done["id"], "start", {})
    await coordinator.command(host, done["id"], "finish", {})
    waiting = await coordinator.create(host, {"title": "待开始", "room_ids": [city.rooms["西山街道值班室"]]})

    viewer = await open_page(browser, city, "chakan", f"/rollcall?id={waiting['id']}")
    await viewer.wait_for_selector('#phase[data-phase="scheduled"]', timeout=WAIT)
    assert await viewer.locator("#new-section").is_hidden() and await viewer.locator("#plans-section").is_hidden()
    assert await viewer.locator("#create-rollcall:visible").count() == 0  # a viewer sees no 创建
    assert await viewer.locator(".controls button[data-action]:visible").count() == 0
    assert await viewer.locator("#board button:visible").count() == 0
    await viewer.locator(f'#history tr[data-rollcall-id="{done["id"]}"]').wait_for(timeout=WAIT)

    officer = await open_page(browser, city, "jiedao", "/rollcall")
    await officer.wait_for_selector("#history tr", timeout=WAIT)
    assert await officer.locator("#create-rollcall:visible").count() == 0
    assert await officer.locator('.controls button[data-action="finish"]:visible').count() == 0

    page = await open_page(browser, city, "zhuren", f"/rollcall?id={done['id']}", viewport=PHONE)
    await page.wait_for_selector('#phase[data-phase="finished"]', timeout=WAIT)
    assert await page.locator('.controls button[data-action="start"]').is_hidden()  # a finished one: no 开始
    await page.click(f'#history tr[data-rollcall-id="{waiting["id"]}"] button.open')
    await page.wait_for_selector('#phase[data-phase="scheduled"]', timeout=WAIT)
    assert await page.locator('.controls button[data-action="start"]').is_visible()
    assert await page.locator('.controls button[data-action="finish"]').is_hidden()
    await page.wait_for_selector("#plan-next li", timeout=WAIT)
    await no_sideways_scroll(page)
    await shot(page, "phone-zh")
    await page.click("#lang")
    await page.wait_for_selector('.controls button[data-action="start"] >> text=Start', timeout=WAIT)
    await page.wait_for_selector("#plans tr.empty >> text=None yet", timeout=WAIT)
    await no_sideways_scroll(page)
    await shot(page, "phone-en")


async def test_saved_groups_round_trip_and_stay_in_scope(city):
    base = city.base

    async def session(username: str) -> tuple[aiohttp.ClientSession, str]:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        reply = await (await http.post(f"{base}/api/session", json={"username": username, "password": PASSWORD})).json()
        return http, reply["csrf_token"]

    host, host_csrf = await session("zhuren")
    west, west_csrf = await session("xishan")
    try:
        me = await (await host.get(f"{base}/api/me")).json()
        assert "rollcall.host" in me["principal"]["permissions"]
        streets = [city.rooms[n] for n in ("东湖街道值班室", "湖滨街道值班室", "西山街道值班室")]
        saved = await host.post(f"{base}/api/room-groups", json={"name": "全市街道", "room_ids": streets, "shared": True},
                                headers={"X-CSRF-Token": host_csrf})
        assert saved.status == 200, await saved.text()
        group = await saved.json()
        listed = await (await host.get(f"{base}/api/room-groups")).json()
        assert [(g["name"], g["room_ids"]) for g in listed] == [("全市街道", streets)]

        # 西山区's host cannot save a room of 东湖区 in a group, and does not see the city's group.
        smuggled = await west.post(f"{base}/api/room-groups", headers={"X-CSRF-Token": west_csrf},
                                   json={"name": "偷渡", "room_ids": [city.rooms["西山街道值班室"], city.rooms["东湖街道值班室"]]})
        assert smuggled.status == 404
        assert await (await west.get(f"{base}/api/room-groups")).json() == []
        tree = await (await west.get(f"{base}/api/rollcall-picker")).json()
        assert {r["id"] for r in tree["rooms"]} == {city.rooms["西山区值班室"], city.rooms["西山街道值班室"]}
        # A group row holding an outside room (written behind the API's back) hands out only
        # the reader's own rooms; and the pre-check refuses rooms out of scope.
        _, west_principal = await city.app[DIRECTORY].sign_in("xishan", PASSWORD)
        async with city.app[COORDINATOR].store.sessionmaker() as db:
            db.add(RoomGroup(owner_account_id=west_principal.id, unit_id=city.units["D2"], name="混入",
                             room_ids=[city.rooms["西山街道值班室"], city.rooms["市值班室"]]))
            await db.commit()
        listed = await (await west.get(f"{base}/api/room-groups")).json()
        assert [(g["name"], g["room_ids"]) for g in listed] == [("混入", [city.rooms["西山街道值班室"]])]
        refused = await west.post(f"{base}/api/rollcalls/precheck", headers={"X-CSRF-Token": west_csrf},
                                  json={"room_ids": [city.rooms["市值班室"]]})
        assert refused.status == 404
        # Only the owner deletes a group.
        assert (await west.delete(f"{base}/api/room-groups/{group['id']}",
                                  headers={"X-CSRF-Token": west_csrf})).status == 404
        assert (await host.delete(f"{base}/api/room-groups/{group['id']}",
                                  headers={"X-CSRF-Token": host_csrf})).status == 200
        assert await (await host.get(f"{base}/api/room-groups")).json() == []

        # One name per owner: saving it again replaces the group; eight saves of a new name at
        # once leave one group, and whoever lost the race is told so (409), never a duplicate.
        for rooms in (streets[:1], streets[:2]):
            again = await host.post(f"{base}/api/room-groups", json={"name": "早班", "room_ids": rooms},
                                    headers={"X-CSRF-Token": host_csrf})
            assert again.status == 200, await again.text()
        assert [(g["name"], g["room_ids"]) for g in await (await host.get(f"{base}/api/room-groups")).json()] == [
            ("早班", streets[:2])]
        answers = await asyncio.gather(*(host.post(f"{base}/api/room-groups", json={"name": "夜班", "room_ids": streets},
                                                   headers={"X-CSRF-Token": host_csrf}) for _ in range(8)))
        for answer in answers:
            assert answer.status in (200, 409), await answer.text()
            if answer.status == 409:
                assert "已有名为“夜班”的分组" in (await answer.json())["error"]["message"]
        names = [g["name"] for g in await (await host.get(f"{base}/api/room-groups")).json()]
        assert sorted(names) == ["夜班", "早班"], names
    finally:
        await host.close()
        await west.close()
