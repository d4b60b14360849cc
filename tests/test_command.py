"""The command seat (/command) and the wall's thumbnails (media/wall.py, web/wall.py).

Consoles are in-process aiortc clients publishing a solid colour (cheap); the host's page is a
real headless Chromium with a fake camera. Screenshots go to DUTYCALL_SCREENSHOTS (default
/tmp) as command-*.png.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import pathlib

import av
import numpy as np
import pytest
from playwright.async_api import async_playwright

from dutycall.client import SignallingClient, publish, sign_in
from dutycall.synthetic import EncodedColorTrack
from dutycall.web.auth import DIRECTORY
from dutycall.web.rollcalls import COORDINATOR
from dutycall.web.wall import THUMBNAILS

from .browser import VIDEO_RGB_JS, launch, write_y4m
from .conftest import ADMIN_PASSWORD, PASSWORD
from .utils import close_colour, wait_for

SHOTS = pathlib.Path(os.environ.get("DUTYCALL_SCREENSHOTS", "/tmp"))
RED = (220, 40, 40)
BLUE = (40, 60, 220)
GREEN = (40, 200, 60)


class Console:
    """A duty room's console: signed in with its device credential, publishing a colour; like a
    real console it connects again and publishes again when the server drops it (on a loaded
    machine a starved test process misses the 3 s media timeout or a heartbeat now and then)."""

    def __init__(self, base: str, token: str, rgb: tuple[int, int, int]) -> None:
        self.base, self.token, self.rgb = base, token, rgb
        self.client: SignallingClient | None = None
        self.pc = None
        self.rings: asyncio.Queue[dict] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._up = asyncio.Event()

    async def join(self, room: str) -> Console:
        self._task = asyncio.ensure_future(self._run(room))
        await asyncio.wait_for(self._up.wait(), 60)
        return self

    async def _run(self, room: str) -> None:
        cookies = await sign_in(self.base, device_token=self.token)
        while True:
            client = self.client = SignallingClient(self.base.replace("http", "ws") + "/ws", cookies=cookies)
            try:
                await client.connect()
                await client.join(room, "")
                while True:  # publish until the socket goes
                    pc, reply = await publish(client, video=EncodedColorTrack(self.rgb, width=320, height=180, fps=10))
                    self.pc = pc
                    self._up.set()
                    while True:
                        try:
                            event = await asyncio.wait_for(client.events.get(), 1.0)
                        except TimeoutError:
                            if client.ws is None or client.ws.closed:
                                raise ConnectionError("the socket closed") from None
                            continue
                        if event.get("type") == "rollcall_ring":
                            await self.rings.put(event)
                        elif (event.get("type") == "publication_removed"
                              and event.get("publication_id") == reply["publication_id"]):
                            break
                    await pc.close()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the socket went: connect again
                pass
            finally:
                if self.pc is not None:
                    await self.pc.close()
                await client.close()
            await asyncio.sleep(0.2)

    async def answer(self, timeout: float = 20) -> None:
        ring = await asyncio.wait_for(self.rings.get(), timeout)

        async def answered() -> bool:
            try:  # the socket may be between a drop and its reconnect
                assert self.client is not None and self.client.ws is not None and not self.client.ws.closed
                await self.client.request("rollcall_answer", roll_call_id=ring["roll_call_id"], officer="值班员")
                return True
            except Exception:  # noqa: BLE001
                return False

        await wait_for(answered, timeout=timeout, interval=0.3, what="the console's answer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # Bounded: a connection torn down mid-reconnect must not hold the test up.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(self._task, return_exceptions=True), 15)


async def consoles_for(world, *rooms: tuple[str, tuple[int, int, int]]) -> list[Console]:
    """A device credential for each named room (by the world's id key) and its console."""
    directory = world.server.app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    base = f"http://127.0.0.1:{world.server.port}"
    made = []
    for key, rgb in rooms:
        token = (await directory.create_device_credential(admin, world.ids[key], "console"))["token"]
        made.append(Console(base, token, rgb))
    return made


def jpeg_rgb(data: bytes) -> tuple[tuple[int, int, int], tuple[int, int]]:
    container = av.open(io.BytesIO(data))
    frame = next(container.decode(video=0))
    image = frame.to_ndarray(format="rgb24")
    h, w = image.shape[:2]
    centre = image[h // 4: 3 * h // 4, w // 4: 3 * w // 4].reshape(-1, 3).mean(axis=0)
    return tuple(int(c) for c in np.round(centre)), (w, h)


async def look(api, rooms: list[int], viewer: str = "test") -> dict:
    status, body = await api.call("POST", "/api/wall/look", {"viewer": viewer, "rooms": rooms})
    assert status == 200, body
    return body


async def test_walls_are_capped_per_account_and_per_server(world):
    """At most 2 walls of one account look at once (a third is 429 with the reason, a wall that
    stops frees its place) and at most the server's cap in all."""
    ids = world.ids
    host, viewer, admin_b = (await world.client("hostA"), await world.client("viewerA"), await world.client("adminB"))
    thumbnails = world.server.app[THUMBNAILS]
    try:
        await look(host, [ids["roomA"]], "w1")
        await look(host, [ids["roomA1"]], "w2")
        await look(host, [ids["roomA"]], "w1")  # renewing a wall already looking is no new one
        status, body = await host.call("POST", "/api/wall/look", {"viewer": "w3", "rooms": [ids["roomA"]]})
        assert status == 429 and "您已同时打开 2 个多画面" in body["error"]["message"], body
        assert thumbnails.watched() == {ids["roomA"], ids["roomA1"]}
        await look(viewer, [ids["roomA"]], "v1")  # another account has its own
        await look(host, [], "w1")
        await look(host, [ids["roomA"]], "w3")
        thumbnails.max_viewers = 3  # (DUTYCALL_WALL_VIEWERS_MAX) w2, w3 and v1 look now
        status, body = await admin_b.call("POST", "/api/wall/look", {"viewer": "b1", "rooms": [ids["roomB1"]]})
        assert status == 429 and "服务器上同时打开的多画面已达上限（3 个）" in body["error"]["message"], body
        assert ids["roomB1"] not in thumbnails.watched()
        await look(viewer, [], "v1")
        await look(admin_b, [ids["roomB1"]], "b1")
    finally:
        for api in (host, viewer, admin_b):
            await api.close()


async def test_wall_thumbnails_in_scope_only(world):
    ids = world.ids
    host, viewer, admin_b = (await world.client("hostA"), await world.client("viewerA"), await world.client("adminB"))
    console = await world.client(None)
    red, blue = await consoles_for(world, ("roomA1", RED), ("roomB1", BLUE))
    await red.join(f"standby-{ids['roomA1']}")
    await blue.join(f"standby-{ids['roomB1']}")
    thumbnails = world.server.app[THUMBNAILS]
    try:
        # hostA's scope is district A: B1's room is dropped from the look, silently.
        body = await look(host, [ids["roomA"], ids["roomA1"], ids["roomB1"]])
        assert [r["duty_room_id"] for r in body["rooms"]] == [ids["roomA"], ids["roomA1"]]
        assert thumbnails.watched() == {ids["roomA"], ids["roomA1"]}

        async def fresh():
            rooms = {r["duty_room_id"]: r for r in (await look(host, [ids["roomA"], ids["roomA1"]]))["rooms"]}
            return rooms[ids["roomA1"]]["taken_at"] is not None and rooms

        rooms = await wait_for(fresh, timeout=30, interval=0.3, what="a thumbnail of room A1")
        assert rooms[ids["roomA"]]["problems"] == ["offline"] and rooms[ids["roomA"]]["taken_at"] is None
        status, data = await host.call("GET", f"/api/wall/{ids['roomA1']}/thumb.jpg")
        assert status == 200
        rgb, size = jpeg_rgb(data)
        assert close_colour(rgb, RED, 40) and size == (320, 180)
        resp = await host.client.get(f"/api/wall/{ids['roomA1']}/thumb.jpg")
        assert resp.headers["Cache-Control"] == "no-store" and float(resp.headers["X-Taken-At"]) > 0
        # As the page asks: saying which pictures it has, the answer carries only newer ones.
        status, body = await host.call("POST", "/api/wall/look", {"viewer": "test", "rooms": [ids["roomA1"]], "has": {}})
        assert status == 200, body
        carried = body["rooms"][0]
        assert close_colour(jpeg_rgb(base64.b64decode(carried["jpeg"]))[0], RED, 40)
        status, body = await host.call("POST", "/api/wall/look", {
            "viewer": "test", "rooms": [ids["roomA1"]], "has": {str(ids["roomA1"]): carried["taken_at"]}})
        assert status == 200 and (body["rooms"][0]["taken_at"] != carried["taken_at"]) == ("jpeg" in body["rooms"][0])
        status, body = await host.call("POST", "/api/wall/look", {"viewer": "test", "rooms": [ids["roomA1"]],
                                                                   "has": {str(ids["roomA1"]): "yesterday"}})
        assert status == 422, body
        # Pictures stay fresh: each at most ~4 s old while the wall looks.
        await asyncio.sleep(4.5)
        body = await look(host, [ids["roomA1"]])
        assert body["now"] - body["rooms"][0]["taken_at"] <= 5.0
        # Out of scope (another district's room, for a host and a viewer; any room for a console): 404.
        for api in (host, viewer):
            status, _ = await api.call("GET", f"/api/wall/{ids['roomB1']}/thumb.jpg")
            assert status == 404
        status, _ = await viewer.call("GET", f"/api/wall/{ids['roomA1']}/thumb.jpg")
        assert status == 200  # a viewer in scope sees pictures (and has no call button)
        # B's administrator looks at B1: its picture comes, for B only.
        await wait_for(lambda: look(admin_b, [ids["roomB1"]], "b"), what="B looks")

        async def blue_thumb():
            status, data = await admin_b.call("GET", f"/api/wall/{ids['roomB1']}/thumb.jpg")
            return status == 200 and close_colour(jpeg_rgb(data)[0], BLUE, 40)

        await wait_for(blue_thumb, timeout=15, interval=0.3, what="B1's thumbnail for B")
        # A console: neither looks nor sees.
        resp = await console.client.post("/api/device-session", json={"token": red.token})
        console.csrf = (await resp.json())["csrf_token"]
        status, _ = await console.call("POST", "/api/wall/look", {"viewer": "c", "rooms": [ids["roomA1"]]})
        assert status == 403
        status, _ = await console.call("GET", f"/api/wall/{ids['roomA1']}/thumb.jpg")
        assert status == 404
        # Nobody looks any more: nothing is tapped.
        await look(host, [])
        assert thumbnails.watched() == {ids["roomB1"]}
        await look(admin_b, [], "b")
        assert thumbnails.watched() == set()
        taps = thumbnails.taps
        await asyncio.sleep(1.0)
        assert thumbnails.taps == taps
    finally:
        for api in (host, viewer, admin_b, console):
            await api.close()
        await red.close()
        await blue.close()


# -- the page, in Chromium ---------------------------------------------------------------------------


@pytest.fixture
async def chromium(tmp_path):
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "host", write_y4m(tmp_path / "green.y4m", GREEN))
        yield browser
        await browser.close()


async def open_page(browser, base: str, path: str, username: str, lang: str):
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda msg: print(f"[{username}] {msg.type}: {msg.text}") if msg.type == "error" else None)
    await page.goto(f"{base}{path}{'&' if '?' in path else '?'}lang={lang}")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_selector("#command:not([hidden])", timeout=20000)
    return page


