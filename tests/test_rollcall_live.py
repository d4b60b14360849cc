"""Roll-calls with real aiortc consoles through the real server: ring, answer, outcomes,
evidence, polling, scope, and a server killed mid roll-call."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import os
import signal
import socket
import sys
import time

import aiohttp
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from dutycall import db
from dutycall.client import SignallingClient, publish, sign_in
from dutycall.rollcall.clock import ManualClock
from dutycall.rollcall.models import AttendanceRecord
from dutycall.rollcall.presence import console_tag
from dutycall.synthetic import EncodedImageTrack
from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY, ROSTER
from dutycall.web.rollcalls import COORDINATOR, RESULTS

from .conftest import ADMIN_PASSWORD, make_config
from .test_evidence import letterboxed_face
from .utils import wait_for


def http_session() -> aiohttp.ClientSession:
    # The test server is on 127.0.0.1: cookies for IP hosts need the unsafe jar.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


PAN = [letterboxed_face(shift) for shift in range(-30, 30, 2)]


@pytest.fixture
async def rc_server(aiohttp_server, tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path}/rc.sqlite3", evidence_gap=1.0))
    srv = await aiohttp_server(app, host="127.0.0.1")
    yield srv


async def make_rooms(app, names):
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    rooms = {}
    for name in names:
        room = await directory.create_room(admin, {"unit_id": admin.unit_id, "name": name})
        token = (await directory.create_device_credential(admin, room["id"]))["token"]
        rooms[name] = (room["id"], token)
    return admin, rooms


class Console:
    """A duty-room console: signed in with its device credential, in the roll-call's room, publishing."""

    async def start(self, base: str, token: str, room: str) -> Console:
        cookies = await sign_in(base, device_token=token)
        self.client = await SignallingClient(base.replace("http", "ws") + "/ws", cookies=cookies).connect()
        self.joined = await self.client.join(room, "")
        self.pc, _ = await publish(self.client, video=EncodedImageTrack(PAN, hold=2))
        return self

    async def close(self) -> None:
        await self.pc.close()
        await self.client.close()


async def board_of(app, admin, rid):
    return {r["duty_room_id"]: r for r in (await app[COORDINATOR].board(admin, rid))["rooms"]}


