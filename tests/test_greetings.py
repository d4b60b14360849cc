"""Leadership greetings with real aiortc consoles through the real server: invitations, receipts
(a room joining late, one leaving early and coming back, one never joining), the reply floor
passing to a room and returning (also from the leader's page in Chromium), scope, bad input; the
receipt report as CSV, XLSX and PDF; pre-recorded greetings (a video made here with PyAV) decoded
at consoles, late joiners from the start or live, only a ready video in scope."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import fractions
import io
import math
import os
import pathlib
import time

import aiohttp
import av
import numpy as np
import pytest
from aiortc import AudioStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select

from dutycall.client import SignallingClient, SignallingError, publish, sign_in, subscribe
from dutycall.directory.models import Unit
from dutycall.greetings.models import Greeting, GreetingReceipt
from dutycall.media import playout as playout_module
from dutycall.media.models import GreetingMedia
from dutycall.synthetic import EncodedColorTrack
from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.greeting_media import GREETING_MEDIA
from dutycall.web.greetings import GREETINGS

from .conftest import ADMIN_PASSWORD, PASSWORD, make_config
from .utils import FrameReader, close_colour, mean_rgb, wait_for

RED, GREEN, BLUE = (220, 40, 40), (40, 200, 40), (40, 60, 220)


def small(rgb) -> EncodedColorTrack:
    """A cheap picture: the server, the consoles and the leader share this test's one loop, and a
    starved loop misses the signalling socket's heartbeat on a busy machine."""
    return EncodedColorTrack(rgb, width=160, height=120, fps=15, bitrate=100_000)


class ManualTime:
    """The greetings' clock: moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = dt.datetime(2027, 2, 10, 2, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone (48 kHz mono, 20 ms frames): audio a listener can tell from silence."""

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0

    async def recv(self) -> AudioFrame:
        await super().recv()  # paced silence (20 ms a frame): its timing, our samples
        t = (np.arange(960) + self._samples) / 48000
        data = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        tone = AudioFrame.from_ndarray(data, format="s16", layout="mono")
        tone.sample_rate, tone.pts, tone.time_base = 48000, self._samples, fractions.Fraction(1, 48000)
        self._samples += 960
        return tone


@pytest.fixture
async def city(aiohttp_server, tmp_path):
    """city → district A (rooms 甲 乙 丙), district B (room 丁); a mayor (leader at the city),
    a host and a leader of district A, a viewer at the city."""
    app = create_app(make_config(f"sqlite:///{tmp_path}/g.sqlite3"))
    server = await aiohttp_server(app, host="127.0.0.1")
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    ids: dict[str, int] = {"city": admin.unit_id}
    tokens: dict[str, str] = {}
    for code, name in (("A", "东城区"), ("B", "西城区")):
        ids[code] = (await directory.create_unit(admin, {"code": code, "name": name, "kind": "district",
                                                         "parent_id": admin.unit_id}))["id"]
    for room, unit in (("甲", "A"), ("乙", "A"), ("丙", "A"), ("丁", "B")):
        ids[room] = (await directory.create_room(admin, {"unit_id": ids[unit], "name": f"{room}值班室"}))["id"]
        tokens[room] = (await directory.create_device_credential(admin, ids[room]))["token"]
    for username, role, unit in (("mayor", "leader", "city"), ("hostA", "host", "A"), ("leaderA", "leader", "A"),
                                 ("viewer", "viewer", "city"), ("officerA", "duty_officer", "A")):
        ids[username] = (await directory.create_account(admin, {
            "username": username, "display_name": {"mayor": "王市长"}.get(username, username), "password": PASSWORD,
            "role": role, "unit_id": ids[unit]}))["id"]
    server.ids, server.tokens = ids, tokens  # type: ignore[attr-defined]
    yield server


def base_of(server) -> str:
    return f"http://127.0.0.1:{server.port}"


