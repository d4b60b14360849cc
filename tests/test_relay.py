"""Live relay of incident footage (media/relay.py, web/footage_views.py): a host relays a WHIP
source to a chosen duty room; only that console is told (``footage_relay``) and may watch it
(frames arrive); another console is told nothing and is refused; stopping closes the watch; the
start, stop and who watched are on the timeline and in the footage access record. A Chromium
console shows the relayed feed in a panel with the incident's title and level."""

from __future__ import annotations

import asyncio
import pathlib
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiortc import RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from playwright.async_api import async_playwright

from dutycall.client import SignallingClient, SignallingError, new_peer_connection, sign_in
from dutycall.conference import aiortc_compat
from dutycall.media.naming import footage_room
from dutycall.rollcall.naming import standby_room
from dutycall.synthetic import PreEncodedTrack
from dutycall.web import create_app
from dutycall.web.footage import INGEST
from dutycall.web.footage_views import RELAYS
from dutycall.web.keys import DIRECTORY, INCIDENTS

from .browser import launch
from .conftest import ADMIN_PASSWORD, make_config
from .test_recording import incident_report
from .test_whip import Api, issue, whip_post
from .utils import wait_for

SCREENSHOT = pathlib.Path("/tmp/relay-console.png")


@dataclass
class City:
    app: Any
    base: str
    ids: dict[str, int]
    rooms: dict[str, int]
    tokens: dict[str, str]
    accounts: dict[str, int]
    incident_id: int
    host: Api

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://") + "/ws"

    async def console(self, code: str) -> SignallingClient:
        cookies = await sign_in(self.base, device_token=self.tokens[code])
        client = await SignallingClient(self.ws, cookies=cookies).connect()
        await client.join(standby_room(self.rooms[code]), "console")
        return client


@pytest.fixture
async def city(aiohttp_server, tmp_path):
    """City → D1, city → D2, a duty room and console each; a host in D1, leaders in the city and in
    D2; an incident of D1 with a live WHIP source."""
    app = create_app(make_config(f"sqlite:///{tmp_path}/dutycall.sqlite3", recordings_dir=str(tmp_path / "rec"),
                                 recording_min_free_bytes=0, incident_interval=3600))
    server = await aiohttp_server(app, host="127.0.0.1")
    base = f"http://127.0.0.1:{server.port}"
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    ids = {"city": admin.unit_id}
    for code, name in (("D1", "东湖区"), ("D2", "西山区")):
        ids[code] = (await directory.create_unit(admin, {"code": code, "name": name, "parent_id": ids["city"],
                                                         "kind": "district"}))["id"]
    rooms, tokens = {}, {}
    for code in ("city", "D1", "D2"):
        rooms[code] = (await directory.create_room(admin, {"unit_id": ids[code], "name": f"{code}值班室"}))["id"]
        tokens[code] = (await directory.create_device_credential(admin, rooms[code], "console"))["token"]
    accounts = {}
    for username, role, unit in (("hostD1", "host", "D1"), ("leader", "leader", "city"),
                                 ("leaderD2", "leader", "D2"), ("hostD2", "host", "D2")):
        accounts[username] = (await directory.create_account(admin, {
            "username": username, "display_name": f"{username}名", "role": role, "password": "password-1",
            "unit_id": ids[unit]}))["id"]
    _, host_d1 = await directory.sign_in("hostD1", "password-1")
    incident = await app[INCIDENTS].create(host_d1, incident_report("化工厂火灾"))
    host = await Api(base).sign_in("hostD1", "password-1")
    yield City(app, base, ids, rooms, tokens, accounts, incident["id"], host)
    await host.close()


def clip_publisher(clip: list[bytes]) -> Any:
    """An aiortc WHIP publisher (as test_whip's) of a clip encoded beforehand, off the event loop."""
    pc = new_peer_connection()
    video = PreEncodedTrack(clip)
    transceiver = pc.addTransceiver(video, direction="sendonly")
    aiortc_compat.on_keyframe_request(transceiver.sender, video.request_keyframe)
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    return pc


async def start_source(city: City, label: str = "无人机 1", clip: list[bytes] | None = None) -> tuple[Any, int]:
    token = (await issue(city.host, city.incident_id, label=label))["token"]
    if clip is None:
        clip = await asyncio.to_thread(PreEncodedTrack.encode, "vp8", 640, 360, 30, 700_000, 2.0)
    pc = clip_publisher(clip)
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        resp = await whip_post(http, city.base, token, pc.localDescription.sdp)
        assert resp.status == 201, await resp.text()
        location = resp.headers["Location"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
    ingest = city.app[INGEST]
    session = ingest.sessions[location.rsplit("/", 1)[-1]]
    await wait_for(lambda: session.publication.is_live("video"), what="the source live")
    return pc, session.source_id


async def watch(client: SignallingClient, relay_id: int) -> tuple[Any, Any]:
    pc = new_peer_connection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        reply = await client.request("relay_watch", relay_id=relay_id, sdp=pc.localDescription.sdp)
    except Exception:
        await pc.close()
        raise
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
    track = next(t.receiver.track for t in pc.getTransceivers() if t.receiver.track)
    return pc, track


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events if e["kind"].startswith("relay_")]


