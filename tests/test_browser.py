"""A real headless Chromium: two consoles in one room see each other's own pictures."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from playwright.async_api import async_playwright

from dutycall.web import create_app
from dutycall.web.app import CONFERENCE
from dutycall.web.auth import DIRECTORY, ROSTER

from .browser import VIDEO_RGB_JS, launch, write_y4m
from .conftest import ADMIN_PASSWORD, make_config
from .utils import close_colour, wait_for

RED = (220, 40, 40)
BLUE = (40, 60, 220)


async def remote_rgb(page):
    return await page.evaluate(VIDEO_RGB_JS, ".tile:not([data-local]) video")


async def wait_for_remote_colour(page, rgb, timeout=30):
    seen = {}

    async def check():
        seen["rgb"] = await remote_rgb(page)
        return seen["rgb"] is not None and close_colour(tuple(seen["rgb"][:3]), rgb, 40)

    await wait_for(check, timeout=timeout, interval=0.2, what=f"remote video showing {rgb}")


@pytest.fixture
async def browsers(tmp_path):
    async with async_playwright() as pw:
        red = await launch(pw, tmp_path / "a", write_y4m(tmp_path / "red.y4m", RED))
        blue = await launch(pw, tmp_path / "b", write_y4m(tmp_path / "blue.y4m", BLUE))
        yield red, blue
        await red.close()
        await blue.close()


SENT_HEIGHT_JS = """
async () => {
  const publication = window.dutyConsole.publication;
  if (!publication) return null;
  const stats = await publication.pc.getStats();
  for (const report of stats.values()) {
    if (report.type === "outbound-rtp" && report.kind === "video") {
      return {height: report.frameHeight || null, limited_by: report.qualityLimitationReason,
              profile: window.dutyConsole.profile, error: window.dutyConsole.profileError || null};
    }
  }
  return null;
}
"""


async def wait_for_video_height(page, height, timeout=20):
    seen: dict = {}

    async def check():
        seen["last"] = await page.evaluate(SENT_HEIGHT_JS)
        return seen["last"] and seen["last"]["height"] == height

    await wait_for(check, timeout=timeout, interval=0.25, what=f"the console sending height {height}")


async def open_console(browser, base, room, token, lang=None, init_script=None):
    """A console opened with its device link (its own browser context, so its own cookie), then,
    if ``room`` is given, reopened at ``/?room=ROOM`` (the link itself leads to standby)."""
    page = await browser.new_page()
    if init_script:
        await page.add_init_script(init_script)
    page.on("console", lambda msg: print(f"[{room}] {msg.type}: {msg.text}"))
    await page.goto(f"{base}/?device={token}" + (f"&lang={lang}" if lang else ""))
    if room:
        await page.wait_for_selector("#join-form:not([hidden])", timeout=20000)
        await page.goto(f"{base}/?room={room}" + (f"&lang={lang}" if lang else ""))
    return page


async def open_account_console(browser, base, room, lang=None):
    """The console page signed in as the administrator (a person), joining ``room``."""
    page = await browser.new_page()
    page.on("console", lambda msg: print(f"[admin] {msg.type}: {msg.text}"))
    await page.goto(f"{base}/?room={room}" + (f"&lang={lang}" if lang else ""))
    await page.fill("#username", "admin")
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_selector("#join-form:not([hidden])", timeout=20000)
    await page.click("#join")
    return page


async def console_and_room(app, room_name: str) -> tuple[int, str]:
    """A duty room and its console's device credential, as an administrator would make them."""
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    room = await directory.create_room(admin, {"unit_id": admin.unit_id, "name": room_name})
    return room["id"], (await directory.create_device_credential(admin, room["id"], "test console"))["token"]