async def api_session(server, username: str, password: str = PASSWORD, lang: str = "zh-CN"):
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                    headers={"X-Dutycall-Lang": lang})
    resp = await session.post(f"{base_of(server)}/api/session", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    session.headers["X-CSRF-Token"] = (await resp.json())["csrf_token"]
    return session


class Console:
    """A duty room's console on standby that follows a greeting's invitation into its room."""

    async def start(self, server, room: str, colour=(128, 128, 128)) -> Console:
        self.server, self.room_id = server, server.ids[room]
        cookies = await sign_in(base_of(server), device_token=server.tokens[room])
        self.client = await SignallingClient(base_of(server).replace("http", "ws") + "/ws", cookies=cookies).connect()
        self.colour = colour
        self.pcs: list = []
        self.readers: dict[str, FrameReader] = {}
        await self.enter(f"standby-{self.room_id}")
        return self

    async def enter(self, room: str) -> dict:
        await self.drop()
        if self.client.participant_id is not None:
            await self.client.request("leave")
        self.joined = await self.client.join(room, "")
        pc, self.publication = await publish(self.client, video=small(self.colour))
        self.pcs.append(pc)
        return self.joined

    async def watch(self) -> None:
        """In a greeting: the leader's own stream (as the server names it: at join, or when the
        leader publishes), and the floor (whoever replies)."""
        info = self.joined["room_info"]
        sources = info["sources"] or await named(self.client, info["greeting_id"], bool)
        leader = next(s for s in sources if s["source"] == "leader")
        pc, _, tracks = await subscribe(self.client, leader["publication_id"], ("video", "audio"))
        self.pcs.append(pc)
        self.readers["leader"] = FrameReader(tracks["video"])
        pc, _, tracks = await subscribe(self.client, None, ("video",))
        self.pcs.append(pc)
        self.readers["floor"] = FrameReader(tracks["video"])

    def consoles(self) -> set[str]:
        return {p["participant_id"] for p in self.joined["participants"] if p.get("duty_room_id") is not None}

    async def drop(self) -> None:
        for reader in self.readers.values():
            await reader.stop()
        self.readers.clear()
        for pc in self.pcs:
            await pc.close()
        self.pcs.clear()

    async def close(self) -> None:
        await self.drop()
        await self.client.close()


async def test_receipts_and_the_reply_floor(city):
    app = city.app
    greetings = app[GREETINGS]
    clock = greetings.clock = ManualTime()
    directory = app[DIRECTORY]
    _, mayor = await directory.sign_in("mayor", PASSWORD)
    ids = city.ids

    # Password checks (argon2) first: with consoles encoding on this same loop they crawl.
    leader_cookies = await sign_in(base_of(city), "mayor", PASSWORD)
    session = await api_session(city, "mayor")
    # Two consoles of district A wait on standby; 丙 is off; 丁 (district B) is not chosen.
    a = await Console().start(city, "甲", GREEN)
    b = await Console().start(city, "乙", BLUE)
    created = await greetings.create(mayor, {"title": "新春慰问", "unit_ids": [ids["A"]]})
    gid, room = created["id"], created["room"]
    assert created["status"] == "scheduled" and created["targets"] == 3 and created["leader"] == "王市长"

    await greetings.command(mayor, gid, "start", {})
    invite_a = await a.client.wait_event("greeting_invite", timeout=10, greeting_id=gid)
    await b.client.wait_event("greeting_invite", timeout=10, greeting_id=gid)
    assert invite_a["room"] == room and invite_a["title"] == "新春慰问"

    # The leader joins the greeting's room and publishes (a red picture and a tone).
    leader = await SignallingClient(base_of(city).replace("http", "ws") + "/ws", cookies=leader_cookies).connect()
    await leader.join(room, "")
    leader_pc, _ = await publish(leader, video=small(RED), audio=ToneTrack())
    leader_floor_pc, _, leader_floor = await subscribe(leader, None, ("video",))
    leader_floor_reader = FrameReader(leader_floor["video"])

    # 甲 joins at once; 乙 10 s later. The leader is told how many rooms watch, live.
    joined = await a.enter(invite_a["room"])
    info = joined["room_info"]
    assert {k: info[k] for k in ("kind", "greeting_id", "title", "leader", "floor_room_id", "media")} == {
        "kind": "greeting", "greeting_id": gid, "title": "新春慰问", "leader": "王市长", "floor_room_id": None,
        "media": False}
    # What to watch is named by the server: the leader's publication (by id), not "not a console".
    leader_publications = [p for p in joined["publications"] if p["participant_id"] == leader.participant_id]
    assert [(s["publication_id"], s["source"]) for s in info["sources"]] == [
        (leader_publications[0]["publication_id"], "leader")]
    await leader.wait_event("greeting_watching", timeout=10, watching=1)
    clock.advance(10)
    await b.enter(room)
    await leader.wait_event("greeting_watching", timeout=10, watching=2)
    await b.watch()  # 乙 watches closely; 甲 (which replies) need not
    await wait_for(lambda: close_colour(b.readers["leader"].last_rgb, RED), timeout=20, what="乙 sees the leader")

    # The leader brings 甲 up: everyone's floor carries 甲 (seen and heard by all), 甲 publishes
    # full quality, and the leader's own stream goes on.
    detail = await greetings.command(mayor, gid, "reply", {"duty_room_id": ids["甲"]})
    assert detail["floor_room_id"] == ids["甲"]
    assert (await a.client.wait_event("publish_quality", timeout=10))["profile"] == "full"
    await wait_for(lambda: close_colour(b.readers["floor"].last_rgb, GREEN), timeout=20, what="乙's floor shows 甲")
    await wait_for(lambda: close_colour(leader_floor_reader.last_rgb, GREEN), timeout=20, what="the leader sees 甲")
    seen = b.readers["leader"].frames
    await wait_for(lambda: b.readers["leader"].frames > seen + 5, timeout=20, what="the leader still seen by 乙")
    # ... and returns: the floor carries nobody, 甲 goes back to the small profile, and the
    # leader's picture is what every room still receives.
    await greetings.command(mayor, gid, "reply", {"duty_room_id": None})
    assert (await a.client.wait_event("publish_quality", timeout=10))["profile"] == "idle"
    floor_frames = b.readers["floor"].frames
    await wait_for(lambda: b.readers["leader"].frames > seen + 30, timeout=20, what="the leader's frames go on")
    assert b.readers["floor"].frames - floor_frames < 8  # the floor stopped carrying 甲
    assert close_colour(b.readers["leader"].last_rgb, RED)

    # 甲 leaves early (5 s later) and comes back for 5 s; 乙 watches to the end; 丙 never joins.
    clock.advance(5)
    await a.enter(f"standby-{ids['甲']}")
    await leader.wait_event("greeting_watching", timeout=10, watching=1)
    clock.advance(5)
    await a.enter(room)
    await leader.wait_event("greeting_watching", timeout=10, watching=2)
    clock.advance(5)
    await a.enter(f"standby-{ids['甲']}")
    await leader.wait_event("greeting_watching", timeout=10, watching=1)
    clock.advance(15)
    await greetings.settled()
    live = {r["room"]: r for r in (await greetings.detail(mayor, gid))["receipts"]}
    assert live["乙值班室"]["watching"] and live["乙值班室"]["watched_seconds"] == 30  # open stay counted to now
    await greetings.command(mayor, gid, "end", {})
    await b.client.wait_event("greeting_ended", timeout=10, greeting_id=gid)
    await greetings.settled()

    start = dt.datetime(2027, 2, 10, 2, 0, tzinfo=dt.UTC)
    rows = {r["room"]: r for r in (await greetings.detail(mayor, gid))["receipts"]}
    assert rows["甲值班室"]["first_joined_at"] == start.isoformat()
    assert rows["甲值班室"]["watched_seconds"] == 20 and rows["甲值班室"]["joins"] == 2  # 15 + 5
    assert rows["乙值班室"]["first_joined_at"] == (start + dt.timedelta(seconds=10)).isoformat()
    assert rows["乙值班室"]["watched_seconds"] == 30 and rows["乙值班室"]["joins"] == 1
    assert rows["丙值班室"]["offline"] and rows["丙值班室"]["watched_seconds"] == 0
    assert not rows["乙值班室"]["offline"] and "丁值班室" not in rows  # district B was not chosen

    # The report: page JSON above; CSV, XLSX and PDF with the rooms that missed it.
    try:
        resp = await session.get(f"{base_of(city)}/api/greetings/{gid}/receipts.csv")
        assert resp.status == 200
        table = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
        assert table[0][:3] == ["单位", "值班室", "收看情况"]
        assert ["东城区", "丙值班室", "未收看（离线）", "", "0.0", "0"] in table
        resp = await session.get(f"{base_of(city)}/api/greetings/{gid}/receipts.xlsx")
        sheet = load_workbook(io.BytesIO(await resp.read())).active
        cells = [c for row in sheet.iter_rows(values_only=True) for c in row if c]
        assert "未收看、需跟进的值班室" in cells and cells[-1] == "丙值班室"
        resp = await session.get(f"{base_of(city)}/api/greetings/{gid}/receipts.pdf")
        assert resp.status == 200 and resp.content_type == "application/pdf"
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(await resp.read())).pages)
        assert "慰问回执" in text and "丙值班室" in text and "需跟进" in text
    finally:
        await session.close()
        await leader_floor_reader.stop()
        for pc in (leader_pc, leader_floor_pc):
            await pc.close()
        await leader.close()
        await a.close()
        await b.close()


async def test_a_console_connecting_during_a_greeting_is_pulled_in_and_the_room_closes_after(city):
    app = city.app
    greetings = app[GREETINGS]
    _, mayor = await app[DIRECTORY].sign_in("mayor", PASSWORD)
    created = await greetings.create(mayor, {"title": "元宵慰问"})
    assert created["targets"] == 4  # every room in the mayor's scope
    await greetings.command(mayor, created["id"], "start", {})
    late = await Console().start(city, "丁")  # comes on standby after the start
    try:
        invite = await late.client.wait_event("greeting_invite", timeout=10, greeting_id=created["id"])
        await late.enter(invite["room"])
        await greetings.command(mayor, created["id"], "end", {})
        await late.client.wait_event("greeting_ended", timeout=10)
        # Ended: its room admits no one any more.
        await late.client.request("leave")
        with pytest.raises(SignallingError) as refused:
            await late.client.join(invite["room"], "")
        assert refused.value.code == "not_found"
    finally:
        await late.close()


