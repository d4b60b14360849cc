"""Exports of hostile stored text (CSV/XLSX formulas, PDF markup, control characters) and a console's reach."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select, update

from dutycall.directory.models import DutyRoom, Unit
from dutycall.rollcall.models import AttendanceRecord, Notice, RollCallRecord
from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.keys import SUPERVISION
from dutycall.web.rollcalls import COORDINATOR

from .conftest import ADMIN_PASSWORD, make_config
from .utils import wait_for

PASSWORD = "password-123"
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1)", "-1+2"]
FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


class Api:
    """One signed-in client (account or console) of the real server, with its cookie and CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    @classmethod
    async def account(cls, base: str, username: str, password: str = PASSWORD) -> Api:
        api = cls(base)
        async with api.session.post(f"{base}/api/session", json={"username": username, "password": password}) as r:
            assert r.status == 200, await r.text()
            api.csrf = (await r.json())["csrf_token"]
        return api

    @classmethod
    async def console(cls, base: str, token: str) -> Api:
        api = cls(base)
        async with api.session.post(f"{base}/api/device-session", json={"token": token}) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
            assert body["principal"]["kind"] == "device"
            api.csrf = body["csrf_token"]
        return api

    async def call(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if method != "GET" else {}
        async with self.session.request(method, self.base + path, json=json, headers=headers) as r:
            body = await r.json() if r.content_type == "application/json" else await r.read()
            return r.status, body

    async def close(self) -> None:
        await self.session.close()


@dataclass
class District:
    app: Any
    base: str
    ids: dict[str, int]
    rid: int
    console_token: str

    @property
    def db(self) -> Any:
        return self.app[DIRECTORY].sessionmaker


@pytest.fixture
async def district(aiohttp_server, tmp_path):
    """District D (a room) over street S (two rooms); D's host ran a roll-call of all three: D's room and
    S's first room offline, S's second excused. D's room has a console credential."""
    app = create_app(make_config(f"sqlite:///{tmp_path}/e.sqlite3"))
    server = await aiohttp_server(app, host="127.0.0.1")
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    ids: dict[str, int] = {}
    ids["D"] = (await directory.create_unit(admin, {"code": "D", "name": "东区", "kind": "district",
                                                    "parent_id": admin.unit_id}))["id"]
    ids["S"] = (await directory.create_unit(admin, {"code": "S", "name": "南街道", "kind": "street",
                                                    "parent_id": ids["D"]}))["id"]
    for key, unit, name in (("roomD", "D", "东区值班室"), ("roomS1", "S", "南街道一室"), ("roomS2", "S", "南街道二室")):
        ids[key] = (await directory.create_room(admin, {"unit_id": ids[unit], "name": name}))["id"]
    for username, role, unit in (("hostD", "host", "D"), ("officerS", "duty_officer", "S")):
        await directory.create_account(admin, {"username": username, "display_name": username, "role": role,
                                               "password": PASSWORD, "unit_id": ids[unit]})
    token = (await directory.create_device_credential(admin, ids["roomD"], "东区值班台"))["token"]
    _, host = await directory.sign_in("hostD", PASSWORD)
    coordinator = app[COORDINATOR]
    room_ids = [ids["roomD"], ids["roomS1"], ids["roomS2"]]
    rid = (await coordinator.create(host, {"title": "东区点名", "room_ids": room_ids}))["id"]
    for action, data in (("start", {}), ("call", {}), ("call", {}),
                         ("excuse", {"room_id": ids["roomS2"], "reason": "抢险"}), ("finish", {})):
        await coordinator.command(host, rid, action, data)
    async def issued() -> bool:  # in the background, on finish
        return len(await app[SUPERVISION].notices(host)) >= 2

    await wait_for(issued, what="the supervision notices")
    return District(app, f"http://127.0.0.1:{server.port}", ids, rid, token)


async def set_texts(d: District, unit_names: dict[str, str] | None = None, room_names: dict[str, str] | None = None,
                    title: str | None = None, reason: str | None = None, officer: str | None = None) -> None:
    """Store hostile texts directly, as rows written before any input check would look."""
    async with d.db() as db:
        for key, name in (unit_names or {}).items():
            await db.execute(update(Unit).where(Unit.id == d.ids[key]).values(name=name))
        for key, name in (room_names or {}).items():
            await db.execute(update(DutyRoom).where(DutyRoom.id == d.ids[key]).values(name=name))
        record = await db.get(RollCallRecord, d.rid)
        if title is not None:
            record.title = title
        if reason is not None:
            await db.execute(update(AttendanceRecord).where(AttendanceRecord.roll_call_id == d.rid,
                             AttendanceRecord.duty_room_id == d.ids["roomS2"]).values(reason=reason))
        if officer is not None:
            # D's room answered: its officer's name shows in a cell of its own.
            await db.execute(update(AttendanceRecord).where(AttendanceRecord.roll_call_id == d.rid,
                             AttendanceRecord.duty_room_id == d.ids["roomD"]).values(outcome="on_time",
                                                                                       officer=officer))
            state = dict(record.state)
            state["rooms"] = [{**r, "status": "on_time"} if r["room_id"] == d.ids["roomD"] else r
                              for r in state["rooms"]]
            record.state = state
        await db.commit()


async def test_formula_texts_are_text_in_csv_and_xlsx(district):
    d = district
    await set_texts(d, unit_names={"D": FORMULAS[0], "S": FORMULAS[1]},
                    room_names={"roomD": FORMULAS[1], "roomS1": FORMULAS[2], "roomS2": FORMULAS[3]},
                    title=FORMULAS[0], reason=FORMULAS[2], officer=FORMULAS[3])
    host = await Api.account(d.base, "hostD")
    try:
        status, body = await host.call("GET", f"/api/rollcalls/{d.rid}/sheet.csv")
        assert status == 200
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        cells = [c for row in rows for c in row]
        assert not [c for c in cells if c.startswith(FORMULA_START)], rows
        assert rows[1][:4] == ["'" + FORMULAS[0], "'" + FORMULAS[1], "按时应答", "'" + FORMULAS[3]]
        assert rows[2][:2] == ["'" + FORMULAS[1], "'" + FORMULAS[2]]
        assert rows[3][1] == "'" + FORMULAS[3] and rows[3][7] == "'" + FORMULAS[2]

        status, body = await host.call("GET", f"/api/rollcalls/{d.rid}/sheet.xlsx")
        assert status == 200
        sheet = load_workbook(io.BytesIO(body)).active
        cells = [c for row in sheet.iter_rows() for c in row if c.value is not None]
        assert [c.coordinate for c in cells if c.data_type != "s"] == []  # no formula cell, nothing but text
        assert not [c.value for c in cells if c.value.startswith(FORMULA_START)]
        values = [[c.value for c in row] for row in sheet.iter_rows()]
        assert values[0][0] == "'" + FORMULAS[0]  # the title
        assert values[2][:4] == ["'" + FORMULAS[0], "'" + FORMULAS[1], "按时应答", "'" + FORMULAS[3]]
        assert values[4][1] == "'" + FORMULAS[3] and values[4][7] == "'" + FORMULAS[2]
    finally:
        await host.close()


def pdf_images(pdf: bytes) -> int:
    """How many images the PDF's pages draw."""
    count = 0
    for page in PdfReader(io.BytesIO(pdf)).pages:
        xobjects = page.get("/Resources", {}).get("/XObject", {})
        count += sum(1 for x in xobjects.values() if x.get_object().get("/Subtype") == "/Image")
    return count


def pdf_text(pdf: bytes) -> str:
    """The PDF's text without white space (table cells wrap long names over lines)."""
    return "".join("".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages)


def bare(text: str) -> str:
    return "".join(text.split())


async def test_pdf_markup_in_titles_and_names_is_text(district, tmp_path):
    import cv2
    import numpy as np

    d = district
    jpeg = tmp_path / "secret.jpg"
    jpeg.write_bytes(cv2.imencode(".jpg", np.full((40, 40, 3), 128, np.uint8))[1].tobytes())
    fetched: list[str] = []

    async def listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fetched.append((await reader.read(200)).decode("latin-1"))
        writer.close()

    trap = await asyncio.start_server(listener, "127.0.0.1", 0)
    port = trap.sockets[0].getsockname()[1]
    host = await Api.account(d.base, "hostD")
    try:
        titles = [f'<img src="{jpeg}"/>', '<img src="/etc/passwd"/>', f'<img src="http://127.0.0.1:{port}/x"/>',
                  '<img src="http://127.0.0.1:1/x"/>', "<b>未闭合", '<font name="nosuchfont">字</font>']
        await set_texts(d, room_names={"roomS1": f'<img src="{jpeg}" width="9"/>'})
        for title in titles:
            await set_texts(d, title=title)
            status, body = await host.call("GET", f"/api/rollcalls/{d.rid}/sheet.pdf")
            assert status == 200, (title, body)
            assert body.startswith(b"%PDF")
            assert pdf_images(body) == 0, title  # no snapshots were taken: no image at all
            text = pdf_text(body)
            assert bare(title) in text, text
            assert bare(f'<img src="{jpeg}" width="9"/>') in text
        # The roster handbook goes through the same document helper.
        status, body = await host.call("GET", "/api/roster/handbook.pdf?period=2027春节&start=2027-02-01&end=2027-02-02")
        assert status == 200 and pdf_images(body) == 0
        assert bare(f'<img src="{jpeg}" width="9"/>') in pdf_text(body)
        assert fetched == []  # the server fetched nothing
    finally:
        await host.close()
        trap.close()


async def test_control_characters_in_stored_names_never_break_exports(district):
    d = district
    await set_texts(d, unit_names={"S": "南\x0b街道"}, room_names={"roomS1": "一\x0b号\x00室"},
                    title="点名\x00\x0b", reason="抢\x0b险\x00")
    host = await Api.account(d.base, "hostD")
    try:
        status, body = await host.call("GET", f"/api/rollcalls/{d.rid}/sheet.csv")
        assert status == 200
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert rows[2][:2] == ["南街道", "一号室"] and rows[3][7] == "抢险"
        status, body = await host.call("GET", f"/api/rollcalls/{d.rid}/sheet.xlsx")
        assert status == 200
        values = [[c.value for c in row] for row in load_workbook(io.BytesIO(body)).active.iter_rows()]
        assert values[0][0] == "点名" and values[3][:2] == ["南街道", "一号室"]
        status, body = await host.call("GET", f"/api/rollcalls/{d.rid}/sheet.pdf")
        assert status == 200 and "一号室" in pdf_text(body)
        status, body = await host.call("GET", "/api/roster/handbook.pdf?period=2027春节&start=2027-02-01&end=2027-02-02")
        assert status == 200 and "一号室" in pdf_text(body)
    finally:
        await host.close()


async def test_a_console_reads_only_its_own_room(district):
    d = district
    console = await Api.console(d.base, d.console_token)
    host = await Api.account(d.base, "hostD")
    month = time.strftime("%Y-%m")
    try:
        # The district room's console may not take its district's sheets or statistics (its streets' rows).
        for path in (f"/api/rollcalls/{d.rid}/sheet.csv", f"/api/rollcalls/{d.rid}/sheet.xlsx",
                     f"/api/rollcalls/{d.rid}/sheet.pdf", f"/api/statistics?month={month}",
                     f"/api/statistics/trend.png?month={month}", f"/api/rollcalls/{d.rid}",
                     f"/api/rollcalls/{d.rid}/precheck"):
            status, body = await console.call("GET", path)
            assert status == 403, (path, status, body)
            status, _ = await host.call("GET", path)
            assert status == 200, path
        # Notices: its own room's only, and a console does not write the unit's response.
        status, notices = await console.call("GET", "/api/notices")
        assert status == 200 and [n["duty_room_id"] for n in notices] == [d.ids["roomD"]]
        assert not notices[0]["may_respond"] and not notices[0]["may_close"]
        status, all_notices = await host.call("GET", "/api/notices")
        assert sorted(n["duty_room_id"] for n in all_notices) == sorted([d.ids["roomD"], d.ids["roomS1"]])
        street = next(n for n in all_notices if n["duty_room_id"] == d.ids["roomS1"])
        for notice_id in (notices[0]["id"], street["id"]):
            status, _ = await console.call("POST", f"/api/notices/{notice_id}/respond", {"response": "值班台回复"})
            assert status == 403
            status, _ = await console.call("POST", f"/api/notices/{notice_id}/close")
            assert status == 403
        async with d.db() as db:
            stored = (await db.execute(select(Notice))).scalars().all()
        assert all(n.status == "open" and n.response is None for n in stored)
    finally:
        await console.close()
        await host.close()