async def test_two_browsers_see_each_others_picture(server, browsers):
    # A duty room's console on standby, and the city's administrator looking in on it.
    base = f"http://127.0.0.1:{server.port}"
    red_browser, blue_browser = browsers
    room_id, token = await console_and_room(server.app, "红色值班室")
    red = await open_console(red_browser, base, None, token)
    # The device token is traded for a session and dropped from the address bar.
    await red.wait_for_selector('#status[data-state="connected"]', timeout=20000)
    assert "device=" not in red.url
    assert await red.input_value("#room") == f"standby-{room_id}"
    blue = await open_account_console(blue_browser, base, f"standby-{room_id}", lang="en")

    # Each decodes the other's camera through the server: red sees blue, blue sees red.
    await wait_for_remote_colour(red, BLUE)
    await wait_for_remote_colour(blue, RED)

    # Names and connection state are shown, in each page's language.
    await red.wait_for_selector('.tile[data-name="系统管理员"][data-state="connected"]', timeout=20000)
    assert await red.text_content('.tile[data-name="系统管理员"] .state') == "已连接"
    assert await red.text_content("#status") == "已连接"
    await blue.wait_for_selector('.tile[data-name="红色值班室"][data-state="connected"]', timeout=20000)
    assert await blue.text_content('.tile[data-name="红色值班室"] .state') == "Connected"
    conference = server.conference
    await wait_for(lambda: conference.stats()["publications"] == 2 and conference.stats()["subscriptions"] == 2,
                   timeout=20, what="two publications, two subscriptions")

    # Closing one page is noticed, and the other drops its tile.
    await blue.close()
    await red.wait_for_selector('.tile[data-name="系统管理员"]', state="detached", timeout=30000)
    await wait_for(lambda: conference.stats()["participants"] == 1, timeout=10)


async def test_console_republishes_after_server_restart(aiohttp_server, browsers, tmp_path):
    red_browser, blue_browser = browsers

    def make_app():
        return create_app(make_config(f"sqlite:///{tmp_path}/restart.sqlite3"))

    first_app = make_app()
    first = await aiohttp_server(first_app, host="127.0.0.1")
    port = first.port
    base = f"http://127.0.0.1:{port}"
    room_id, token = await console_and_room(first_app, "red")
    red = await open_console(red_browser, base, None, token)
    blue = await open_account_console(blue_browser, base, f"standby-{room_id}")
    await wait_for_remote_colour(blue, RED)

    await first.close()
    await blue.wait_for_selector('#status[data-state="reconnecting"]', timeout=30000)

    second_app = make_app()
    await aiohttp_server(second_app, host="127.0.0.1", port=port)
    # Both consoles come back by themselves, publish again and see each other.
    await wait_for_remote_colour(blue, RED, timeout=40)
    await wait_for_remote_colour(red, BLUE, timeout=40)
    await wait_for(lambda: second_app[CONFERENCE].stats()["publications"] == 2, timeout=10)


async def test_signing_in_with_a_password_then_joining(server, browsers):
    red_browser, _ = browsers
    page = await red_browser.new_page()
    await page.goto(f"http://127.0.0.1:{server.port}/?room=duty")
    await page.wait_for_selector("#sign-in-form:not([hidden])")
    await page.fill("#username", "admin")
    await page.fill("#password", "wrong password")
    await page.click("#sign-in")
    await page.wait_for_selector("#error:not([hidden])")
    assert "登录失败" in await page.text_content("#error")
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_selector("#join-form:not([hidden])")
    assert "系统管理员" in await page.text_content("#whoami")
    await page.click("#join")
    await page.wait_for_selector('#status[data-state="connected"]', timeout=20000)
    await wait_for(lambda: server.conference.stats()["publications"] == 1, timeout=20)


async def test_directory_page_creates_searches_and_deactivates_units(server, browsers):
    red_browser, _ = browsers
    page = await red_browser.new_page()
    await page.goto(f"http://127.0.0.1:{server.port}/directory")
    await page.fill("#username", "admin")
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_selector('#units tr[data-code="city"]')
    await page.fill("#new-unit-code", "D01")
    await page.fill("#new-unit-name", "福田区")
    await page.select_option("#new-unit-kind", "district")
    await page.click("#new-unit button[type=submit]")
    await page.wait_for_selector('#units tr[data-code="D01"]')
    assert "区" in await page.text_content('#units tr[data-code="D01"]')
    await page.fill("#search", "ftq")
    await page.wait_for_selector("#results li")
    assert "福田区" in await page.text_content("#results")
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))  # it asks first
    await page.click('#units tr[data-code="D01"] button.deactivate')
    await page.wait_for_selector('#units tr.inactive[data-code="D01"]')
    # A duplicate code is refused with a message, and nothing is added.
    await page.fill("#new-unit-code", "D01")
    await page.fill("#new-unit-name", "重复")
    await page.click("#new-unit button[type=submit]")
    await page.wait_for_selector("#error:not([hidden])")
    assert await page.locator('#units tr[data-code="D01"]').count() == 1