async def test_a_relay_reaches_the_chosen_console_only_and_its_watch_is_recorded(city):
    source_pc, source_id = await start_source(city)
    chosen, other = await city.console("D1"), await city.console("D2")
    watcher_pc = None
    try:
        # Out of scope: a leader of another district, another district's host.
        status, body = await city.host.call("POST", f"/api/incidents/{city.incident_id}/relays", {
            "source_id": source_id, "accounts": [city.accounts["leaderD2"]]})
        assert status == 404, body
        host_d2 = await Api(city.base).sign_in("hostD2", "password-1")
        status, _ = await host_d2.call("POST", f"/api/incidents/{city.incident_id}/relays", {
            "source_id": source_id, "rooms": [city.rooms["D2"]]})
        assert status == 404
        for bad in ({"source_id": source_id}, {"source_id": "x", "rooms": [1]},
                    {"source_id": source_id, "rooms": [True]}):
            assert (await city.host.call("POST", f"/api/incidents/{city.incident_id}/relays", bad))[0] == 422

        status, relay = await city.host.call("POST", f"/api/incidents/{city.incident_id}/relays", {
            "source_id": source_id, "rooms": [city.rooms["D1"]], "accounts": [city.accounts["leader"]]})
        assert status == 201, relay
        assert relay["reached"] == 1 and [r["name"] for r in relay["rooms"]] == ["D1值班室"]
        event = await chosen.wait_event("footage_relay")
        assert (event["relay_id"], event["title"], event["level"], event["source_label"]) == (
            relay["id"], "化工厂火灾", "III", "无人机 1")
        # The other console: nothing (a ping answered after the push proves it would have arrived).
        await other.request("ping")
        assert all(e.get("type") != "footage_relay" for e in list(other.events._queue))  # type: ignore[attr-defined]

        # The chosen console watches and frames arrive.
        watcher_pc, track = await watch(chosen, relay["id"])
        frame = await asyncio.wait_for(track.recv(), 20)
        assert frame.width == 640
        # The other is refused: the relay and the footage room alike.
        with pytest.raises(SignallingError) as refused:
            await watch(other, relay["id"])
        assert refused.value.reply["code"] == "not_found"
        other_room = await SignallingClient(city.ws, cookies=await sign_in(
            city.base, device_token=city.tokens["D2"])).connect()
        with pytest.raises(SignallingError):
            await other_room.join(footage_room(city.incident_id), "x")
        await other_room.close()
        # What each console is told when it connects.
        for code, expected in (("D1", [relay["id"]]), ("D2", [])):
            async with aiohttp.ClientSession(cookies=await sign_in(city.base, device_token=city.tokens[code])) as s:
                resp = await s.get(f"{city.base}/api/relays")
                assert resp.status == 200 and [r["relay_id"] for r in await resp.json()] == expected
        await wait_for(lambda: city.app[RELAYS].live[relay["id"]].watches, what="the watch registered")

        # Stop: the console is told, its watch ends.
        status, stopped = await city.host.call("DELETE", f"/api/relays/{relay['id']}")
        assert status == 200 and stopped["end_reason"] == "stopped" and stopped["live"] is False
        await chosen.wait_event("footage_relay_ended", relay_id=relay["id"])
        with pytest.raises(SignallingError):
            await watch(chosen, relay["id"])
        assert (await host_d2.call("DELETE", f"/api/relays/{relay['id']}"))[0] == 404
        await host_d2.close()

        status, detail = await city.host.call("GET", f"/api/incidents/{city.incident_id}")
        assert kinds(detail["timeline"]) == ["relay_started", "relay_watch_joined", "relay_watch_left",
                                            "relay_stopped"]
        joined = next(e for e in detail["timeline"] if e["kind"] == "relay_watch_joined")
        assert joined["actor"] == "D1值班室"
        status, access = await city.host.call("GET", f"/api/incidents/{city.incident_id}/footage-access")
        assert status == 200
        assert sorted((a["action"], a["who"]) for a in access) == [("relayed", "hostD1名"),
                                                                   ("watched_live", "D1值班室")]
        assert all(a["client_address"] == "127.0.0.1" for a in access)
        leader = await Api(city.base).sign_in("leaderD2", "password-1")
        assert (await leader.call("GET", f"/api/incidents/{city.incident_id}/footage-access"))[0] == 403
        assert (await leader.call("GET", f"/api/incidents/{city.incident_id}/relays"))[0] == 404
        await leader.close()
    finally:
        if watcher_pc is not None:
            await watcher_pc.close()
        await chosen.close()
        await other.close()
        await source_pc.close()