async def test_a_roll_call_records_every_outcome(rc_server):
    app = rc_server.app
    base = f"http://127.0.0.1:{rc_server.port}"
    admin, rooms = await make_rooms(app, ["甲值班室", "乙值班室", "丙值班室"])
    a, b, c = (rooms[n][0] for n in ("甲值班室", "乙值班室", "丙值班室"))
    await app[ROSTER].set_shift(admin, a, dt.date.today().isoformat(),
                                {"leader_name": "王五", "officers": [{"name": "张三", "phone": ""}]})
    coordinator = app[COORDINATOR]
    # Roll-call time moves only when the test moves it: "late" and "absent" without waiting out
    # real windows, and a loaded machine cannot turn a prompt answer late.
    clock = coordinator.clock = ManualClock()
    created = await coordinator.create(admin, {"title": "周点名", "room_ids": [a, b, c], "answer_window": 60,
                                               "late_after": 30})
    rid = created["id"]
    con_a = await Console().start(base, rooms["甲值班室"][1], created["room"])
    con_b = await Console().start(base, rooms["乙值班室"][1], created["room"])
    await wait_for(lambda: coordinator.is_connected(rid, a) and coordinator.is_connected(rid, b), timeout=20)
    await coordinator.command(admin, rid, "start", {})

    # A is rung and answers at once: on time, matched against its roster.
    board = await coordinator.command(admin, rid, "call", {})
    assert board["current"] == a
    ring = await con_a.client.wait_event("rollcall_ring", timeout=5, duty_room_id=a)
    assert ring["roll_call_id"] == rid
    floor = await con_b.client.wait_event("rollcall_floor", timeout=5)
    assert floor["duty_room_id"] == a  # every room is told who has the floor
    # The room's floor subscriptions now carry A's own stream.
    floor = app[COORDINATOR].conference.rooms[created["room"]].floor
    assert floor is not None and floor.participant.tag == console_tag(a)
    await con_a.client.request("rollcall_answer", roll_call_id=rid, officer="张三")
    rows = await board_of(app, admin, rid)
    assert rows[a]["status"] == "on_time" and rows[a]["on_roster"] is True

    # B answers after the late threshold: late.
    await coordinator.command(admin, rid, "call", {})
    await con_b.client.wait_event("rollcall_ring", timeout=5, duty_room_id=b)
    clock.advance(31)  # past the late threshold, within the window
    await con_b.client.request("rollcall_answer", roll_call_id=rid, officer="李四")
    assert (await board_of(app, admin, rid))[b]["status"] == "late"

    # C never connected: offline at once. A console cannot answer for another room, or twice.
    await coordinator.command(admin, rid, "call", {})
    assert (await board_of(app, admin, rid))[c]["status"] == "offline"
    with pytest.raises(Exception) as info:
        await con_a.client.request("rollcall_answer", roll_call_id=rid, officer="张三")
    assert "invalid_state" in str(info.value) and "未在点名中" in str(info.value)  # the page's language: zh-CN

    # Re-call B and let the window pass: absent. Then excuse C.
    await coordinator.command(admin, rid, "call", {"room_id": b})
    clock.advance(59)
    assert coordinator._live[rid].state.room(b).status == "calling"  # the window is not over yet
    clock.advance(2)  # now it is: the answer timer fires
    await wait_for(lambda: coordinator._live[rid].state.room(b).status == "absent", timeout=10, what="absent")
    rows = await board_of(app, admin, rid)
    assert rows[b]["status"] == "absent" and rows[b]["attempts"] == 2
    await coordinator.command(admin, rid, "excuse", {"room_id": c, "reason": "线路检修"})
    board = await coordinator.command(admin, rid, "finish", {})
    assert board["phase"] == "finished"
    assert {r["duty_room_id"]: r["status"] for r in board["rooms"]} == {a: "on_time", b: "absent", c: "excused"}

    # A's answer was verified on camera, from its own stream.
    async def evidence_of_a():
        return (await board_of(app, admin, rid))[a]["evidence"]
    deadline = time.monotonic() + 20
    while await evidence_of_a() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    rows = await board_of(app, admin, rid)
    assert rows[a]["evidence"] == "verified" and len(rows[a]["evidence_sha256"]) == 64

    async with app[DIRECTORY].sessionmaker() as session:
        count = (await session.execute(select(func.count(AttendanceRecord.id)).where(
            AttendanceRecord.roll_call_id == rid))).scalar_one()
    assert count == 3  # one row per room, updated in place

    # The sheet to file, as PDF: every room's row, and A's answer snapshot exactly as evidenced.
    reader = PdfReader(io.BytesIO(await app[RESULTS].sheet_pdf(admin, rid)))
    text = "".join(page.extract_text() for page in reader.pages).replace("\n", "")
    for expected in ("周点名 点名结果", "应到 3，实到 1", "甲值班室按时应答张三是", "视频核验通过",
                     "乙值班室缺席此前应答：李四", "丙值班室请假线路检修"):
        assert expected in text, (expected, text)
    images = [x.get_object() for page in reader.pages for x in page["/Resources"]["/XObject"].values()]
    assert len(images) == 1
    # The JPEG is embedded as it is (DCTDecode), so the PDF carries the evidenced bytes themselves.
    assert "/DCTDecode" in images[0]["/Filter"]
    assert hashlib.sha256(images[0].get_data()).hexdigest() == rows[a]["evidence_sha256"]
    # Finished, its evidence and notices done: the coordinator holds nothing of it any more.
    await wait_for(lambda: rid not in coordinator._live, timeout=10, what="the finished roll-call forgotten")
    for con in (con_a, con_b):
        await con.close()


async def test_polling_calls_each_room_in_turn_and_finishes(rc_server):
    app = rc_server.app
    base = f"http://127.0.0.1:{rc_server.port}"
    admin, rooms = await make_rooms(app, ["东值班室", "西值班室"])
    coordinator = app[COORDINATOR]
    ids = [rooms[n][0] for n in ("东值班室", "西值班室")]
    # A generous late threshold: a loaded CI machine must not turn a prompt answer late.
    created = await coordinator.create(admin, {"room_ids": ids, "answer_window": 60, "late_after": 30})
    rid = created["id"]
    consoles = [await Console().start(base, rooms[n][1], created["room"]) for n in ("东值班室", "西值班室")]
    await wait_for(lambda: all(coordinator.is_connected(rid, i) for i in ids), timeout=20)
    await coordinator.command(admin, rid, "start", {})
    await coordinator.command(admin, rid, "poll", {"dwell": 0.3})
    for console, room_id in zip(consoles, ids, strict=True):
        await console.client.wait_event("rollcall_ring", timeout=10, duty_room_id=room_id)
        await console.client.request("rollcall_answer", roll_call_id=rid, officer="值班员")
    # A finished roll-call leaves the coordinator's memory once its last task (notices) is done.
    await wait_for(lambda: rid not in coordinator._live, timeout=10, what="finished by polling and forgotten")
    rows = await board_of(app, admin, rid)
    assert [rows[i]["status"] for i in ids] == ["on_time", "on_time"]
    for console in consoles:
        await console.close()