async def test_directory_page_issues_a_console_link_and_creates_accounts(server, browsers):
    red_browser, blue_browser = browsers
    directory = server.app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    room = await directory.create_room(admin, {"unit_id": admin.unit_id, "name": "应急值班室"})
    page = await red_browser.new_page()
    await page.goto(f"http://127.0.0.1:{server.port}/directory")
    await page.fill("#username", "admin")
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#sign-in")
    await page.click(f'#rooms tr[data-room-id="{room["id"]}"] button.issue-link')
    link = await page.text_content(f'#rooms tr[data-room-id="{room["id"]}"] code.link')
    assert "device=" in link and "room=" not in link  # it leads to standby, never to a free-form room
    # The link signs a console in as that duty room, which waits on standby in its own room.
    console = await blue_browser.new_page()
    await console.goto(link)
    await console.wait_for_selector("#join-form:not([hidden])")
    assert "应急值班室" in await console.text_content("#whoami")
    await console.wait_for_selector('#status[data-state="connected"]', timeout=20000)
    assert await console.input_value("#room") == f"standby-{room['id']}"
    assert "device=" not in console.url

    await page.fill("#new-account-username", "host1")
    await page.fill("#new-account-name", "值班主任")
    await page.fill("#new-account-password", "password-456")
    await page.select_option("#new-account-role", "host")
    await page.click("#new-account button[type=submit]")
    await page.wait_for_selector('#accounts tr[data-username="host1"]')
    _, host = await directory.sign_in("host1", "password-456")
    assert host.role.value == "host"


async def test_console_is_pulled_into_a_roll_call_rings_and_answers_by_a_click(server, browsers):
    from dutycall.web.rollcalls import COORDINATOR

    red_browser, _ = browsers
    directory = server.app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    room = await directory.create_room(admin, {"unit_id": admin.unit_id, "name": "城东值班室"})
    token = (await directory.create_device_credential(admin, room["id"]))["token"]
    await server.app[ROSTER].set_shift(admin, room["id"], dt.date.today().isoformat(), {
        "leader_name": "王五", "officers": [{"name": "张三", "phone": ""}]})
    # Opened with nothing but its device link, the console waits on standby in its own room,
    # publishing the small profile, and the pre-check sees it ready.
    page = await open_console(red_browser, f"http://127.0.0.1:{server.port}", None, token)
    await page.wait_for_selector('#status[data-state="connected"]', timeout=20000)
    assert await page.input_value("#room") == f"standby-{room['id']}"
    assert "room=" not in page.url  # opened without ?room=, nothing to rewrite
    await wait_for_video_height(page, 180)

    coordinator = server.app[COORDINATOR]
    created = await coordinator.create(admin, {"room_ids": [room["id"]], "answer_window": 60, "late_after": 30})
    rid = created["id"]
    await wait_for(lambda: coordinator.readiness([room["id"]])[room["id"]] == [], timeout=20, what="ready on standby")
    await coordinator.command(admin, rid, "start", {})
    # The console moves into the roll-call's room by itself and publishes there.
    await wait_for(lambda: coordinator.is_connected(rid, room["id"]), timeout=20, what="console joined the roll-call")
    assert await page.input_value("#room") == created["room"]
    # Waiting in the roll-call, the console publishes the small profile (the fake camera is 320x240)...
    await wait_for_video_height(page, 180)
    await coordinator.command(admin, rid, "call", {})
    await page.wait_for_selector("#ring:not([hidden])", timeout=30000)
    # ...and its full picture once it has the floor.
    await wait_for_video_height(page, 240)
    assert await page.text_content("#ring strong") == "视频点名：请应答"
    # The rostered people are offered; someone else answers by typing a name (an empty one is refused).
    assert await page.locator("#rostered button.answer-as").all_text_contents() == ["张三值班员", "王五带班领导"]
    await page.click("#answer")
    await page.wait_for_selector("#error:not([hidden])")
    assert "姓名" in await page.text_content("#error")
    assert not await page.locator("#ring").is_hidden()
    await page.fill("#other-name", "赵六")
    await page.click("#answer")
    await page.wait_for_selector("#ring", state="hidden", timeout=30000)
    board = await coordinator.board(admin, rid)
    assert board["rooms"][0]["status"] == "on_time" and board["rooms"][0]["officer"] == "赵六"
    assert board["rooms"][0]["on_roster"] is False
    # When the roll-call ends the console goes back to standby by itself.
    await coordinator.command(admin, rid, "finish", {})
    await wait_for(lambda: f"standby-{room['id']}" in coordinator.conference.rooms and bool(
        coordinator.conference.rooms[f"standby-{room['id']}"].participants), timeout=20, what="back on standby")
    assert await page.input_value("#room") == f"standby-{room['id']}"
    assert "room=" not in page.url  # opened without ?room=, nothing to rewrite


