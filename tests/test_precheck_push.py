"""The pre-check before a roll-call is created, pushed over the signalling socket
(``rollcall_precheck_watch``): the answer, then each room whose readiness changes (a console
joining and publishing, then leaving); the same scope checks as ``POST /api/rollcalls/precheck``.
A followed board's 在线 follows a camera that stops delivering while its publication stays.
"""

from __future__ import annotations

import asyncio

import pytest
from aiortc.mediastreams import AudioStreamTrack

from dutycall.client import SignallingClient, SignallingError, publish, sign_in
from dutycall.synthetic import PreEncodedTrack
from dutycall.web.auth import DIRECTORY
from dutycall.web.rollcalls import COORDINATOR

from .conftest import ADMIN_PASSWORD
from .utils import wait_for

PASSWORD = "password-1"


@pytest.fixture
async def setup(server):
    directory = server.app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    units, rooms = {}, {}
    for code, name, parent in (("D1", "东湖区", admin.unit_id), ("D2", "西山区", admin.unit_id)):
        units[code] = (await directory.create_unit(admin, {"code": code, "name": name, "kind": "district",
                                                           "parent_id": parent}))["id"]
        rooms[code] = (await directory.create_room(admin, {"unit_id": units[code], "name": f"{name}值班室"}))["id"]
    for username, unit in (("east", "D1"), ("west", "D2")):
        await directory.create_account(admin, {"username": username, "display_name": username, "role": "host",
                                               "password": PASSWORD, "unit_id": units[unit]})
    token = (await directory.create_device_credential(admin, rooms["D1"]))["token"]
    return server, rooms, token


async def test_the_precheck_is_pushed_as_consoles_come_and_go(setup):
    server, rooms, token = setup
    base = f"http://127.0.0.1:{server.port}"
    ws = base.replace("http", "ws") + "/ws"
    east = await SignallingClient(ws, cookies=await sign_in(base, "east", PASSWORD)).connect()
    west = await SignallingClient(ws, cookies=await sign_in(base, "west", PASSWORD)).connect()
    console = pc = None
    try:
        reply = await east.request("rollcall_precheck_watch", room_ids=[rooms["D1"]])
        assert reply["type"] == "rollcall_precheck_watching"
        assert [(r["duty_room_id"], r["ready"], r["problems"]) for r in reply["rooms"]] == [
            (rooms["D1"], False, ["offline"])]
        assert reply["rooms"][0]["name"] == "东湖区值班室"
        # Out of scope: refused as the HTTP pre-check refuses it, and nothing is watched.
        with pytest.raises(SignallingError) as refused:
            await west.request("rollcall_precheck_watch", room_ids=[rooms["D1"]])
        assert refused.value.code == "not_found"
        assert server.app[COORDINATOR].readiness_watchers.watching() == 1

        console = await SignallingClient(ws, cookies=await sign_in(base, device_token=token)).connect()
        await console.join(f"standby-{rooms['D1']}", "")
        joined = await east.wait_event("rollcall_precheck", timeout=20)
        assert joined["rooms"] == [{"duty_room_id": rooms["D1"], "ready": False, "problems": ["no_video", "no_audio"]}]
        packets = await asyncio.to_thread(PreEncodedTrack.encode, width=160, height=120, fps=10, bitrate=100_000,
                                          seconds=1.0)
        pc, _ = await publish(console, video=PreEncodedTrack(packets, fps=10), audio=AudioStreamTrack())
        live = await east.wait_event("rollcall_precheck", timeout=20)
        while live["rooms"][0]["problems"]:  # video and audio may start a moment apart
            live = await east.wait_event("rollcall_precheck", timeout=20)
        assert live["rooms"] == [{"duty_room_id": rooms["D1"], "ready": True, "problems": []}]

        await pc.close()
        await console.close()
        pc = console = None
        gone = await east.wait_event("rollcall_precheck", timeout=5)
        while "offline" not in gone["rooms"][0]["problems"]:
            gone = await east.wait_event("rollcall_precheck", timeout=5)
        assert gone["rooms"] == [{"duty_room_id": rooms["D1"], "ready": False, "problems": ["offline"]}]

        # Another watch replaces it; the socket closing ends it.
        await east.request("rollcall_precheck_watch", room_ids=[])
        assert server.app[COORDINATOR].readiness_watchers.watching() == 1
        await east.close()
        east = None
        await wait_for(lambda: server.app[COORDINATOR].readiness_watchers.watching() == 0, timeout=20,
                       what="the watch ended with its socket")
    finally:
        if pc is not None:
            await pc.close()
        for client in (console, east, west):
            if client is not None:
                await client.close()


class PausableVideo(PreEncodedTrack):
    """Pre-encoded video that stops delivering (the publication stays) while ``paused`` is set."""

    def __init__(self, packets: list[bytes], fps: int) -> None:
        super().__init__(packets, fps=fps)
        self.running = asyncio.Event()
        self.running.set()

    async def recv(self):
        await self.running.wait()
        return await super().recv()


async def test_a_followed_board_shows_a_camera_that_stops_without_unpublishing(setup):
    server, rooms, token = setup
    base = f"http://127.0.0.1:{server.port}"
    ws = base.replace("http", "ws") + "/ws"
    host_cookies = await sign_in(base, "east", PASSWORD)
    _, east = await server.app[DIRECTORY].sign_in("east", PASSWORD)
    created = await server.app[COORDINATOR].create(east, {"title": "夜间点名", "room_ids": [rooms["D1"]]})
    host = await SignallingClient(ws, cookies=host_cookies).connect()
    console = pc = None
    try:
        console = await SignallingClient(ws, cookies=await sign_in(base, device_token=token)).connect()
        await console.join(f"standby-{rooms['D1']}", "")
        packets = await asyncio.to_thread(PreEncodedTrack.encode, width=160, height=120, fps=10, bitrate=100_000,
                                          seconds=1.0)
        video = PausableVideo(packets, fps=10)
        pc, _ = await publish(console, video=video, audio=AudioStreamTrack())
        following = await host.request("rollcall_follow", roll_call_id=created["id"])

        async def problems_shown(expected: list[str], board: dict | None = None) -> None:
            while board is None or board["rooms"][0]["problems"] != expected:
                board = (await host.wait_event("rollcall_board", timeout=20, roll_call_id=created["id"]))["board"]

        await problems_shown([], following["board"])
        # The camera stops; its publication (and the microphone) stay: the board says so, pushed.
        video.running.clear()
        await problems_shown(["no_video"])
        video.running.set()
        await problems_shown([])
    finally:
        if pc is not None:
            await pc.close()
        for client in (console, host):
            if client is not None:
                await client.close()