async def test_a_relay_ends_when_its_source_ends(city):
    source_pc, source_id = await start_source(city)
    chosen = await city.console("D1")
    try:
        status, relay = await city.host.call("POST", f"/api/incidents/{city.incident_id}/relays", {
            "source_id": source_id, "rooms": [city.rooms["D1"]]})
        assert status == 201
        await chosen.wait_event("footage_relay")
        watcher_pc, _ = await watch(chosen, relay["id"])
        session = next(iter(city.app[INGEST].sessions.values()))
        await city.app[INGEST]._end(session, "deleted")
        await chosen.wait_event("footage_relay_ended", relay_id=relay["id"], reason="source_ended")
        await watcher_pc.close()
        status, listed = await city.host.call("GET", f"/api/incidents/{city.incident_id}/relays")
        assert [r["end_reason"] for r in listed] == ["source_ended"]
        # A source that is not live cannot be relayed.
        status, _ = await city.host.call("POST", f"/api/incidents/{city.incident_id}/relays", {
            "source_id": source_id, "rooms": [city.rooms["D1"]]})
        assert status == 422
    finally:
        await chosen.close()
        await source_pc.close()


async def test_a_console_in_chromium_shows_the_relayed_feed_with_title_and_level(city, tmp_path):
    source_pc, source_id = await start_source(city)
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "chromium")
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{city.base}/?device={city.tokens['D1']}")
            await wait_for(lambda: page.evaluate("() => !!(window.dutyConsole && dutyConsole.signalling.ws)"),
                           timeout=30, what="the console's socket")
            await wait_for(lambda: city.app[INCIDENTS] and any(
                p.tag == f"duty_room:{city.rooms['D1']}" for r in city.app[INGEST].conference.rooms.values()
                for p in r.participants.values()), timeout=30, what="the console in its standby room")
            status, relay = await city.host.call("POST", f"/api/incidents/{city.incident_id}/relays", {
                "source_id": source_id, "rooms": [city.rooms["D1"]]})
            assert status == 201 and relay["reached"] == 1
            panel = page.locator(".relay-panel")
            await panel.wait_for(timeout=30000)
            text = await panel.inner_text()
            assert "化工厂火灾" in text and "III" in text and "无人机 1" in text
            await wait_for(lambda: page.evaluate(
                "() => { const v = document.querySelector('.relay-panel video');"
                " return !!v && v.videoWidth > 0 && v.currentTime > 0.5; }"), timeout=30, what="video playing")
            await page.screenshot(path=str(SCREENSHOT))
            status, _ = await city.host.call("DELETE", f"/api/relays/{relay['id']}")
            assert status == 200
            await panel.wait_for(state="detached", timeout=30000)
            assert errors == []
        finally:
            await browser.close()
            await source_pc.close()


async def test_several_relays_at_once_reach_a_console_and_a_leader(city):
    """Two sources relayed at once: the console watches both (two panels' worth); the second also
    goes to a leader's account, whose socket gets it wherever it is."""
    clip = await asyncio.to_thread(PreEncodedTrack.encode, "vp8", 640, 360, 30, 700_000, 2.0)
    first_pc, first = await start_source(city, clip=clip)
    second_pc, second = await start_source(city, "执法记录仪", clip)
    console = await city.console("D1")
    leader = await SignallingClient(city.ws, cookies=await sign_in(city.base, "leader", "password-1")).connect()
    await leader.join("leaders-meeting", "leader")
    watchers = []
    try:
        relays = []
        for source_id, body in ((first, {"rooms": [city.rooms["D1"]]}),
                                (second, {"rooms": [city.rooms["D1"]], "accounts": [city.accounts["leader"]]})):
            status, relay = await city.host.call("POST", f"/api/incidents/{city.incident_id}/relays",
                                                 {"source_id": source_id, **body})
            assert status == 201, relay
            relays.append(relay)
        for relay in relays:
            await console.wait_event("footage_relay", relay_id=relay["id"])
        told = await leader.wait_event("footage_relay")
        assert told["relay_id"] == relays[1]["id"] and told["source_label"] == "执法记录仪"
        with pytest.raises(SignallingError):  # the leader was not sent the first
            await watch(leader, relays[0]["id"])
        for client, relay in ((console, relays[0]), (console, relays[1]), (leader, relays[1])):
            pc, track = await watch(client, relay["id"])
            watchers.append(pc)
            frame = await asyncio.wait_for(track.recv(), 20)
            assert frame.width == 640
        assert {len(city.app[RELAYS].live[r["id"]].watches) for r in relays} == {1, 2}
        status, listed = await city.host.call("GET", f"/api/incidents/{city.incident_id}/relays")
        assert [sorted(r["watching"]) for r in listed] == [["D1值班室"], ["D1值班室", "leader名"]]
        # The console stops watching one itself; the other goes on.
        await console.request("relay_unwatch", relay_id=relays[0]["id"])
        assert not city.app[RELAYS].live[relays[0]["id"]].watches
        assert len(city.app[RELAYS].live[relays[1]["id"]].watches) == 2
        # The leader's socket closes: its watch ends with it.
        await leader.close()
        await wait_for(lambda: len(city.app[RELAYS].live[relays[1]["id"]].watches) == 1, what="the leader's watch ended")
    finally:
        for pc in watchers:
            await pc.close()
        await console.close()
        await leader.close()
        await first_pc.close()
        await second_pc.close()