async def test_host_runs_a_roll_call_from_the_board_page(server, browsers):
    red_browser, blue_browser = browsers
    directory = server.app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    present = await directory.create_room(admin, {"unit_id": admin.unit_id, "name": "在岗值班室"})
    district = await directory.create_unit(admin, {"code": "Q1", "name": "青山区", "kind": "district",
                                                   "parent_id": admin.unit_id})
    missing = await directory.create_room(admin, {"unit_id": district["id"], "name": "无人值班室"})
    await directory.create_account(admin, {"username": "qofficer", "display_name": "青山值班员", "role": "duty_officer",
                                           "password": "password-1", "unit_id": district["id"]})
    token = (await directory.create_device_credential(admin, present["id"]))["token"]
    await server.app[ROSTER].set_shift(admin, present["id"], dt.date.today().isoformat(), {
        "leader_name": "王五", "officers": [{"name": "张三", "phone": ""}, {"name": "李四", "phone": ""}]})
    console = await open_console(blue_browser, f"http://127.0.0.1:{server.port}", f"standby-{present['id']}", token)
    await console.wait_for_selector('#status[data-state="connected"]', timeout=20000)

    host = await red_browser.new_page()
    await host.goto(f"http://127.0.0.1:{server.port}/rollcall")
    await host.fill("#username", "admin")
    await host.fill("#password", ADMIN_PASSWORD)
    await host.click("#sign-in")
    await host.wait_for_selector(".pick")
    await host.click("#pick-all")  # nothing is pre-ticked
    await host.fill("#rc-window", "20")
    await host.fill("#rc-late", "10")
    await host.click("#new-rollcall button[type=submit]")
    await host.wait_for_selector(f'#board tr[data-room-id="{present["id"]}"]')
    await host.click('.controls button[data-action="start"]')
    # The console arrived in the roll-call's room (its 在线 said 是 already on standby).
    await host.wait_for_selector(f'#board tr[data-room-id="{present["id"]}"][data-presence="in_room"]', timeout=20000)
    # Opened as ?room=standby-N, the console's address now names the roll-call: a reload lands there.
    assert "room=rollcall-" in console.url
    await host.click('.controls button[data-action="call"]')
    await console.wait_for_selector("#ring:not([hidden])", timeout=30000)
    # The console offers the room's rostered people as one-click answers: 李四 answers.
    await console.click('#rostered button.answer-as[data-name="李四"]')
    row = f'#board tr[data-room-id="{present["id"]}"][data-status="on_time"]'
    await host.wait_for_selector(row, timeout=30000)
    await host.wait_for_selector(f"{row} td.on-roster >> text=是", timeout=30000)
    assert await host.text_content(f"{row} td.officer") == "李四"
    await host.click('.controls button[data-action="call"]')
    await host.wait_for_selector(f'#board tr[data-room-id="{missing["id"]}"][data-status="offline"]', timeout=30000)
    host.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))  # finishing asks first
    await host.click('.controls button[data-action="finish"]')
    await host.wait_for_selector('#phase[data-phase="finished"]', timeout=30000)
    assert "按时应答" in await host.text_content(f'#board tr[data-room-id="{present["id"]}"]')
    # The sheet's PDF link serves the document.
    pdf = await host.request.get(f"http://127.0.0.1:{server.port}" + await host.get_attribute("#sheet-pdf", "href"))
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf" and (await pdf.body()).startswith(b"%PDF")

    # The offline room got a supervision notice: its own unit answers it and the host closes it on
    # the results page, where this month's statistics and trend chart are shown too.
    await host.goto(f"http://127.0.0.1:{server.port}/results")
    row = host.locator("#notices tbody tr", has_text="无人值班室")
    await row.wait_for(timeout=30000)
    assert "离线" in await row.text_content() and await row.get_attribute("data-status") == "open"
    assert await row.locator("button").count() == 0  # the host neither answers for the unit nor closes yet
    unit = await red_browser.new_page()  # a context of its own: the district's duty officer
    await unit.goto(f"http://127.0.0.1:{server.port}/results")
    await unit.fill("#username", "qofficer")
    await unit.fill("#password", "password-1")
    await unit.click("#sign-in")
    unit_row = unit.locator("#notices tbody tr", has_text="无人值班室")
    await unit_row.wait_for(timeout=30000)
    unit.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept("线路故障，已修复")))
    await unit_row.locator("button.respond").click()
    await unit.wait_for_selector('#notices tr[data-status="responded"] >> text=线路故障，已修复', timeout=30000)
    assert await unit.locator("#notices button.close").count() == 0  # the unit cannot close its own notice
    await host.reload()
    await host.wait_for_selector('#notices tr[data-status="responded"] >> text=线路故障，已修复', timeout=30000)
    assert await host.locator('#notices tr[data-status="responded"] button.respond').count() == 0
    host.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))  # it asks first
    await host.locator('#notices tr[data-status="responded"] button.close').click()
    await host.wait_for_selector('#notices tr[data-status="closed"]', timeout=30000)
    # The city's own room answered, the district's did not.
    assert sorted(await host.locator("#units td.rate").all_text_contents()) == ["0.0%", "100.0%"]
    assert await host.locator("#districts tr", has_text="青山区").locator("td.rate").text_content() == "0.0%"
    await host.wait_for_function("document.querySelector('#trend').naturalWidth > 0", timeout=30000)