async def test_a_greeting_nobody_leads_ends_by_itself(city):
    """A live greeting with no video whose leader left (closed the page): it ends once
    greeting_unattended_seconds pass with nobody leading it; a leader back within that keeps it."""
    app, ids = city.app, city.ids
    greetings = app[GREETINGS]
    greetings.unattended_after = 120.0  # long while the leader comes, goes and comes back (a slow machine)
    _, mayor = await app[DIRECTORY].sign_in("mayor", PASSWORD)
    leader_cookies = await sign_in(base_of(city), "mayor", PASSWORD)
    a = await Console().start(city, "甲", GREEN)
    leader = None
    try:
        created = await greetings.create(mayor, {"title": "夜间慰问", "unit_ids": [ids["A"]]})
        gid, room = created["id"], created["room"]
        await greetings.command(mayor, gid, "start", {})
        await a.enter((await a.client.wait_event("greeting_invite", timeout=10, greeting_id=gid))["room"])
        leader = await SignallingClient(base_of(city).replace("http", "ws") + "/ws", cookies=leader_cookies).connect()
        await leader.join(room, "")
        await wait_for(lambda: greetings._live[gid].unattended is None, what="the leader leads it")
        # Away and back (a reload): the clock starts, and stops again.
        await leader.request("leave")
        await wait_for(lambda: greetings._live[gid].unattended is not None, what="nobody leads it")
        await leader.join(room, "")
        await wait_for(lambda: greetings._live[gid].unattended is None, what="the leader back")
        # The page closed: the greeting ends by itself, the consoles told, the receipts closed.
        greetings.unattended_after = 1.5
        left = time.monotonic()  # before: the server may start its timer before close() returns
        await leader.close()
        await a.client.wait_event("greeting_ended", timeout=20, greeting_id=gid)
        assert time.monotonic() - left >= 1.4
        await greetings.settled()
        detail = await greetings.detail(mayor, gid)
        assert detail["status"] == "ended" and detail["ended_at"] is not None
        row = next(r for r in await greetings.receipts(mayor, gid) if r["duty_room_id"] == ids["甲"])
        assert row["joins"] == 1 and row["watched_seconds"] > 0
    finally:
        if leader is not None:
            await leader.close()
        await a.close()


async def test_scope_roles_and_bad_input_store_nothing(city):
    ids, base = city.ids, base_of(city)

    async def stored() -> tuple[int, int]:
        async with city.app[DIRECTORY].sessionmaker() as db:
            return ((await db.execute(select(func.count()).select_from(Greeting))).scalar_one(),
                    (await db.execute(select(func.count()).select_from(GreetingReceipt))).scalar_one())

    host = await api_session(city, "hostA", lang="en")
    viewer = await api_session(city, "viewer")
    officer = await api_session(city, "officerA")
    mayor_api = await api_session(city, "mayor")
    try:
        # The leaders a host may greet for: its own scope's (never the mayor above it, nor a
        # neighbouring district's, nor a deactivated one); a leader only itself; a viewer none.
        directory = city.app[DIRECTORY]
        _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
        for username, unit in (("leaderB", "B"), ("leaderA2", "A")):
            made = await directory.create_account(admin, {"username": username, "display_name": username,
                                                          "password": PASSWORD, "role": "leader", "unit_id": ids[unit]})
        await directory.update_account(admin, made["id"], {"active": False})  # leaderA2
        resp = await host.get(f"{base}/api/greetings/leaders")
        assert resp.status == 200 and await resp.json() == [{"id": ids["leaderA"], "name": "leaderA", "unit": "东城区"}]
        resp = await mayor_api.get(f"{base}/api/greetings/leaders")
        assert [row["id"] for row in await resp.json()] == [ids["mayor"]]
        assert (await viewer.get(f"{base}/api/greetings/leaders")).status == 403
        # A district host cannot greet another district's rooms: 404, as if it did not exist.
        resp = await host.post(f"{base}/api/greetings", json={"title": "慰问", "unit_ids": [ids["B"]],
                                                              "leader_account_id": ids["leaderA"]})
        assert resp.status == 404
        body = await resp.json()
        assert body["error"]["errors"][0]["field"] == "unit_ids" and "not in your scope" in body["error"]["message"]
        # A host greets on a leader's behalf, and must say whose.
        resp = await host.post(f"{base}/api/greetings", json={"title": "慰问"})
        assert resp.status == 422 and (await resp.json())["error"]["errors"][0]["field"] == "leader_account_id"
        # ... a leader in its own scope: a district host cannot make a greeting appear from the mayor.
        resp = await host.post(f"{base}/api/greetings", json={"title": "慰问", "leader_account_id": ids["mayor"]})
        assert resp.status == 404, await resp.text()
        body = await resp.json()
        assert body["error"]["errors"][0]["field"] == "leader_account_id"
        assert f"No leader account {ids['mayor']} in your scope" in body["error"]["message"]
        for bad in ({"title": ""}, {"title": "x" * 129}, {"title": "慰\u202e问"}, {"title": 5},
                    {"title": "慰问", "unit_ids": "A"}, {"title": "慰问", "unit_ids": [True]},
                    {"title": "慰问", "scheduled_at": "2020-01-01T00:00:00+08:00"},
                    {"title": "慰问", "scheduled_at": "2099-01-01T00:00:00"}, {"title": "慰问", "scheduled_at": 5},
                    {"title": "慰问", "scheduled_at": "9999-12-31T23:59:59-01:00"},
                    {"title": "慰问", "scheduled_at": "2099-01-01T00:00:00+08:00"}):
            resp = await host.post(f"{base}/api/greetings", json={"leader_account_id": ids["leaderA"], **bad})
            assert resp.status == 422, (bad, await resp.text())
        resp = await viewer.post(f"{base}/api/greetings", json={"title": "慰问"})
        assert resp.status == 403 and "只有领导、主持人和管理员" in (await resp.json())["error"]["message"]
        resp = await officer.get(f"{base}/api/greetings")
        assert resp.status == 403
        assert await stored() == (0, 0)

        # A scheduled greeting: on the rooms' calendars; the district host reads its own, not the city's.
        at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)
        resp = await host.post(f"{base}/api/greetings", json={
            "title": "春节慰问", "leader_account_id": ids["leaderA"], "scheduled_at": at.isoformat()})
        assert resp.status == 201, await resp.text()
        mine = await resp.json()
        assert mine["targets"] == 3 and mine["scheduled_at"] == at.isoformat() and mine["status"] == "scheduled"
        resp = await host.get(f"{base}/api/rooms/{ids['甲']}/greetings.ics")
        calendar = await resp.text()
        assert resp.status == 200 and "春节慰问" in calendar and at.strftime("%Y%m%dT%H%M%SZ") in calendar
        _, mayor = await city.app[DIRECTORY].sign_in("mayor", PASSWORD)
        citywide = await city.app[GREETINGS].create(mayor, {"title": "全市慰问"})
        resp = await host.get(f"{base}/api/greetings/{citywide['id']}")
        assert resp.status == 404
        assert [g["title"] for g in await (await host.get(f"{base}/api/greetings")).json()] == ["春节慰问"]
        assert {g["title"] for g in await (await viewer.get(f"{base}/api/greetings")).json()} == {"春节慰问", "全市慰问"}
        resp = await viewer.post(f"{base}/api/greetings/{mine['id']}/start")
        assert resp.status == 403
        # Only the leader (and whoever created it) enters a live greeting's room: anyone there may
        # publish, and every console shows what is not a console as the leader's picture.
        _, viewer_principal = await city.app[DIRECTORY].sign_in("viewer", PASSWORD)
        _, host_principal = await city.app[DIRECTORY].sign_in("hostA", PASSWORD)
        live = await city.app[GREETINGS].create(mayor, {"title": "试播"})
        await city.app[GREETINGS].command(mayor, live["id"], "start", {})
        assert await city.app[GREETINGS].may_join(mayor, live["id"])
        assert not await city.app[GREETINGS].may_join(viewer_principal, live["id"])
        assert not await city.app[GREETINGS].may_join(host_principal, live["id"])
        await city.app[GREETINGS].command(mayor, live["id"], "end", {})
        resp = await host.post(f"{base}/api/greetings/{mine['id']}/end")
        assert resp.status == 409  # not live
        resp = await host.post(f"{base}/api/greetings/{mine['id']}/reply", json={"duty_room_id": "甲"})
        assert resp.status == 422
        resp = await host.post(f"{base}/api/greetings/{mine['id']}/cancel")
        assert resp.status == 200 and (await resp.json())["status"] == "cancelled"

        # A console sees its own room's upcoming greetings, and no receipts.
        cookies = await sign_in(base, device_token=city.tokens["丁"])
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), cookies=cookies) as console:
            upcoming = await (await console.get(f"{base}/api/greetings/upcoming")).json()
            assert [g["title"] for g in upcoming] == ["全市慰问"]
            assert (await console.get(f"{base}/api/greetings/{citywide['id']}")).status == 403
            mayors = await city.app[GREETINGS].create(mayor, {"title": "市长新春慰问", "scheduled_at": at.isoformat()})
            assert "市长新春慰问" in await (await console.get(f"{base}/api/rooms/{ids['丁']}/greetings.ics")).text()
            assert (await console.get(f"{base}/api/rooms/{ids['丙']}/greetings.ics")).status == 404
        # A room's calendar: a room out of the reader's scope is 404, a role that reads no
        # greetings 403, and a greeting run from above the reader's scope is not on it.
        resp = await host.get(f"{base}/api/rooms/{ids['丁']}/greetings.ics")
        assert resp.status == 404 and f"No duty room {ids['丁']} in your scope" in (await resp.json())["error"]["message"]
        assert (await officer.get(f"{base}/api/rooms/{ids['甲']}/greetings.ics")).status == 403
        calendar = await (await host.get(f"{base}/api/rooms/{ids['甲']}/greetings.ics")).text()
        assert "市长新春慰问" not in calendar and "春节慰问" not in calendar  # (cancelled above)
        calendar = await (await viewer.get(f"{base}/api/rooms/{ids['甲']}/greetings.ics")).text()
        assert "市长新春慰问" in calendar and mayors["status"] == "scheduled"
    finally:
        for session in (host, viewer, officer, mayor_api):
            await session.close()