async def test_scope_and_illegal_commands_over_http(rc_server):
    app = rc_server.app
    base = f"http://127.0.0.1:{rc_server.port}"
    directory = app[DIRECTORY]
    admin, rooms = await make_rooms(app, ["总值班室"])
    district = await directory.create_unit(admin, {"code": "D1", "name": "一区", "kind": "district",
                                                   "parent_id": admin.unit_id})
    await directory.create_account(admin, {"username": "host1", "display_name": "一区主任", "password": "password-1",
                                           "role": "host", "unit_id": district["id"]})
    officer_room = await directory.create_room(admin, {"unit_id": district["id"], "name": "一区值班室"})
    async with http_session() as http:
        resp = await http.post(f"{base}/api/session", json={"username": "host1", "password": "password-1"})
        csrf = {"X-CSRF-Token": (await resp.json())["csrf_token"]}
        # A district host cannot call the city's room...
        resp = await http.post(f"{base}/api/rollcalls", json={"room_ids": [rooms["总值班室"][0]]}, headers=csrf)
        assert resp.status == 404
        # ...but can spot-check its own.
        resp = await http.post(f"{base}/api/rollcalls", json={"room_ids": [officer_room["id"]], "kind": "spot_check"},
                               headers=csrf)
        assert resp.status == 201
        rid = (await resp.json())["id"]
        resp = await http.post(f"{base}/api/rollcalls/{rid}/call", json={}, headers=csrf)
        assert resp.status == 409 and (await resp.json())["error"]["code"] == "illegal_event"
        resp = await http.post(f"{base}/api/rollcalls/{rid}/start", json={}, headers=csrf)
        assert resp.status == 200 and (await resp.json())["phase"] == "running"
        resp = await http.post(f"{base}/api/rollcalls/{rid}/call", json={}, headers=csrf)
        board = await resp.json()
        assert board["rooms"][0]["status"] == "offline" and board["kind"] == "spot_check"
        resp = await http.get(f"{base}/api/rollcalls/{rid}")
        assert resp.status == 200
    async with http_session() as http:
        resp = await http.post(f"{base}/api/session", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert resp.status == 200
        resp = await http.get(f"{base}/api/rollcalls/{rid}")
        assert resp.status == 200  # the city sees the district's roll-calls


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _start_server(url: str, port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dutycall.server", "--host", "127.0.0.1", "--port", str(port),
        "--ice-addresses", "127.0.0.1", "--database-url", url, "--log-level", "WARNING",
        env={**os.environ, "DUTYCALL_ADMIN_PASSWORD": ADMIN_PASSWORD}, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    async with http_session() as http:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("server did not start")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


async def test_server_killed_mid_roll_call_loses_and_duplicates_nothing(tmp_path):
    url = f"sqlite:///{tmp_path}/killed.sqlite3"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await _start_server(url, port)
    consoles = []
    try:
        # Rooms and credentials straight in the database the server uses.
        engine = db.make_engine(url)
        from dutycall.directory.service import Directory

        directory = Directory(db.make_sessionmaker(engine))
        _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
        tokens = {}
        for name in ("一号", "二号"):
            room = await directory.create_room(admin, {"unit_id": admin.unit_id, "name": name})
            tokens[room["id"]] = (await directory.create_device_credential(admin, room["id"]))["token"]
        a, b = list(tokens)
        async with http_session() as http:
            resp = await http.post(f"{base}/api/session", json={"username": "admin", "password": ADMIN_PASSWORD})
            csrf = {"X-CSRF-Token": (await resp.json())["csrf_token"]}
            created = await (await http.post(f"{base}/api/rollcalls", json={"room_ids": [a, b], "answer_window": 30},
                                             headers=csrf)).json()
            rid = created["id"]
            for room_id in (a, b):
                consoles.append(await Console().start(base, tokens[room_id], created["room"]))

            async def connected():
                board = await (await http.get(f"{base}/api/rollcalls/{rid}")).json()
                return all(r["connected"] for r in board["rooms"])

            deadline = time.monotonic() + 20
            while not await connected():
                assert time.monotonic() < deadline, "consoles never connected"
                await asyncio.sleep(0.2)
            await http.post(f"{base}/api/rollcalls/{rid}/start", json={}, headers=csrf)
            await http.post(f"{base}/api/rollcalls/{rid}/call", json={}, headers=csrf)
            await consoles[0].client.wait_event("rollcall_ring", timeout=5)
            await consoles[0].client.request("rollcall_answer", roll_call_id=rid, officer="张三")
            board = await (await http.post(f"{base}/api/rollcalls/{rid}/call", json={}, headers=csrf)).json()
            assert board["current"] == b
            # A's answer is being judged in the server's evidence worker process.
            await wait_for(lambda: _children(proc.pid), timeout=20, what="the evidence worker started")
            workers = _children(proc.pid)

        # Killed while B is being rung: no cleanup runs...
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        # ...and the evidence worker does not outlive it.
        await wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=15,
                       what="the evidence worker left with its server")
        for console in consoles:
            await console.close()
        proc = await _start_server(url, port)
        async with http_session() as http:
            resp = await http.post(f"{base}/api/session", json={"username": "admin", "password": ADMIN_PASSWORD})
            csrf = {"X-CSRF-Token": (await resp.json())["csrf_token"]}
            board = await (await http.get(f"{base}/api/rollcalls/{rid}")).json()
            assert board["phase"] == "interrupted"
            rows = {r["duty_room_id"]: r for r in board["rooms"]}
            assert rows[a]["status"] == "on_time" and rows[a]["officer"] == "张三"
            # Its evidence was being judged when the server died: judged in time, or marked lost,
            # never left blank.
            assert rows[a]["evidence"] is not None
            assert rows[b]["status"] == "pending"  # the call in flight is made again on resume
            # Resume: the host starts it again and carries on.
            resp = await http.post(f"{base}/api/rollcalls/{rid}/start", json={}, headers=csrf)
            assert (await resp.json())["phase"] == "running"
            resp = await http.post(f"{base}/api/rollcalls/{rid}/call", json={}, headers=csrf)
            assert {r["duty_room_id"]: r["status"] for r in (await resp.json())["rooms"]}[b] == "offline"
        async with directory.sessionmaker() as session:
            count = (await session.execute(select(func.count(AttendanceRecord.id)).where(
                AttendanceRecord.roll_call_id == rid))).scalar_one()
        assert count == 2
        await engine.dispose()
    finally:
        proc.kill()
        await proc.wait()


async def test_precheck_shows_which_rooms_are_not_ready(rc_server):
    app = rc_server.app
    base = f"http://127.0.0.1:{rc_server.port}"
    admin, rooms = await make_rooms(app, ["有画面", "无音频", "未连接"])
    coordinator = app[COORDINATOR]
    ids = [rooms[n][0] for n in ("有画面", "无音频", "未连接")]
    created = await coordinator.create(admin, {"room_ids": ids})
    # A console on standby counts too: it is connected, wherever it is.
    full = Console()
    cookies = await sign_in(base, device_token=rooms["有画面"][1])
    full.client = await SignallingClient(base.replace("http", "ws") + "/ws", cookies=cookies).connect()
    await full.client.join(f"standby-{ids[0]}", "")
    from aiortc.mediastreams import AudioStreamTrack

    full.pc, _ = await publish(full.client, video=EncodedImageTrack(PAN, hold=2), audio=AudioStreamTrack())
    video_only = await Console().start(base, rooms["无音频"][1], f"standby-{ids[1]}")

    async def report():
        return {r["duty_room_id"]: r for r in await coordinator.precheck(admin, created["id"])}

    async def settled():
        result = await report()
        # Each console's first frames have arrived (a loaded machine takes a while).
        return result[ids[0]]["ready"] and "no_video" not in result[ids[1]]["problems"]

    deadline = time.monotonic() + 30
    while not await settled():
        assert time.monotonic() < deadline, await report()
        await asyncio.sleep(0.2)
    result = await report()
    assert result[ids[1]]["problems"] == ["no_audio"]
    assert result[ids[2]]["problems"] == ["offline"] and not result[ids[2]]["ready"]
    for console in (full, video_only):
        await console.close()


async def test_a_roll_call_room_is_closed_to_outsiders(rc_server):
    app = rc_server.app
    base = f"http://127.0.0.1:{rc_server.port}"
    admin, rooms = await make_rooms(app, ["目标", "旁观"])
    created = await app[COORDINATOR].create(admin, {"room_ids": [rooms["目标"][0]]})
    outsider = await SignallingClient(base.replace("http", "ws") + "/ws",
                                      cookies=await sign_in(base, device_token=rooms["旁观"][1])).connect()
    with pytest.raises(Exception) as info:
        await outsider.join(created["room"], "")
    assert "not_found" in str(info.value)
    target = await SignallingClient(base.replace("http", "ws") + "/ws",
                                    cookies=await sign_in(base, device_token=rooms["目标"][1])).connect()
    assert (await target.join(created["room"], ""))["room"] == created["room"]
    for client in (outsider, target):
        await client.close()


async def test_a_standby_room_is_its_console_s_and_its_overseers_only(rc_server):
    app = rc_server.app
    base = f"http://127.0.0.1:{rc_server.port}"
    ws_url = base.replace("http", "ws") + "/ws"
    admin, rooms = await make_rooms(app, ["本室", "他室"])
    own, other = rooms["本室"], rooms["他室"]
    standby = f"standby-{own[0]}"
    mine = await SignallingClient(ws_url, cookies=await sign_in(base, device_token=own[1])).connect()
    assert (await mine.join(standby, ""))["room"] == standby
    intruder = await SignallingClient(ws_url, cookies=await sign_in(base, device_token=other[1])).connect()
    for room in (standby, "standby-x", "standby-999999"):
        with pytest.raises(Exception) as info:
            await intruder.join(room, "")
        assert "not_found" in str(info.value)
    # The city's administrator oversees every room, so may look in.
    overseer = await SignallingClient(ws_url, cookies=await sign_in(base, "admin", ADMIN_PASSWORD)).connect()
    assert (await overseer.join(standby, ""))["room"] == standby
    for client in (mine, intruder, overseer):
        await client.close()


async def test_a_rung_console_is_offered_its_rostered_people_and_the_answer_records_who(rc_server):
    from dutycall.client import SignallingError

    app = rc_server.app
    base = f"http://127.0.0.1:{rc_server.port}"
    admin, rooms = await make_rooms(app, ["城南值班室", "城北值班室"])
    south, north = rooms["城南值班室"][0], rooms["城北值班室"][0]
    await app[ROSTER].set_shift(admin, south, dt.date.today().isoformat(), {
        "leader_name": "王五", "officers": [{"name": "张三", "phone": ""}, {"name": "李四", "phone": ""}]})
    await app[ROSTER].set_shift(admin, north, dt.date.today().isoformat(), {
        "leader_name": "", "officers": [{"name": "北岗甲", "phone": ""}]})
    coordinator = app[COORDINATOR]
    created = await coordinator.create(admin, {"room_ids": [south, north], "answer_window": 60})
    rid = created["id"]
    con_s = await Console().start(base, rooms["城南值班室"][1], created["room"])
    con_n = await Console().start(base, rooms["城北值班室"][1], created["room"])
    await wait_for(lambda: coordinator.is_connected(rid, south) and coordinator.is_connected(rid, north), timeout=20)
    await coordinator.command(admin, rid, "start", {})

    # The ring carries the people rostered in that room today: its officers, then the leader.
    await coordinator.command(admin, rid, "call", {"room_id": south})
    ring = await con_s.client.wait_event("rollcall_ring", timeout=5, duty_room_id=south)
    assert ring["rostered"] == [{"name": "张三", "role": "officer"}, {"name": "李四", "role": "officer"},
                                {"name": "王五", "role": "leader"}]

    # A hostile, empty or overlong name is refused, and nothing is recorded.
    for bad in ("张三\x00", "张\x1b[31m三", "张三\n李四", "\u202e三张", "", "   ", "名" * 65, None, 7):
        with pytest.raises(SignallingError) as info:
            await con_s.client.request("rollcall_answer", roll_call_id=rid, officer=bad)
        assert info.value.code == "invalid_request", bad
    rows = await board_of(app, admin, rid)
    assert rows[south]["status"] == "calling" and rows[south]["officer"] is None
    async with app[DIRECTORY].sessionmaker() as session:
        assert (await session.execute(select(func.count(AttendanceRecord.id)).where(
            AttendanceRecord.roll_call_id == rid))).scalar_one() == 0

    # One of the rostered answers: recorded by name, on the roster.
    await con_s.client.request("rollcall_answer", roll_call_id=rid, officer="李四")
    rows = await board_of(app, admin, rid)
    assert rows[south]["status"] == "on_time" and rows[south]["officer"] == "李四" and rows[south]["on_roster"] is True
    # The other console saw the floor and the attendance, never the ring or the names.
    await con_n.client.wait_event("rollcall_attendance", timeout=5, duty_room_id=south)
    seen = []
    while not con_n.client.events.empty():
        seen.append(con_n.client.events.get_nowait())
    assert not [e for e in seen if e["type"] == "rollcall_ring"]

    # Re-called, "其他人员" answers with a name typed in: recorded, not on the roster.
    await coordinator.command(admin, rid, "call", {"room_id": south})
    await con_s.client.wait_event("rollcall_ring", timeout=5, duty_room_id=south)
    await con_s.client.request("rollcall_answer", roll_call_id=rid, officer="  赵六 ")
    rows = await board_of(app, admin, rid)
    assert rows[south]["officer"] == "赵六" and rows[south]["on_roster"] is False and rows[south]["attempts"] == 2

    # The shift's leader is rostered too.
    await coordinator.command(admin, rid, "call", {"room_id": south})
    await con_s.client.wait_event("rollcall_ring", timeout=5, duty_room_id=south)
    await con_s.client.request("rollcall_answer", roll_call_id=rid, officer="王五")
    assert (await board_of(app, admin, rid))[south]["on_roster"] is True

    # Another room's roster is its own: a name rostered elsewhere is not on this one.
    await coordinator.command(admin, rid, "call", {"room_id": north})
    ring = await con_n.client.wait_event("rollcall_ring", timeout=5, duty_room_id=north)
    assert ring["rostered"] == [{"name": "北岗甲", "role": "officer"}]
    await con_n.client.request("rollcall_answer", roll_call_id=rid, officer="张三")
    rows = await board_of(app, admin, rid)
    assert rows[north]["officer"] == "张三" and rows[north]["on_roster"] is False
    for con in (con_s, con_n):
        await con.close()


async def test_a_call_picks_its_room_and_connectedness_under_the_lock(rc_server):
    # Two clicks at once, "跳过" then "点下一个", while 在线 is being called and no room is
    # pending: the call must apply to the state after the skip (在线 pending again, and
    # connected), not to the one it read before it queued (nothing pending: "not connected").
    app = rc_server.app
    base = f"http://127.0.0.1:{rc_server.port}"
    admin, rooms = await make_rooms(app, ["无人", "在线"])
    nobody, online = rooms["无人"][0], rooms["在线"][0]
    coordinator = app[COORDINATOR]
    created = await coordinator.create(admin, {"room_ids": [nobody, online], "answer_window": 60})
    rid = created["id"]
    con = await Console().start(base, rooms["在线"][1], created["room"])
    await wait_for(lambda: coordinator.is_connected(rid, online), timeout=20)
    await coordinator.command(admin, rid, "start", {})
    await coordinator.command(admin, rid, "call", {})  # 无人 has no console: offline
    board = await coordinator.command(admin, rid, "call", {})
    assert board["current"] == online

    live = coordinator._live[rid]

    def queued() -> int:
        return len(getattr(live.lock, "_waiters", None) or ())  # asyncio.Lock's FIFO of waiting tasks

    # Hold the roll-call's lock so both commands queue on it in this order, then let them run.
    async with live.lock:
        skip = asyncio.ensure_future(coordinator.command(admin, rid, "skip", {}))
        await wait_for(lambda: queued() == 1, timeout=10, what="the skip waits for the lock")
        call = asyncio.ensure_future(coordinator.command(admin, rid, "call", {}))
        await wait_for(lambda: queued() == 2, timeout=10, what="the call waits for the lock")
    await skip
    board = await call
    rows = {r["duty_room_id"]: r for r in board["rooms"]}
    assert board["current"] == online and rows[online]["status"] == "calling", rows
    assert rows[online]["attempts"] == 2 and rows[nobody]["status"] == "offline"
    await con.close()


async def test_evidence_of_an_earlier_attempt_never_lands_on_a_later_answer(aiohttp_server, tmp_path):
    # Evidence records for evidence_gap seconds: a room re-called and answering again within
    # that time must get its own verdict, never the one of the answer it replaced.
    app = create_app(make_config(f"sqlite:///{tmp_path}/gap.sqlite3", evidence_gap=4.0))
    srv = await aiohttp_server(app, host="127.0.0.1")
    base = f"http://127.0.0.1:{srv.port}"
    admin, rooms = await make_rooms(app, ["复点值班室"])
    room = rooms["复点值班室"][0]
    coordinator = app[COORDINATOR]
    created = await coordinator.create(admin, {"room_ids": [room], "answer_window": 60})
    rid = created["id"]
    con = await Console().start(base, rooms["复点值班室"][1], created["room"])
    await wait_for(lambda: coordinator.is_connected(rid, room), timeout=20)
    await coordinator.command(admin, rid, "start", {})
    for officer in ("张三", "李四"):
        await coordinator.command(admin, rid, "call", {"room_id": room})
        await con.client.wait_event("rollcall_ring", timeout=5, duty_room_id=room)
        await con.client.request("rollcall_answer", roll_call_id=rid, officer=officer)
    # Both recordings were running together (4 s each); wait until both are judged.
    live = coordinator._live[rid]
    await wait_for(lambda: not live.tasks, timeout=40, what="evidence judged")
    await con.client.request("ping")  # every event sent before is now in the queue
    verdicts = []
    while not con.client.events.empty():
        event = con.client.events.get_nowait()
        if event["type"] == "rollcall_evidence":
            verdicts.append(event)
    assert [v.get("attempt") for v in verdicts] == [2], verdicts
    async with app[DIRECTORY].sessionmaker() as session:
        row = (await session.execute(select(AttendanceRecord).where(
            AttendanceRecord.roll_call_id == rid))).scalar_one()
    assert row.attempts == 2 and row.officer == "李四" and row.evidence == verdicts[0]["evidence"]
    await con.close()


async def test_an_answer_whose_evidence_was_cut_off_by_a_stop_is_marked_lost(aiohttp_server, tmp_path):
    url = f"sqlite:///{tmp_path}/lost.sqlite3"
    # The evidence of the answer takes a minute: the server stops long before it is written.
    app = create_app(make_config(url, evidence_gap=60.0))
    srv = await aiohttp_server(app, host="127.0.0.1")
    base = f"http://127.0.0.1:{srv.port}"
    admin, rooms = await make_rooms(app, ["断电值班室"])
    room = rooms["断电值班室"][0]
    coordinator = app[COORDINATOR]
    created = await coordinator.create(admin, {"room_ids": [room], "answer_window": 60})
    rid = created["id"]
    con = await Console().start(base, rooms["断电值班室"][1], created["room"])
    await wait_for(lambda: coordinator.is_connected(rid, room), timeout=20)
    await coordinator.command(admin, rid, "start", {})
    await coordinator.command(admin, rid, "call", {})
    await con.client.wait_event("rollcall_ring", timeout=5, duty_room_id=room)
    await con.client.request("rollcall_answer", roll_call_id=rid, officer="张三")
    assert (await board_of(app, admin, rid))[room]["evidence"] is None  # being taken
    # The server stops first (the console still sending): a console that left first would end
    # its stream, and evidence of a stream that ended is "no_video", not what this test is about.
    await srv.close()
    await con.close()

    # At the next start the blank says what happened; it is not taken again later.
    again = create_app(make_config(url))
    await aiohttp_server(again, host="127.0.0.1")
    _, admin = await again[DIRECTORY].sign_in("admin", ADMIN_PASSWORD)
    board = await again[COORDINATOR].board(admin, rid)
    assert board["phase"] == "interrupted"
    assert board["rooms"][0]["status"] == "on_time" and board["rooms"][0]["evidence"] == "lost"


def boards(client: SignallingClient, seen: list[dict]) -> list[dict]:
    """The ``rollcall_board`` events ``client`` was sent so far (every event is kept in ``seen``)."""
    while not client.events.empty():
        seen.append(client.events.get_nowait())
    return [e for e in seen if e.get("type") == "rollcall_board"]


async def test_a_board_is_pushed_to_those_whose_scope_covers_it_and_no_one_else(rc_server):
    app = rc_server.app
    base = f"http://127.0.0.1:{rc_server.port}"
    ws_url = base.replace("http", "ws") + "/ws"
    directory = app[DIRECTORY]
    admin, _ = await make_rooms(app, [])
    districts, rooms = {}, {}
    for code, name in (("D1", "一区"), ("D2", "二区")):
        districts[code] = await directory.create_unit(admin, {"code": code, "name": name, "kind": "district",
                                                              "parent_id": admin.unit_id})
        await directory.create_account(admin, {"username": f"host-{code}", "display_name": f"{name}主任",
                                               "password": "password-1", "role": "host",
                                               "unit_id": districts[code]["id"]})
        room = await directory.create_room(admin, {"unit_id": districts[code]["id"], "name": f"{name}值班室"})
        rooms[code] = (room["id"], (await directory.create_device_credential(admin, room["id"]))["token"])
    await directory.create_account(admin, {"username": "viewer-D1", "display_name": "一区观察员",
                                           "password": "password-1", "role": "viewer",
                                           "unit_id": districts["D1"]["id"]})

    async def account(username: str, password: str = "password-1") -> SignallingClient:
        return await SignallingClient(ws_url, cookies=await sign_in(base, username, password)).connect()

    host1, host2, viewer, city = (await account("host-D1"), await account("host-D2"), await account("viewer-D1"),
                                  await account("admin", ADMIN_PASSWORD))
    _, host1_principal = await directory.sign_in("host-D1", "password-1")
    _, host2_principal = await directory.sign_in("host-D2", "password-1")
    coordinator = app[COORDINATOR]
    rc1 = await coordinator.create(host1_principal, {"room_ids": [rooms["D1"][0]], "answer_window": 60})
    rc2 = await coordinator.create(host2_principal, {"room_ids": [rooms["D2"][0]], "answer_window": 60})

    # Those whose scope covers the roll-call follow it; the reply is the board as it is now.
    for client in (host1, viewer, city):
        following = await client.request("rollcall_follow", roll_call_id=rc1["id"])
        assert following["board"]["id"] == rc1["id"] and following["board"]["phase"] == "scheduled"
    await host2.request("rollcall_follow", roll_call_id=rc2["id"])
    # Another district's host, a console (even of the roll-call's own room) and an unknown id: refused
    # alike, and a refused follow leaves the socket's earlier one in place.
    for roll_call_id in (rc1["id"], 999999):
        with pytest.raises(Exception) as info:
            await host2.request("rollcall_follow", roll_call_id=roll_call_id)
        assert "not_found" in str(info.value)
    console = await Console().start(base, rooms["D1"][1], rc1["room"])
    with pytest.raises(Exception) as info:
        await console.client.request("rollcall_follow", roll_call_id=rc1["id"])
    assert "not_found" in str(info.value)
    for bad in ("1", None, True, 1.5):
        with pytest.raises(Exception) as info:
            await host1.request("rollcall_follow", roll_call_id=bad)
        assert "invalid_request" in str(info.value)

    # The console publishing in the roll-call's room is pushed (在线), then every command and the answer.
    seen: dict[SignallingClient, list[dict]] = {c: [] for c in (host1, host2, viewer, city, console.client)}

    def last_board(client: SignallingClient) -> dict | None:
        pushed = boards(client, seen[client])
        return pushed[-1]["board"] if pushed else None

    def row(client: SignallingClient) -> dict:
        board = last_board(client)
        return board["rooms"][0] if board else {}

    await wait_for(lambda: row(host1).get("connected"), timeout=20, what="the console pushed as connected")
    await coordinator.command(host1_principal, rc1["id"], "start", {})
    await coordinator.command(host1_principal, rc1["id"], "call", {})
    await console.client.wait_event("rollcall_ring", timeout=10)
    await console.client.request("rollcall_answer", roll_call_id=rc1["id"], officer="张三")
    for client in (host1, viewer, city):
        await wait_for(lambda c=client: row(c).get("status") == "on_time" and row(c).get("officer") == "张三",
                       timeout=10, what="the answer pushed")
    # The other district's host kept following its own roll-call, and only that.
    await coordinator.command(host2_principal, rc2["id"], "start", {})
    await wait_for(lambda: (last_board(host2) or {}).get("phase") == "running", timeout=10, what="rc2 pushed")
    assert {e["roll_call_id"] for e in boards(host2, seen[host2])} == {rc2["id"]}
    assert all(e["board"]["id"] == e["roll_call_id"] == rc1["id"]
               for c in (host1, viewer, city) for e in boards(c, seen[c]))
    # The console is told what consoles are told (ring, floor, attendance), never a board.
    boards(console.client, seen[console.client])
    assert not [e for e in seen[console.client] if e["type"] in ("rollcall_board", "rollcall_following")]

    # A socket that closes stops following; the others go on.
    await viewer.close()
    await wait_for(lambda: coordinator.followers.followed(rc1["id"]) == 2, timeout=10, what="the viewer unfollowed")
    for client in (host1, host2, city):
        await client.close()
    await console.close()
    await wait_for(lambda: coordinator.followers.followed(rc1["id"]) == 0, timeout=10)