async def red_and_blue_roll_call(server):
    """A roll-call of two duty rooms, 红 and 蓝 (not started); returns what the tests use."""
    from dutycall.web.rollcalls import COORDINATOR

    directory = server.app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    red_room = await directory.create_room(admin, {"unit_id": admin.unit_id, "name": "红"})
    blue_room = await directory.create_room(admin, {"unit_id": admin.unit_id, "name": "蓝"})
    coordinator = server.app[COORDINATOR]
    created = await coordinator.create(admin, {"room_ids": [red_room["id"], blue_room["id"]]})
    return directory, admin, coordinator, red_room, blue_room, created


async def test_consoles_in_a_roll_call_see_the_called_room_on_the_floor(server, browsers):
    red_browser, blue_browser = browsers
    directory, admin, coordinator, red_room, blue_room, created = await red_and_blue_roll_call(server)
    base = f"http://127.0.0.1:{server.port}"
    red = await open_console(red_browser, base, created["room"],
                             (await directory.create_device_credential(admin, red_room["id"]))["token"])
    blue = await open_console(blue_browser, base, created["room"],
                              (await directory.create_device_credential(admin, blue_room["id"]))["token"])
    rid = created["id"]
    await wait_for(lambda: coordinator.is_connected(rid, red_room["id"]) and coordinator.is_connected(rid, blue_room["id"]),
                   timeout=20)
    await coordinator.command(admin, rid, "start", {})
    await coordinator.command(admin, rid, "call", {"room_id": red_room["id"]})
    # Blue's floor tile shows red's own camera (and blue is not subscribed to red one by one).
    await blue.wait_for_selector(f'.tile[data-floor-room-id="{red_room["id"]}"]', timeout=30000)

    async def floor_colour(page, rgb):
        async def check():
            seen = await page.evaluate(VIDEO_RGB_JS, ".tile[data-floor-tile] video")
            return seen and close_colour(tuple(seen[:3]), rgb, 40)

        await wait_for(check, timeout=30, interval=0.2, what=f"the floor showing {rgb}")

    await floor_colour(blue, RED)
    assert await blue.locator(".tile:not([data-local]):not([data-floor-tile])").count() == 0
    await coordinator.command(admin, rid, "skip", {})
    await coordinator.command(admin, rid, "call", {"room_id": blue_room["id"]})
    await floor_colour(red, BLUE)