async def test_the_scheduler_starts_a_greeting_at_its_time(city):
    greetings = city.app[GREETINGS]
    clock = greetings.clock = ManualTime()
    _, mayor = await city.app[DIRECTORY].sign_in("mayor", PASSWORD)
    created = await greetings.create(mayor, {"title": "定时慰问",
                                             "scheduled_at": (clock.now + dt.timedelta(minutes=5)).isoformat()})
    assert await greetings.start_due() == []
    clock.advance(301)
    assert await greetings.start_due() == [created["id"]]
    assert (await greetings.detail(mayor, created["id"]))["status"] == "live"


async def test_a_start_and_a_cancel_at_once_one_wins_the_other_is_409(city):
    """Start vs cancel, start vs start, and the scheduler vs a host's start, each pair sent at the
    same moment: exactly one changes the greeting, the other is told why (409)."""
    import asyncio

    ids, base = city.ids, base_of(city)
    greetings = city.app[GREETINGS]
    _, mayor = await city.app[DIRECTORY].sign_in("hostA", PASSWORD)  # on leaderA's behalf
    host = await api_session(city, "hostA")
    other = await api_session(city, "hostA", lang="en")
    try:
        for second in ("cancel", "start"):
            for _ in range(3):
                created = await greetings.create(mayor, {"title": "并发慰问", "leader_account_id": ids["leaderA"]})
                greeting_id = created["id"]
                first_resp, second_resp = await asyncio.gather(
                    host.post(f"{base}/api/greetings/{greeting_id}/start"),
                    other.post(f"{base}/api/greetings/{greeting_id}/{second}"))
                statuses = sorted([first_resp.status, second_resp.status])
                assert statuses == [200, 409], (second, statuses)
                loser = first_resp if first_resp.status == 409 else second_resp
                error = (await loser.json())["error"]
                assert error["code"] == "greeting_state" and ("不能" in error["message"] or "cannot" in error["message"])
                status = (await greetings.detail(mayor, greeting_id))["status"]
                winner = "start" if first_resp.status == 200 else second
                assert status == {"start": "live", "cancel": "cancelled"}[winner]
                if status == "live":
                    await greetings.command(mayor, greeting_id, "end", {})
        # The scheduler and a host starting the same due greeting: started once.
        clock = greetings.clock = ManualTime()
        created = await greetings.create(mayor, {"title": "定时并发", "leader_account_id": ids["leaderA"], "scheduled_at": (
            clock.now + dt.timedelta(minutes=1)).isoformat()})
        clock.advance(61)
        due, by_hand = await asyncio.gather(greetings.start_due(),
                                            greetings.command(mayor, created["id"], "start", {}),
                                            return_exceptions=True)
        assert (due == [created["id"]]) != (not isinstance(by_hand, Exception)), (due, by_hand)
        if isinstance(by_hand, Exception):
            assert getattr(by_hand, "code", None) == "greeting_state", by_hand
        assert (await greetings.detail(mayor, created["id"]))["status"] == "live"
        await greetings.command(mayor, created["id"], "end", {})
    finally:
        await host.close()
        await other.close()


# -- the console in Chromium --------------------------------------------------------------------

SHOTS = pathlib.Path(os.environ.get("DUTYCALL_SCREENSHOTS", pathlib.Path(__file__).parent / "artefacts"))

#: Whether the console's subscriptions have received audio above silence (decoded and measured).
HEARD_JS = """
async () => {
  let energy = 0, level = 0;
  for (const entry of window.dutyConsole.peers.subscriptions.values()) {
    const stats = await entry.pc.getStats();
    for (const report of stats.values()) {
      if (report.type === "inbound-rtp" && report.kind === "audio") {
        energy = Math.max(energy, report.totalAudioEnergy || 0);
        level = Math.max(level, report.audioLevel || 0);
      }
    }
  }
  return {energy, level};
}
"""