async def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"command-{name}.png"), full_page=True)


async def tile_ages(page) -> dict[str, int | None]:
    """Each wall tile's picture age in seconds (None: no picture yet), by duty room id."""
    return await page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.wall-tile')].map(
        (t) => [t.dataset.roomId, t.dataset.age === undefined || !t.querySelector('img').naturalWidth
                ? null : Number(t.dataset.age)]))""")


async def tile_status(page, room_id: int) -> str | None:
    return await page.get_attribute(f'.wall-tile[data-room-id="{room_id}"]', "data-status")


async def floor_label(page) -> str | None:
    locator = page.locator("#stage .tile[data-floor-tile] .name")
    return await locator.text_content() if await locator.count() else None


async def call_room(world, page, host_api, rid: int, room_id: int) -> None:
    """Click the room's tile and wait until the seat calls it (its tile: speaking).

    The call's precondition is the console in the roll-call with its publication: a test console
    starved on a loaded 2-core machine is dropped and reconnects now and then, and a call in that
    gap is rightly recorded as offline (the board says so). Then, and only then, the host calls
    again once the console is back, as a duty officer would.
    """
    coordinator = world.server.app[COORDINATOR]

    async def attempts_and_status() -> tuple[int, str]:
        status, board = await host_api.call("GET", f"/api/rollcalls/{rid}")
        assert status == 200, board
        room = next(r for r in board["rooms"] if r["duty_room_id"] == room_id)
        return room["attempts"], room["status"]

    for _ in range(3):
        await wait_for(lambda: coordinator.is_connected(rid, room_id), timeout=60, what="the console in the roll-call")
        before, _ = await attempts_and_status()
        await page.click(f'.wall-tile[data-room-id="{room_id}"]')

        async def outcome(before: int = before):
            if await tile_status(page, room_id) == "speaking":
                return "speaking"
            attempts, status = await attempts_and_status()
            return "offline" if attempts > before and status == "offline" else None

        if await wait_for(outcome, timeout=30, interval=0.3, what=f"the call of room {room_id}") == "speaking":
            return
    raise AssertionError(f"room {room_id} was offline at each of 3 calls; "
                         f"error shown: {await page.locator('#error').text_content()!r}")


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_seat_shows_the_called_room_and_the_wall_calls(world, chromium, lang):
    ids = world.ids
    a, a1 = await consoles_for(world, ("roomA", RED), ("roomA1", BLUE))
    host_api = await world.client("hostA")
    status, created = await host_api.call("POST", "/api/rollcalls", {
        "title": "周三点名", "room_ids": [ids["roomA"], ids["roomA1"]], "answer_window": 8, "late_after": 4})
    assert status == 201, created
    rid = created["id"]
    await a.join(f"rollcall-{rid}")
    await a1.join(f"rollcall-{rid}")
    base = f"http://127.0.0.1:{world.server.port}"
    page = viewer = None
    try:
        page = await open_page(chromium, base, f"/command?rollcall={rid}", "hostA", lang)
        await page.wait_for_selector("#start:not([hidden])", timeout=20000)
        await page.click("#start")
        # The wall: both rooms, each with a picture at most 5 s old.
        await page.wait_for_selector(".wall-tile[data-callable]", timeout=20000)

        async def pictures():
            ages = await tile_ages(page)
            return len(ages) == 2 and all(age is not None and age <= 5 for age in ages.values()) and ages

        await wait_for(pictures, timeout=20, interval=0.3, what="both tiles with fresh pictures")
        # Clicking A1's tile calls it: the seat shows A1's own picture, its name and the countdown.
        await call_room(world, page, host_api, rid, ids["roomA1"])
        assert await page.locator("#called-name").text_content() == "园岭街道值班室"
        left = int(await page.get_attribute("#countdown", "data-left"))
        assert 0 < left <= 8

        async def floor_blue():
            rgb = await page.evaluate(VIDEO_RGB_JS, "#stage .tile[data-floor-tile] video")
            return rgb is not None and close_colour(tuple(rgb[:3]), BLUE, 40)

        await wait_for(floor_blue, timeout=20, interval=0.2, what="the called room's picture on the seat")
        frames = await page.evaluate("() => document.querySelector('#stage .tile[data-floor-tile] video')"
                                     ".getVideoPlaybackQuality().totalVideoFrames")
        assert frames > 0
        assert await page.locator("#stage .tile[data-local] video").count() == 1  # our own camera, small
        assert await tile_status(page, ids["roomA1"]) == "speaking"
        await shot(page, f"seat-{lang}")
        # Mute and unmute the host's microphone.
        await page.click("#mute")
        assert await page.get_attribute("#mute", "data-muted") == "1"
        await page.click("#mute")
        assert await page.get_attribute("#mute", "data-muted") == "0"
        # A1 answers: its tile says so.
        await a1.answer()
        await wait_for(lambda: _is(tile_status(page, ids["roomA1"]), "on_time"), what="A1 answered on the wall")
        # Between calls the seat still shows A1's picture (the floor keeps it): named, with its outcome.
        answered = "园岭街道值班室 · " + ("按时应答" if lang == "zh-CN" else "On time")
        await wait_for(lambda: _is(floor_label(page), answered), what="the answered room named on the seat")
        assert await page.get_attribute("#stage .tile[data-floor-tile]", "data-floor-room-id") == str(ids["roomA1"])
        assert await page.locator("#stage .tile[data-floor-tile] video").is_visible()
        # A is called and does not answer: absent when its window ends.
        await call_room(world, page, host_api, rid, ids["roomA"])
        await wait_for(lambda: _is(tile_status(page, ids["roomA"]), "absent"), timeout=20, what="A absent")
        await shot(page, f"wall-statuses-{lang}")
        # A viewer in scope follows the same seat and wall, with no button to call.
        viewer = await open_page(chromium, base, f"/command?rollcall={rid}", "viewerA", lang)
        await viewer.wait_for_selector(".wall-tile", timeout=20000)
        await wait_for(lambda: _is(tile_status(viewer, ids["roomA"]), "absent"), what="the viewer's wall")
        # An absence empties the floor: no room named, and no frozen last frame shown as if live
        # (the viewer, who came in after, is told so by the join's snapshot).
        for p in (page, viewer):
            # (The tile is named "—" from the start: wait for the seat to have said who has the floor.)
            await wait_for(lambda p=p: _is(p.get_attribute("#stage .tile[data-floor-tile]", "data-floor-room-id"), ""),
                           what="an empty floor on the seat")
            assert await floor_label(p) == "—"
            assert not await p.locator("#stage .tile[data-floor-tile] video").is_visible()
        assert await viewer.locator(".wall-tile[data-callable]").count() == 0
        assert await viewer.locator("#next").is_hidden() and await viewer.locator("#start").is_hidden()
    finally:
        for p in (page, viewer):
            if p is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(p.close(), 15)
        await host_api.close()
        await a.close()
        await a1.close()


async def _is(value, expected) -> bool:
    return (await value) == expected


async def test_scope_wall_spot_checks_a_room(world, chromium):
    ids = world.ids
    (a1,) = await consoles_for(world, ("roomA1", RED))
    await a1.join(f"standby-{ids['roomA1']}")
    base = f"http://127.0.0.1:{world.server.port}"
    page = await open_page(chromium, base, "/command", "hostA", "en")
    try:
        # District A's rooms only (A and A1), never district B's.
        await page.wait_for_selector(".wall-tile", timeout=20000)
        shown = sorted(int(i) for i in await page.eval_on_selector_all(".wall-tile", "ts => ts.map(t => t.dataset.roomId)"))
        assert shown == sorted([ids["roomA"], ids["roomA1"]])
        await wait_for(lambda: _is(tile_status(page, ids["roomA"]), "offline"), what="A offline")

        async def a1_picture():
            age = (await tile_ages(page)).get(str(ids["roomA1"]))
            return age is not None and age <= 5

        await wait_for(a1_picture, timeout=20, interval=0.3, what="A1's picture on the wall")
        assert await tile_status(page, ids["roomA1"]) == "ready"
        # The picture came in the look's answer, not a request of its own.
        src = await page.get_attribute(f'.wall-tile[data-room-id="{ids["roomA1"]}"] img', "src")
        assert src.startswith("data:image/jpeg;base64,"), src[:60]
        assert await page.evaluate("performance.getEntriesByType('resource').filter("
                                   "(e) => e.name.includes('/thumb.jpg')).length") == 0
        assert "s ago" in await page.locator(f'.wall-tile[data-room-id="{ids["roomA1"]}"] .age').text_content()
        await page.click(f'.wall-tile[data-room-id="{ids["roomA1"]}"]')

        async def seat_red():
            rgb = await page.evaluate(VIDEO_RGB_JS, "#stage .tile:not([data-local]) video")
            return rgb is not None and close_colour(tuple(rgb[:3]), RED, 40)

        await wait_for(seat_red, timeout=20, interval=0.2, what="the spot-checked room's picture on the seat")
        await shot(page, "scope-spot-check-en")
        await page.click("#leave-spot")
        async def left() -> bool:
            return await page.locator("#stage .tile:not([data-local])").count() == 0

        await wait_for(left, timeout=20, what="the spot-checked room's tile gone after leaving")
    finally:
        await page.close()
        await a1.close()