async def test_a_console_joining_mid_call_is_told_who_has_the_floor(server, browsers):
    # The floor message went out before this console was there (or before its floor tile was
    # made, while it was still publishing): the join reply says who has the floor.
    red_browser, blue_browser = browsers
    directory, admin, coordinator, red_room, blue_room, created = await red_and_blue_roll_call(server)
    rid, base = created["id"], f"http://127.0.0.1:{server.port}"
    await open_console(red_browser, base, created["room"],
                       (await directory.create_device_credential(admin, red_room["id"]))["token"])
    await wait_for(lambda: coordinator.is_connected(rid, red_room["id"]), timeout=20)
    await coordinator.command(admin, rid, "start", {})
    await coordinator.command(admin, rid, "call", {"room_id": red_room["id"]})
    blue = await open_console(blue_browser, base, created["room"],
                              (await directory.create_device_credential(admin, blue_room["id"]))["token"])
    await blue.wait_for_selector(f'.tile[data-floor-room-id="{red_room["id"]}"]', timeout=20000)
    assert await blue.text_content(".tile[data-floor-tile] .name") == "红"


# Every RTCPeerConnection the page makes, counted outside the console's own bookkeeping.
COUNT_PEER_CONNECTIONS = """
(() => {
  const Native = window.RTCPeerConnection;
  const made = [];
  window.RTCPeerConnection = function (...args) { const pc = new Native(...args); made.push(pc); return pc; };
  window.RTCPeerConnection.prototype = Native.prototype;
  window.openPeerConnections = () => made.filter((pc) => pc.signalingState !== "closed").length;
})();
"""


async def test_consoles_keep_one_publication_through_roll_calls(server, browsers):
    # Each move (standby → roll-call → standby) used to publish twice: the handler of the
    # publication removed by the leave republished, racing the move's own publish, and left
    # extra sending connections (and a failed one) open, doubling every room's upstream.
    red_browser, _ = browsers
    base = f"http://127.0.0.1:{server.port}"
    directory = server.app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    from dutycall.web.rollcalls import COORDINATOR

    coordinator = server.app[COORDINATOR]
    conference = server.conference
    ids, pages = [], []
    for name in ("一号值班室", "二号值班室", "三号值班室"):
        room_id, token = await console_and_room(server.app, name)
        ids.append(room_id)
        pages.append(await open_console(red_browser, base, None, token, init_script=COUNT_PEER_CONNECTIONS))

    def on_standby() -> bool:
        return all(f"standby-{i}" in conference.rooms and any(
            p.publications for p in conference.rooms[f"standby-{i}"].participants.values()) for i in ids)

    def publications_per_console() -> list[int]:
        return sorted(len(p.publications) for room in list(conference.rooms.values())
                      for p in room.participants.values())

    async def pages_settled() -> bool:
        for page in pages:
            if await page.evaluate("window.openPeerConnections()") != 1:
                return False
            if await page.evaluate("window.dutycallDebug.openPeerConnections()") != ["publish"]:
                return False
        return True

    await wait_for(on_standby, timeout=30, what="three consoles on standby")
    for n in range(3):
        created = await coordinator.create(admin, {"room_ids": ids, "answer_window": 60, "late_after": 30})
        rid = created["id"]
        await wait_for(lambda: all(not p for p in coordinator.readiness(ids).values()), timeout=30,
                       what=f"ready for roll-call {n + 1}")
        await coordinator.command(admin, rid, "start", {})
        await wait_for(lambda rid=rid: all(coordinator.is_connected(rid, i) for i in ids), timeout=30,
                       what=f"in roll-call {n + 1}")
        await coordinator.command(admin, rid, "call", {"room_id": ids[n]})
        await pages[n].wait_for_selector("#ring:not([hidden])", timeout=30000)
        await coordinator.command(admin, rid, "skip", {})
        await coordinator.command(admin, rid, "finish", {})
        await wait_for(on_standby, timeout=30, what=f"back on standby after roll-call {n + 1}")

    # One publication per console, on the server and in each page: no other connection left open.
    deadline = asyncio.get_running_loop().time() + 30
    while not (publications_per_console() == [1, 1, 1] and await pages_settled()):
        assert asyncio.get_running_loop().time() < deadline, (
            publications_per_console(), [await p.evaluate("window.openPeerConnections()") for p in pages])
        await asyncio.sleep(0.2)
    health = await (await pages[0].request.get(f"{base}/healthz")).json()
    assert health["publications"] == 3 and health["participants"] == 3
    for page in pages:
        # The console's own tile says what its one publication does.
        await page.wait_for_selector('.tile[data-local][data-state="connected"]', timeout=30000)