async def test_a_console_in_chromium_is_pulled_into_a_greeting_and_plays_it_with_sound(city, tmp_path):
    from playwright.async_api import async_playwright

    from .browser import VIDEO_RGB_JS, launch, write_y4m

    app, base, ids = city.app, base_of(city), city.ids
    greetings = app[GREETINGS]
    _, mayor = await app[DIRECTORY].sign_in("mayor", PASSWORD)
    leader_cookies = await sign_in(base, "mayor", PASSWORD)  # before any media: see the first test
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "chromium", write_y4m(tmp_path / "blue.y4m", BLUE))
        leader = None
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            page.on("console", lambda msg: print(f"[console] {msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: print(f"[console] pageerror: {exc}"))
            await page.goto(f"{base}/?device={city.tokens['甲']}&lang=en")
            await page.wait_for_selector('#status[data-state="connected"]', timeout=30000)
            assert await page.input_value("#room") == f"standby-{ids['甲']}"
            await wait_for(lambda: greetings.conference.publication_of(f"duty_room:{ids['甲']}") is not None,
                           timeout=30, what="the console publishing on standby")

            created = await greetings.create(mayor, {"title": "新春慰问 <b>", "unit_ids": [ids["A"]]})
            await greetings.command(mayor, created["id"], "start", {})
            leader = await SignallingClient(base.replace("http", "ws") + "/ws", cookies=leader_cookies).connect()
            await leader.join(created["room"], "")
            leader_pc, _ = await publish(leader, video=EncodedColorTrack(RED), audio=ToneTrack())

            # The console moves into the greeting by itself: the leader full screen, with sound.
            await wait_for(lambda: _in_room(page, created["room"]), timeout=30, what="the console in the greeting")
            await page.wait_for_selector("body[data-greeting]", state="attached", timeout=90000)
            assert await page.input_value("#room") == created["room"]
            assert await page.text_content("#greeting .greeting-title") == "Greeting from 王市长: 新春慰问 <b>"
            leader_video = ".tile[data-publication-id]:not([data-duty-room-id]) video"

            seen: dict = {}

            async def shows_red():
                seen["rgb"] = rgb = await page.evaluate(VIDEO_RGB_JS, leader_video)
                return rgb is not None and close_colour(tuple(rgb[:3]), RED, 40)

            try:
                await wait_for(shows_red, timeout=90, interval=0.25, what="the leader's picture")
            except AssertionError:
                tiles = await page.evaluate("() => [...document.querySelectorAll('.tile')].map(t => t.outerHTML)")
                raise AssertionError(f"the leader's picture: last {seen.get('rgb')}; tiles {tiles}") from None
            assert not await page.evaluate(f"() => document.querySelector('{leader_video}').muted")
            await wait_for(lambda: _louder(page), timeout=60, interval=0.5, what="the leader's tone heard")
            await greetings.settled()
            detail = await greetings.detail(mayor, created["id"])
            assert detail["watching"] == 1
            await page.screenshot(path=str(SHOTS / "greeting-console-en.png"))

            # The leader's page (zh-CN): receipts of the live greeting.
            leader_page = await _leader_page(browser, base, leader_cookies)
            row = leader_page.locator(f'#list tr[data-greeting-id="{created["id"]}"]')
            await row.locator('button[data-action="receipts"]').click()
            await leader_page.locator(f'#receipts tr[data-room-id="{ids["甲"]}"][data-watching="true"]').wait_for(
                timeout=30000)
            assert await leader_page.text_content("#receipts-title") == "新春慰问 <b>"
            assert await leader_page.locator("#missed li").all_text_contents() == ["东城区 乙值班室", "东城区 丙值班室"]
            assert await row.locator('button[data-action="end"]').text_content() == "结束"
            await leader_page.screenshot(path=str(SHOTS / "greeting-leader-zh.png"), full_page=True)

            # Ended: the console goes back to standby by itself, and shows the greeting to come.
            at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
            await greetings.create(mayor, {"title": "元宵慰问", "unit_ids": [ids["A"]], "scheduled_at": at})
            await greetings.command(mayor, created["id"], "end", {})
            await page.wait_for_selector("body:not([data-greeting])", state="attached", timeout=30000)
            await wait_for(lambda: _in_room(page, f"standby-{ids['甲']}"), timeout=30, what="back on standby")
            upcoming = page.locator("#greeting-upcoming")
            await upcoming.wait_for(timeout=30000)
            assert "Greetings to come: " in await upcoming.text_content() and "元宵慰问" in await upcoming.text_content()
            await leader_pc.close()
        finally:
            if leader is not None:
                await leader.close()
            await browser.close()


async def _leader_page(browser, base: str, cookies: dict[str, str], query: str = ""):
    """The greetings page in a new context signed in with ``cookies`` (the leader's)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_cookies([{"name": "dutycall_session", "value": cookies["dutycall_session"], "url": base}])
    page = await context.new_page()
    page.on("pageerror", lambda exc: print(f"[leader page] pageerror: {exc}"))
    await page.goto(f"{base}/greetings{query}")
    return page


async def _louder(page) -> bool:
    heard = await page.evaluate(HEARD_JS)
    return heard["energy"] > 0.001 or heard["level"] > 0.01


async def _in_room(page, room: str) -> bool:
    return await page.input_value("#room") == room


# -- pre-recorded greetings (media/playout.py played as the greeting's source) -------------------

#: The test video: GREEN for its first second (its beginning), BLUE after; a 440 Hz tone throughout.
VIDEO_SECONDS, OPENING = 5.0, 1.0


def make_greeting_video(path: pathlib.Path, seconds: float = VIDEO_SECONDS, opening: float = OPENING) -> pathlib.Path:
    """A VP8 + Opus WebM (copied as it is by preparation: nothing re-encoded), 1 s GOP."""
    fps = 15
    out = av.open(str(path), "w", format="webm")  # type: ignore[call-overload]
    video = out.add_stream("libvpx", rate=fps)
    video.width, video.height, video.pix_fmt, video.bit_rate = 320, 180, "yuv420p", 300_000
    video.codec_context.gop_size = fps
    video.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    audio = out.add_stream("libopus", rate=48000)
    audio.layout, audio.bit_rate = "mono", 64000
    for i in range(int(seconds * fps)):
        rgb = GREEN if i / fps < opening else BLUE
        picture = np.empty((180, 320, 3), dtype=np.uint8)
        picture[:] = rgb
        frame = VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    for start in range(0, int(seconds * 48000), 960):
        t = (np.arange(960) + start) / 48000
        samples = (np.sin(2 * math.pi * 440 * t) * 10000).astype(np.int16).reshape(1, -1)
        tone = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        tone.sample_rate, tone.pts, tone.time_base = 48000, start, fractions.Fraction(1, 48000)
        out.mux(audio.encode(tone))
    out.mux(audio.encode(None))
    out.close()
    return path


async def ready_video(server, session: aiohttp.ClientSession, path: pathlib.Path) -> dict:
    resp = await session.post(f"{base_of(server)}/api/greeting-media?label=greeting", data=path.read_bytes(),
                              headers={"Content-Type": "video/webm"})
    row = await resp.json()
    assert resp.status == 201, row

    async def prepared():
        now = await (await session.get(f"{base_of(server)}/api/greeting-media/{row['id']}")).json()
        return now if now["status"] != "processing" else None

    row = await wait_for(prepared, 60, 0.2, "the greeting video prepared")
    assert row["status"] == "ready" and row["transcoded"] is False, row
    return row


class Picture:
    """What a console decodes of one publication: each picture's arrival and colour, and the
    loudness of each audio frame."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, tuple[int, int, int]]] = []
        self.sounds: list[float] = []
        self.tasks: list[asyncio.Task] = []

    async def start(self, client: SignallingClient, publication_id: str) -> Picture:
        self.subscribed_at = time.monotonic()
        self.pc, _, tracks = await subscribe(client, publication_id, ("video", "audio"))
        self.tasks = [asyncio.ensure_future(self._read(tracks["video"])),
                      asyncio.ensure_future(self._read(tracks["audio"]))]
        return self

    async def _read(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                self.frames.append((time.monotonic(), mean_rgb(frame.to_ndarray(format="rgb24")[45:135, 80:240])))
            else:
                samples = frame.to_ndarray().astype(np.float64) / 32768.0
                self.sounds.append(float(np.sqrt(np.mean(samples ** 2))))

    def first(self) -> tuple[int, int, int] | None:
        return self.frames[0][1] if self.frames else None

    def __repr__(self) -> str:
        return f"<{len(self.frames)} pictures, first {self.first()}, last {self.frames[-1][1] if self.frames else None}>"

    async def sees(self, rgb, what: str, timeout: float = 30) -> None:
        try:
            await wait_for(lambda: self.shows(rgb), timeout, what=what)
        except AssertionError as failed:
            raise AssertionError(f"{failed}: {self!r}") from None

    def shows(self, rgb) -> bool:
        return bool(self.frames) and close_colour(self.frames[-1][1], rgb, 40)

    def heard(self) -> int:
        return sum(1 for level in self.sounds if level > 0.05)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pc.close()


def media_source(sources: list[dict]) -> dict | None:
    return next((s for s in sources if s["source"] == "media"), None)


async def named(client: SignallingClient, greeting_id: int, check) -> list[dict]:
    """The sources of the next ``greeting_source`` event that passes ``check``."""
    while True:
        sources = (await client.wait_event("greeting_source", timeout=30, greeting_id=greeting_id))["sources"]
        if check(sources):
            return sources


async def test_a_pre_recorded_greeting_plays_to_consoles_and_a_late_joiner_sees_it_from_the_start(city, tmp_path):
    """late_join "start": a console later than the video's start gets its own playout from the
    beginning; the greeting ends by itself when the last playout has played out (no leader there)."""
    app, ids = city.app, city.ids
    greetings = app[GREETINGS]
    playouts = app[GREETING_MEDIA].playouts
    session = await api_session(city, "mayor")
    a = b = None
    pictures: list[Picture] = []
    try:
        video = await ready_video(city, session, make_greeting_video(tmp_path / "greeting.webm"))
        a = await Console().start(city, "甲", GREEN)
        resp = await session.post(f"{base_of(city)}/api/greetings", json={
            "title": "新春慰问（录播）", "unit_ids": [ids["A"]], "media_id": video["id"], "late_join": "start"})
        created = await resp.json()
        assert resp.status == 201, created
        assert (created["media_id"], created["late_join"]) == (video["id"], "start")
        resp = await session.post(f"{base_of(city)}/api/greetings/{created['id']}/start")
        assert resp.status == 200, await resp.text()
        invite = await a.client.wait_event("greeting_invite", timeout=10, greeting_id=created["id"])
        joined = await a.enter(invite["room"])
        info = joined["room_info"]
        assert info["media"] and info["late_join"] == "start"
        shared = media_source(info["sources"])
        assert shared is not None and [s["source"] for s in info["sources"]] == ["media"]
        # The source is a publication of the room by its id (the video's participant, not a console).
        assert shared["publication_id"] in {p["publication_id"] for p in joined["publications"]}
        assert shared["participant_id"] not in a.consoles()
        first = await Picture().start(a.client, shared["publication_id"])
        pictures.append(first)
        await first.sees(BLUE, "甲 past the video's opening second")
        assert close_colour(first.first(), GREEN, 40), first.frames[:3]  # subscribed within the lead
        await wait_for(lambda: first.heard() > 20, 15, what="甲 hears the video's tone")  # decoded audio

        # 乙 comes on standby now, past the opening: pulled in, it gets a playout of its own from
        # the beginning, named to it alone (none in its room_info while it is being made).
        b = await Console().start(city, "乙", BLUE)
        invite = await b.client.wait_event("greeting_invite", timeout=10, greeting_id=created["id"])
        late_joined = await b.enter(invite["room"])
        assert media_source(late_joined["room_info"]["sources"]) is None
        own = media_source(await named(b.client, created["id"], media_source))
        assert own is not None and own["publication_id"] != shared["publication_id"]
        late = await Picture().start(b.client, own["publication_id"])
        pictures.append(late)
        await late.sees(BLUE, "乙's own playout going on")
        assert close_colour(late.first(), GREEN, 40), late.frames[:3]  # from the beginning
        await wait_for(lambda: late.heard() > 20, 15, what="乙 hears its playout's tone")

        # Both played out: the greeting ends by itself (nobody leads it in its room).
        await a.client.wait_event("greeting_ended", timeout=30, greeting_id=created["id"])
        assert not playouts.active
        await greetings.settled()
        detail = await (await session.get(f"{base_of(city)}/api/greetings/{created['id']}")).json()
        rows = {r["room"]: r for r in detail["receipts"]}
        assert detail["status"] == "ended"
        assert rows["甲值班室"]["joins"] == 1 and rows["乙值班室"]["joins"] == 1 and rows["丙值班室"]["offline"]
        # 乙 watched its whole copy: the greeting lasted until it had played out.
        assert late.frames[-1][0] - late.frames[0][0] > VIDEO_SECONDS - 1.0
    finally:
        for picture in pictures:
            await picture.close()
        for console in (a, b):
            if console is not None:
                await console.close()
        await session.close()


async def test_past_the_playout_limit_a_late_start_console_joins_the_shared_playout(city, tmp_path, monkeypatch):
    """late_join "start" with no playout left (MAX_PLAYOUTS, here 1: the shared one): the late
    console is named the shared playout and sees it where it is, rather than nothing."""
    app, ids = city.app, city.ids
    playouts = app[GREETING_MEDIA].playouts
    monkeypatch.setattr(playout_module, "MAX_PLAYOUTS", 1)
    session = await api_session(city, "mayor")
    a = b = None
    pictures: list[Picture] = []
    try:
        # Long enough that 乙 still comes in while it plays on a slow machine.
        video = await ready_video(city, session, make_greeting_video(tmp_path / "greeting.webm", seconds=15))
        a = await Console().start(city, "甲", GREEN)
        b = await Console().start(city, "乙", BLUE)  # on standby: invited, it comes in late below
        resp = await session.post(f"{base_of(city)}/api/greetings", json={
            "title": "新春慰问（录播）", "unit_ids": [ids["A"]], "media_id": video["id"], "late_join": "start"})
        created = await resp.json()
        assert resp.status == 201, created
        resp = await session.post(f"{base_of(city)}/api/greetings/{created['id']}/start")
        assert resp.status == 200, await resp.text()
        invite = await a.client.wait_event("greeting_invite", timeout=10, greeting_id=created["id"])
        shared = media_source((await a.enter(invite["room"]))["room_info"]["sources"])
        assert shared is not None
        first = await Picture().start(a.client, shared["publication_id"])
        pictures.append(first)
        await first.sees(BLUE, "甲 past the video's opening second")

        invite = await b.client.wait_event("greeting_invite", timeout=10, greeting_id=created["id"])
        await b.enter(invite["room"])
        fallback = media_source(await named(b.client, created["id"], media_source))
        assert fallback is not None and fallback["publication_id"] == shared["publication_id"]
        assert len(playouts.active) == 1  # no copy was made
        late = await Picture().start(b.client, fallback["publication_id"])
        pictures.append(late)
        await late.sees(BLUE, "乙 watching the shared playout")
        assert close_colour(late.first(), BLUE, 40), late.frames[:3]  # where it is, not from the start
        await a.client.wait_event("greeting_ended", timeout=60, greeting_id=created["id"])
    finally:
        for picture in pictures:
            await picture.close()
        for console in (a, b):
            if console is not None:
                await console.close()
        await session.close()


async def test_a_live_late_joiner_joins_the_running_video_and_the_leader_keeps_the_floor(city, tmp_path):
    """late_join "live": a late console joins the one shared playout where it is. The leader there
    too is a second source; the reply floor works beside the video; played out, the greeting stays
    live for the leader, who ends it."""
    app, ids = city.app, city.ids
    greetings = app[GREETINGS]
    _, mayor = await app[DIRECTORY].sign_in("mayor", PASSWORD)
    leader_cookies = await sign_in(base_of(city), "mayor", PASSWORD)
    session = await api_session(city, "mayor")
    a = b = leader = None
    pictures: list[Picture] = []
    pcs: list = []
    try:
        video = await ready_video(city, session, make_greeting_video(tmp_path / "live.webm", seconds=8.0))
        a = await Console().start(city, "甲", GREEN)
        created = await greetings.create(mayor, {"title": "元宵慰问（录播）", "unit_ids": [ids["A"]],
                                                 "media_id": video["id"]})
        assert created["late_join"] == "live"
        await greetings.command(mayor, created["id"], "start", {})
        room = created["room"]
        invite = await a.client.wait_event("greeting_invite", timeout=10, greeting_id=created["id"])
        joined = await a.enter(invite["room"])
        shared = media_source(joined["room_info"]["sources"])
        assert shared is not None
        first = await Picture().start(a.client, shared["publication_id"])
        pictures.append(first)
        # The leader comes in on camera too: a second source, named to the consoles when it publishes.
        leader = await SignallingClient(base_of(city).replace("http", "ws") + "/ws", cookies=leader_cookies).connect()
        await leader.join(room, "")
        leader_pc, published = await publish(leader, video=small(RED), audio=ToneTrack())
        pcs.append(leader_pc)
        sources = await named(a.client, created["id"], lambda found: len(found) == 2)
        assert {s["source"]: s["publication_id"] for s in sources} == {
            "media": shared["publication_id"], "leader": published["publication_id"]}
        await first.sees(BLUE, "甲 past the opening")

        b = await Console().start(city, "乙", BLUE)
        invite = await b.client.wait_event("greeting_invite", timeout=10, greeting_id=created["id"])
        late_joined = await b.enter(invite["room"])
        late_source = media_source(late_joined["room_info"]["sources"])
        assert late_source is not None and late_source["publication_id"] == shared["publication_id"]
        late = await Picture().start(b.client, late_source["publication_id"])
        pictures.append(late)
        await wait_for(lambda: late.frames, 15, what="乙's first picture")
        assert close_colour(late.first(), BLUE, 40), late.frames[:3]  # mid-way, never the opening
        assert not any(close_colour(rgb, GREEN, 40) for _, rgb in late.frames)
        await wait_for(lambda: late.heard() > 10, 15, what="乙 hears the video")

        # The reply floor beside the video: 乙's floor shows 甲 brought up, then nobody.
        floor_pc, _, floor = await subscribe(b.client, None, ("video",))
        pcs.append(floor_pc)
        floor_reader = FrameReader(floor["video"])
        try:
            await greetings.command(mayor, created["id"], "reply", {"duty_room_id": ids["甲"]})
            await wait_for(lambda: close_colour(floor_reader.last_rgb, GREEN), 20, what="乙's floor shows 甲")
            await greetings.command(mayor, created["id"], "reply", {"duty_room_id": None})
            assert (await a.client.wait_event("publish_quality", timeout=10))["profile"] == "full"
            assert (await a.client.wait_event("publish_quality", timeout=10))["profile"] == "idle"
        finally:
            await floor_reader.stop()

        # Played out with the leader in the room: it stays live for the leader.
        async def played_out() -> bool:
            return not (await greetings.detail(mayor, created["id"]))["media_playing"]

        await wait_for(played_out, 30, 0.2, "the video played out")
        await greetings.settled()
        assert [s["source"] for s in greetings.room_info(room)["sources"]] == ["leader"]
        assert (await greetings.detail(mayor, created["id"]))["status"] == "live"
        await greetings.command(mayor, created["id"], "end", {})
        await b.client.wait_event("greeting_ended", timeout=10, greeting_id=created["id"])
    finally:
        for picture in pictures:
            await picture.close()
        for pc in pcs:
            await pc.close()
        for client in (a, b):
            if client is not None:
                await client.close()
        if leader is not None:
            await leader.close()
        await session.close()


async def test_a_greeting_plays_only_a_ready_video_in_scope(city):
    """A video still processing, failed, of another district or unknown: 422, nothing stored."""
    ids, base = city.ids, base_of(city)
    host = await api_session(city, "hostA", lang="en")
    try:
        async with city.app[DIRECTORY].sessionmaker() as db:
            units = {u.id: u for u in (await db.execute(select(Unit))).scalars()}
            rows = {}
            for name, unit, status in (("processing", "A", "processing"), ("failed", "A", "failed"),
                                       ("elsewhere", "B", "ready"), ("ours", "A", "ready")):
                row = GreetingMedia(unit_id=ids[unit], unit_path=units[ids[unit]].path, label=name, status=status,
                                    original_bytes=1, path=f"{name}.webm", video_codec="vp8", transcoded=False)
                db.add(row)
                await db.flush()
                rows[name] = row.id
            await db.commit()

        async def stored() -> int:
            async with city.app[DIRECTORY].sessionmaker() as db:
                return (await db.execute(select(func.count()).select_from(Greeting))).scalar_one()

        base_body = {"title": "慰问", "leader_account_id": ids["leaderA"]}
        for media_id in (rows["processing"], rows["failed"], rows["elsewhere"], 999999):
            resp = await host.post(f"{base}/api/greetings", json={**base_body, "media_id": media_id})
            body = await resp.json()
            assert resp.status == 422, (media_id, body)
            assert body["error"]["errors"][0]["field"] == "media_id" and "not ready" in body["error"]["message"]
        for bad in ({"media_id": "1"}, {"media_id": True}, {"media_id": rows["ours"], "late_join": "sometimes"}):
            resp = await host.post(f"{base}/api/greetings", json={**base_body, **bad})
            assert resp.status == 422, (bad, await resp.text())
        assert await stored() == 0
        resp = await host.post(f"{base}/api/greetings", json={**base_body, "media_id": rows["ours"],
                                                              "late_join": "start"})
        assert resp.status == 201, await resp.text()
        assert await stored() == 1
        # Left live by a stopped server: its video cannot go on where it was, so it ends at recovery.
        recorded = (await resp.json())["id"]
        async with city.app[DIRECTORY].sessionmaker() as db:
            (await db.get(Greeting, recorded)).status = "live"
            await db.commit()
        assert recorded not in await city.app[GREETINGS].recover()
        async with city.app[DIRECTORY].sessionmaker() as db:
            assert (await db.get(Greeting, recorded)).status == "ended"
    finally:
        await host.close()


async def test_the_leader_page_brings_a_room_up_to_reply_and_returns_the_floor(city, tmp_path):
    """The leader's page (zh-CN) in Chromium, on camera: 请其发言 on a watching room puts it on
    every room's floor; 收回发言 returns the floor (the room back on the small profile)."""
    from playwright.async_api import async_playwright

    from .browser import launch, write_y4m

    app, base, ids = city.app, base_of(city), city.ids
    greetings = app[GREETINGS]
    _, mayor = await app[DIRECTORY].sign_in("mayor", PASSWORD)
    leader_cookies = await sign_in(base, "mayor", PASSWORD)
    created = await greetings.create(mayor, {"title": "新春慰问", "unit_ids": [ids["A"]]})
    a = await Console().start(city, "甲", GREEN)
    b = await Console().start(city, "乙", BLUE)
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "chromium", write_y4m(tmp_path / "red.y4m", RED))
        try:
            page = await _leader_page(browser, base, leader_cookies)
            row = page.locator(f'#list tr[data-greeting-id="{created["id"]}"]')
            start = row.locator('button[data-action="start"]')
            assert await start.text_content() == "开始"
            await start.click()  # started, and the page goes live on its camera
            for console in (a, b):
                invite = await console.client.wait_event("greeting_invite", timeout=10, greeting_id=created["id"])
                await console.enter(invite["room"])
            await b.watch()
            await wait_for(lambda: close_colour(b.readers["leader"].last_rgb, RED, 40), timeout=60,
                           what="乙 sees the leader's camera")
            bring_up = page.locator(f'#receipts tr[data-room-id="{ids["甲"]}"] button[data-i18n="gr_reply"]')
            await bring_up.wait_for(timeout=30000)
            assert await bring_up.text_content() == "请其发言"
            await bring_up.click()
            assert (await a.client.wait_event("publish_quality", timeout=15))["profile"] == "full"
            await wait_for(lambda: close_colour(b.readers["floor"].last_rgb, GREEN), timeout=30,
                           what="乙's floor shows 甲 brought up from the page")
            assert (await greetings.detail(mayor, created["id"]))["floor_room_id"] == ids["甲"]
            speaking = page.locator(f'#receipts tr[data-room-id="{ids["甲"]}"] td:nth-child(3)')
            await wait_for(lambda: _text(speaking, "发言中"), timeout=15, what="the page shows 甲 speaking")
            back = page.locator("#return-floor")
            await back.wait_for(state="visible", timeout=15000)
            assert await back.text_content() == "收回发言"
            await back.click()
            assert (await a.client.wait_event("publish_quality", timeout=15))["profile"] == "idle"
            await wait_for(lambda: _floor_returned(greetings, mayor, created["id"]), timeout=15,
                           what="the floor returned")
            await back.wait_for(state="hidden", timeout=15000)
            await page.screenshot(path=str(SHOTS / "greeting-reply-floor-zh.png"), full_page=True)
        finally:
            await browser.close()
            await a.close()
            await b.close()


async def _text(locator, expected: str) -> bool:
    return (await locator.text_content()) == expected


async def _floor_returned(greetings, who, greeting_id: int) -> bool:
    return (await greetings.detail(who, greeting_id))["floor_room_id"] is None


async def test_a_late_console_in_chromium_plays_its_own_copy_of_a_recorded_greeting_from_the_start(city, tmp_path):
    """console.js watches what the server names: a console coming on standby after a "start"
    greeting's video began is pulled in, shown its own playout (one video tile, not the shared
    one beside it in the room) from the opening, with sound."""
    from playwright.async_api import async_playwright

    from .browser import VIDEO_RGB_JS, launch, write_y4m

    app, base, ids = city.app, base_of(city), city.ids
    greetings = app[GREETINGS]
    playouts = app[GREETING_MEDIA].playouts
    _, mayor = await app[DIRECTORY].sign_in("mayor", PASSWORD)
    session = await api_session(city, "mayor")
    try:
        video = await ready_video(city, session, make_greeting_video(tmp_path / "g.webm", seconds=8.0, opening=3.0))
    finally:
        await session.close()
    created = await greetings.create(mayor, {"title": "新春慰问", "unit_ids": [ids["A"]], "media_id": video["id"],
                                             "late_join": "start"})
    greetings.media_lead = 0.5
    await greetings.command(mayor, created["id"], "start", {})
    await wait_for(lambda: any(p.sending for p in playouts.active.values()), 15, what="the video begun")
    shared = next(iter(playouts.active.values()))
    media_tile = '.tile[data-greeting-source="media"] video'
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "chromium", write_y4m(tmp_path / "grey.y4m", (128, 128, 128)))
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            page.on("pageerror", lambda exc: print(f"[console] pageerror: {exc}"))
            await page.goto(f"{base}/?device={city.tokens['甲']}")
            await wait_for(lambda: _in_room(page, created["room"]), timeout=60, what="the console in the greeting")
            await page.wait_for_selector("body[data-greeting-media]", state="attached", timeout=60000)
            seen: list = []

            async def shows(rgb) -> bool:
                found = await page.evaluate(VIDEO_RGB_JS, media_tile)
                seen.append(found)
                return found is not None and close_colour(tuple(found[:3]), rgb, 45)

            try:
                await wait_for(lambda: shows(GREEN), timeout=30, interval=0.2, what="the opening (green)")
                await wait_for(lambda: shows(BLUE), timeout=30, interval=0.2, what="the rest (blue)")
            except AssertionError:
                raise AssertionError(f"the console's video: {seen[-5:]}") from None
            tiles = await page.evaluate("""() => [...document.querySelectorAll('.tile[data-greeting-source]')]
                .map((t) => [t.dataset.publicationId, t.dataset.greetingSource])""")
            assert len(tiles) == 1 and tiles[0][1] == "media", tiles
            assert tiles[0][0] != shared.publication.id  # its own copy, not the shared playout
            await wait_for(lambda: _louder(page), timeout=30, interval=0.5, what="the video's tone heard")
            # The copy played out: the greeting ends by itself and the console goes back to standby.
            await wait_for(lambda: _in_room(page, f"standby-{ids['甲']}"), timeout=60, what="back on standby")
            assert (await greetings.detail(mayor, created["id"]))["status"] == "ended"
        finally:
            await browser.close()


async def test_the_leader_page_uploads_a_video_and_creates_a_recorded_greeting(city, tmp_path):
    """The leader's page (zh-CN): upload a video, wait while it is prepared, choose it and 从头观看
    for late rooms, create: the greeting is stored with its video and mode."""
    from playwright.async_api import async_playwright

    from .browser import launch

    base = base_of(city)
    leader_cookies = await sign_in(base, "mayor", PASSWORD)
    source = make_greeting_video(tmp_path / "新春.webm", seconds=2.0)
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "chromium")
        try:
            page = await _leader_page(browser, base, leader_cookies)
            await page.wait_for_selector("#create-section:not([hidden])", timeout=30000)
            assert await page.locator("#g-media option").all_text_contents() == ["无（领导现场讲话）"]
            assert await page.locator("#g-late option").all_text_contents() == ["从当前进度观看", "从头观看"]
            await page.set_input_files("#g-file", str(source))
            state = page.locator("#g-upload-state")
            await wait_for(lambda: _text(state, "视频已就绪，可选用"), timeout=60, what="the upload prepared")
            chosen = await page.input_value("#g-media")
            assert chosen and (await page.locator("#g-media option:checked").text_content()).startswith("新春.webm")
            await page.select_option("#g-late", "start")
            await page.fill("#g-title", "录播慰问")
            await page.click("#g-create")
            title = page.locator('#list tr[data-greeting-id] td:first-child', has_text="录播慰问")
            await title.wait_for(timeout=30000)
            # The list says it is a recorded greeting, which video, and how late rooms see it.
            assert await title.locator('.kind[data-kind="media"]').text_content() == "录播视频：新春.webm · 从头观看"
        finally:
            await browser.close()
    async with city.app[DIRECTORY].sessionmaker() as db:
        stored = (await db.execute(select(Greeting).where(Greeting.title == "录播慰问"))).scalar_one()
    assert (stored.media_id, stored.late_join) == (int(chosen), "start")


