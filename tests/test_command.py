"""The command seat (/command) and the wall's thumbnails (media/wall.py, web/wall.py).

Consoles are in-process aiortc clients publishing a solid colour (cheap); the host's page is a
real headless Chromium with a fake camera. Screenshots go to DUTYCALL_SCREENSHOTS (default
/tmp) as command-*.png.
"""

from __future__ import annotations

import asyncio
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
from dutycall.web.wall import THUMBNAILS

from .browser import VIDEO_RGB_JS, launch, write_y4m
from .conftest import ADMIN_PASSWORD, PASSWORD
from .utils import close_colour, wait_for

SHOTS = pathlib.Path(os.environ.get("DUTYCALL_SCREENSHOTS", "/tmp"))
RED = (220, 40, 40)
BLUE = (40, 60, 220)
GREEN = (40, 200, 60)


class Console:
    """A duty room's console: signed in with its device credential, publishing a colour."""

    def __init__(self, base: str, token: str, rgb: tuple[int, int, int]) -> None:
        self.base, self.token, self.rgb = base, token, rgb
        self.client: SignallingClient | None = None
        self.pc = None

    async def join(self, room: str) -> Console:
        cookies = await sign_in(self.base, device_token=self.token)
        self.client = await SignallingClient(self.base.replace("http", "ws") + "/ws", cookies=cookies).connect()
        await self.client.join(room, "")
        # On a loaded machine a DTLS handshake can time out: publish again then, as a console does.
        for _ in range(3):
            self.pc, _ = await publish(self.client, video=EncodedColorTrack(self.rgb, width=320, height=180, fps=10))
            pc = self.pc
            await wait_for(lambda: pc.connectionState in ("connected", "failed", "closed"), timeout=30,
                           what="the console's publication connected")
            if pc.connectionState == "connected":
                return self
            await pc.close()
        raise AssertionError("the console could not publish")

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        if self.client is not None:
            await self.client.close()


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


async def test_wall_thumbnails_in_scope_only(world):
    ids = world.ids
    red, blue = await consoles_for(world, ("roomA1", RED), ("roomB1", BLUE))
    await red.join(f"standby-{ids['roomA1']}")
    await blue.join(f"standby-{ids['roomB1']}")
    host, viewer, admin_b = (await world.client("hostA"), await world.client("viewerA"), await world.client("adminB"))
    console = await world.client(None)
    thumbnails = world.server.app[THUMBNAILS]
    try:
        # hostA's scope is district A: B1's room is dropped from the look, silently.
        body = await look(host, [ids["roomA"], ids["roomA1"], ids["roomB1"]])
        assert [r["duty_room_id"] for r in body["rooms"]] == [ids["roomA"], ids["roomA1"]]
        assert thumbnails.watched() == {ids["roomA"], ids["roomA1"]}

        async def fresh():
            rooms = {r["duty_room_id"]: r for r in (await look(host, [ids["roomA"], ids["roomA1"]]))["rooms"]}
            return rooms[ids["roomA1"]]["taken_at"] is not None and rooms

        rooms = await wait_for(fresh, timeout=15, interval=0.3, what="a thumbnail of room A1")
        assert rooms[ids["roomA"]]["problems"] == ["offline"] and rooms[ids["roomA"]]["taken_at"] is None
        status, data = await host.call("GET", f"/api/wall/{ids['roomA1']}/thumb.jpg")
        assert status == 200
        rgb, size = jpeg_rgb(data)
        assert close_colour(rgb, RED, 40) and size == (320, 180)
        resp = await host.client.get(f"/api/wall/{ids['roomA1']}/thumb.jpg")
        assert resp.headers["Cache-Control"] == "no-store" and float(resp.headers["X-Taken-At"]) > 0
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