# Every WebSocket the page tries to open (refused handshakes too), counted outside the console.
COUNT_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  let made = 0;
  window.WebSocket = function (...args) { made += 1; return new Native(...args); };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.socketsMade = () => made;
})();
"""


async def assert_no_more_sockets(page, base):
    """The page opens no socket after the one the server closed, and the server holds none of its."""
    made = await page.evaluate("window.socketsMade()")
    assert made == 1 and await page.evaluate("window.dutycallDebug.socketsOpened()") == 1
    # Nothing to wait for but time: the old console tried again after 0.5 s, then 1, 2, 4 s.
    with pytest.raises(PlaywrightTimeoutError):
        await page.wait_for_function("(made) => window.socketsMade() > made", arg=made, timeout=6000)
    assert await page.get_attribute("#status", "data-state") == "idle"
    health = await (await page.request.get(f"{base}/healthz")).json()
    assert health["participants"] == 0


async def test_a_revoked_console_says_so_and_stops_reconnecting(server, browsers):
    # Revoking a console's credential closes its socket with 4001: the console says its
    # credential is no longer valid instead of knocking at the server for ever.
    red_browser, blue_browser = browsers
    base = f"http://127.0.0.1:{server.port}"
    directory = server.app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    room = await directory.create_room(admin, {"unit_id": admin.unit_id, "name": "吊销值班室"})
    credential = await directory.create_device_credential(admin, room["id"], "test console")
    page = await open_console(red_browser, base, None, credential["token"], init_script=COUNT_SOCKETS)
    await page.wait_for_selector('#status[data-state="connected"]', timeout=20000)
    await wait_for(lambda: server.conference.stats()["publications"] == 1, timeout=20, what="console publishing")

    # An administrator revokes it through the API, from a browser of its own.
    administrator = await blue_browser.new_page()
    signed_in = await administrator.request.post(f"{base}/api/session",
                                                 data={"username": "admin", "password": ADMIN_PASSWORD})
    csrf = (await signed_in.json())["csrf_token"]
    revoked = await administrator.request.post(f"{base}/api/device-credentials/{credential['id']}/revoke",
                                               headers={"X-CSRF-Token": csrf})
    assert revoked.ok, await revoked.text()

    await page.wait_for_selector("#error:not([hidden])", timeout=30000)
    assert "凭证无效或已被吊销" in await page.text_content("#error")
    assert await page.locator(".tile").count() == 0  # camera off, nothing shown
    await assert_no_more_sockets(page, base)


async def test_a_console_signed_out_elsewhere_shows_the_sign_in_form(server, browsers):
    # The same account signs out in another tab: this tab's socket is closed with 4001, and the
    # console asks for a sign-in (in English here) rather than reconnecting.
    red_browser, _ = browsers
    base = f"http://127.0.0.1:{server.port}"
    context = await red_browser.new_context()
    await context.add_init_script(COUNT_SOCKETS)
    page = await context.new_page()
    await page.goto(f"{base}/?room=duty&lang=en")
    await page.fill("#username", "admin")
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#sign-in")
    await page.click("#join")
    await page.wait_for_selector('#status[data-state="connected"]', timeout=20000)

    other_tab = await context.new_page()
    csrf = (await (await other_tab.request.get(f"{base}/api/me")).json())["csrf_token"]
    assert (await other_tab.request.delete(f"{base}/api/session", headers={"X-CSRF-Token": csrf})).ok

    await page.wait_for_selector("#sign-in-form:not([hidden])", timeout=30000)
    assert await page.is_hidden("#join-form")
    assert "session has ended" in await page.text_content("#error")
    await assert_no_more_sockets(page, base)
    await context.close()