async def test_a_host_picks_the_leader_from_a_list_on_the_page(city, tmp_path):
    """A host (en) greets on a leader's behalf by choosing a name from its scope's leaders, not by
    typing an account number; without a choice the page says so and nothing is stored."""
    from playwright.async_api import async_playwright

    from .browser import launch

    base = base_of(city)
    cookies = await sign_in(base, "hostA", PASSWORD)
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "chromium")
        try:
            page = await _leader_page(browser, base, cookies, "?lang=en")
            await page.wait_for_selector("#g-leader-label:not([hidden])", timeout=30000)
            options = page.locator("#g-leader option")
            await wait_for(lambda: _count(options, 2), timeout=20, what="the scope's leaders listed")
            assert await options.all_text_contents() == ["Choose a leader", "leaderA · 东城区"]
            await page.fill("#g-title", "Festival greeting")
            await page.select_option("#g-leader", "")
            await page.click("#g-create")
            await wait_for(lambda: _text(page.locator("#error"), "Choose a leader"), what="a leader asked for")
            await page.select_option("#g-leader", str(city.ids["leaderA"]))
            await page.click("#g-create")
            row = page.locator("#list tr[data-greeting-id]", has_text="Festival greeting")
            await row.wait_for(timeout=30000)
            assert "leaderA" in await row.text_content()
            await page.screenshot(path=str(SHOTS / "greeting-host-leader-picker-en.png"), full_page=True)
        finally:
            await browser.close()
    async with city.app[DIRECTORY].sessionmaker() as db:
        stored = (await db.execute(select(Greeting))).scalars().all()
    assert [(g.title, g.leader_account_id, g.created_by) for g in stored] == [
        ("Festival greeting", city.ids["leaderA"], city.ids["hostA"])]


async def _count(locator, expected: int) -> bool:
    return await locator.count() == expected
