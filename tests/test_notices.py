"""Supervision notices and roll-call sheets: issued on finish, answered, closed; exports hold the rows."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import time

import pytest
from openpyxl import load_workbook

from dutycall.errors import Forbidden, Invalid, NotFound
from dutycall.rollcall.models import Notice
from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.keys import SUPERVISION
from dutycall.web.rollcalls import COORDINATOR, RESULTS

from .conftest import ADMIN_PASSWORD, make_config
from .test_exports import Api
from .utils import wait_for


@pytest.fixture
async def finished(finished_on):
    """A finished roll-call of two district rooms, both offline, and one excused agency room."""
    return finished_on[1:]


@pytest.fixture
async def finished_on(aiohttp_server, tmp_path):
    """The server, and what ``finished`` gives."""
    app = create_app(make_config(f"sqlite:///{tmp_path}/n.sqlite3"))
    server = await aiohttp_server(app, host="127.0.0.1")
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    ids = {}
    for code, parent in (("D1", admin.unit_id), ("S1", "D1"), ("D2", admin.unit_id)):
        kind = "street" if code.startswith("S") else "district"
        unit = await directory.create_unit(admin, {"code": code, "name": f"{code}单位", "kind": kind,
                                                   "parent_id": ids.get(parent, parent)})
        ids[code] = unit["id"]
        ids[f"room{code}"] = (await directory.create_room(admin, {"unit_id": unit["id"], "name": f"{code}值班室"}))["id"]
    for username, role, unit in (("officer1", "duty_officer", "S1"), ("officer2", "duty_officer", "D2")):
        await directory.create_account(admin, {"username": username, "display_name": username, "role": role,
                                               "password": "password-1", "unit_id": ids[unit]})
    coordinator = app[COORDINATOR]
    created = await coordinator.create(admin, {"room_ids": [ids["roomS1"], ids["roomD1"], ids["roomD2"]]})
    rid = created["id"]
    for action, data in (("start", {}), ("call", {}), ("call", {}), ("excuse", {"room_id": ids["roomD2"], "reason": "抢险"}),
                         ("finish", {})):
        await coordinator.command(admin, rid, action, data)
    return server, app, admin, ids, rid


async def test_notices_are_issued_answered_and_closed(finished):
    app, admin, ids, rid = finished
    results, supervision = app[RESULTS], app[SUPERVISION]
    # Issued by the coordinator's on_finished hook, in the background.
    async def issued() -> list:
        found = await supervision.notices(admin)
        return found if len(found) >= 2 else []

    notices = await wait_for(issued, what="the supervision notices")
    assert sorted(n["duty_room_id"] for n in notices) == sorted([ids["roomS1"], ids["roomD1"]])
    assert all(n["outcome"] == "offline" and n["status"] == "open" and not n["overdue"] for n in notices)
    assert await results.issue_notices(rid) == 0  # idempotent

    directory = app[DIRECTORY]
    _, officer1 = await directory.sign_in("officer1", "password-1")
    _, officer2 = await directory.sign_in("officer2", "password-1")
    mine = await supervision.notices(officer1)
    assert [n["duty_room_id"] for n in mine] == [ids["roomS1"]]
    assert await supervision.notices(officer2) == []  # D2 was excused: nothing to answer
    notice_id = mine[0]["id"]
    with pytest.raises(NotFound):
        await supervision.respond(officer2, notice_id, "不是我的")
    with pytest.raises(Invalid):
        await supervision.respond(officer1, notice_id, "   ")
    with pytest.raises(Invalid):
        await supervision.close(admin, notice_id)  # not answered yet
    answered = await supervision.respond(officer1, notice_id, "网络故障，已更换路由器并加强检查。")
    assert answered["status"] == "responded"
    with pytest.raises(Forbidden):
        await supervision.close(officer1, notice_id)  # a unit cannot close its own notice
    closed = await supervision.close(admin, notice_id)
    assert closed["status"] == "closed"
    with pytest.raises(Invalid):
        await supervision.respond(officer1, notice_id, "再补充")


async def test_sheet_exports_hold_the_right_rows(finished):
    app, admin, ids, rid = finished
    results = app[RESULTS]
    rows = list(csv.reader(io.StringIO((await results.sheet_csv(admin, rid)).decode("utf-8-sig"))))
    assert rows[0][:3] == ["单位", "值班室", "结果"]
    assert [(r[1], r[2]) for r in rows[1:]] == [("S1值班室", "离线"), ("D1值班室", "离线"), ("D2值班室", "请假")]
    assert rows[3][7] == "抢险"
    book = load_workbook(io.BytesIO(await results.sheet_xlsx(admin, rid)))
    sheet_rows = list(book.active.iter_rows(values_only=True))
    assert [r[2] for r in sheet_rows[2:]] == ["离线", "离线", "请假"]
    directory = app[DIRECTORY]
    _, officer2 = await directory.sign_in("officer2", "password-1")
    with pytest.raises(NotFound):
        await results.sheet_csv(officer2, rid)  # the city's roll-call is outside a street's scope


async def test_monthly_statistics_roll_up_and_trend_chart(finished):
    from dutycall.web.rollcalls import STATISTICS

    app, admin, ids, rid = finished
    stats = app[STATISTICS]
    month = dt.datetime.now().strftime("%Y-%m")  # the server's local month
    report = await stats.monthly(admin, month)
    assert report["total"]["offline"] == 2 and report["total"]["excused"] == 1
    assert report["total"]["attendance_rate"] == 0.0
    units = {u["code"]: u for u in report["units"]}
    assert units["S1"]["offline"] == 1 and units["D2"]["excused"] == 1 and units["D2"]["attendance_rate"] is None
    districts = {d["code"]: d for d in report["districts"]}
    assert districts["D1"]["offline"] == 2 and districts["D2"]["excused"] == 1  # D1 includes its street
    # A district officer's view is its own subtree only.
    directory = app[DIRECTORY]
    _, officer1 = await directory.sign_in("officer1", "password-1")
    assert [u["code"] for u in (await stats.monthly(officer1, month))["units"]] == ["S1"]
    png = await stats.trend_png(admin, month)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (300, 720, 3)
    # Today's point (0%) is drawn in the series colour (#1f5aa8, BGR 168/90/31) in the lower part;
    # an empty month has no such pixels.
    series = np.all(np.abs(image.astype(int) - (168, 90, 31)) < 40, axis=2)
    assert series.sum() > 20 and np.argwhere(series)[:, 0].mean() > 150
    empty = cv2.imdecode(np.frombuffer(await stats.trend_png(admin, "2001-01"), np.uint8), cv2.IMREAD_COLOR)
    assert not np.all(np.abs(empty.astype(int) - (168, 90, 31)) < 40, axis=2).any()
    with pytest.raises(Invalid):
        await stats.monthly(admin, "November")


def test_months_are_counted_in_the_deployment_s_zone():
    from dutycall import timezone
    from dutycall.rollcall.statistics import month_bounds

    before = timezone.zone()
    timezone.set_zone("Asia/Shanghai")  # --timezone (tests/test_timezone.py), not the process's TZ
    try:
        first, following = month_bounds("2026-12")
        # 1 December 00:00 in Beijing is still 30 November in UTC.
        assert first.astimezone(dt.UTC) == dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC)
        assert following.astimezone(dt.UTC) == dt.datetime(2026, 12, 31, 16, tzinfo=dt.UTC)
    finally:
        timezone.set_zone(before)


async def test_only_the_notified_unit_responds_and_only_a_host_above_it_closes(finished_on):
    server, app, admin, ids, rid = finished_on
    directory = app[DIRECTORY]
    for username, role, unit in (("hostD1", "host", "D1"), ("hostS1", "host", "S1")):
        await directory.create_account(admin, {"username": username, "display_name": username, "role": role,
                                               "password": "password-1", "unit_id": ids[unit]})
    deadline = time.monotonic() + 10
    while len(notices := await app[SUPERVISION].notices(admin)) < 2:  # issued in the background
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    street = next(n["id"] for n in notices if n["duty_room_id"] == ids["roomS1"])
    district = next(n["id"] for n in notices if n["duty_room_id"] == ids["roomD1"])
    base = f"http://127.0.0.1:{server.port}"
    users = {name: await Api.account(base, name, ADMIN_PASSWORD if name == "admin" else "password-1")
             for name in ("admin", "hostD1", "hostS1", "officer1", "officer2")}

    async def stored(notice_id: int) -> tuple:
        async with directory.sessionmaker() as db:
            n = await db.get(Notice, notice_id)
            return n.status, n.response, n.responded_by, n.closed_at, n.closed_by

    async def refused(user: str, notice_id: int, action: str, status: int) -> None:
        before = await stored(notice_id)
        body = {"response": f"{user}代为回复"} if action == "respond" else None
        got, reply = await users[user].call("POST", f"/api/notices/{notice_id}/{action}", body)
        assert got == status, (user, action, got, reply)
        assert await stored(notice_id) == before  # nothing changed

    async def flags(user: str, notice_id: int) -> tuple[bool, bool]:
        _, listed = await users[user].call("GET", "/api/notices")
        notice = next(n for n in listed if n["id"] == notice_id)
        return notice["may_respond"], notice["may_close"]

    try:
        # The street's notice: hosts above the street see it but cannot write the street's answer.
        await refused("hostD1", street, "respond", 403)
        await refused("admin", street, "respond", 403)
        await refused("officer2", street, "respond", 404)  # another district: not even visible
        await refused("officer1", street, "close", 403)  # not a host, and the notified unit itself
        assert await flags("admin", street) == (False, False) and await flags("officer1", street) == (True, False)
        status, _ = await users["officer1"].call("POST", f"/api/notices/{street}/respond", {"response": "已整改"})
        assert status == 200
        # The street's own host is the notified unit: it cannot sign off its own answer; nor can a
        # district host who did not run the city's roll-call.
        await refused("hostS1", street, "close", 403)
        await refused("hostD1", street, "close", 403)
        await refused("officer1", street, "close", 403)
        assert await flags("hostS1", street) == (True, False) and await flags("admin", street) == (False, True)
        status, closed = await users["admin"].call("POST", f"/api/notices/{street}/close")
        assert status == 200 and closed["status"] == "closed"
        assert (await stored(street))[0] == "closed" and (await stored(street))[4] == admin.id

        # The district's own notice: its host answers for it (his own unit) but cannot close it.
        await refused("hostS1", district, "respond", 404)  # below the district: out of scope
        status, _ = await users["hostD1"].call("POST", f"/api/notices/{district}/respond", {"response": "已加强值守"})
        assert status == 200
        await refused("hostD1", district, "close", 403)
        status, _ = await users["admin"].call("POST", f"/api/notices/{district}/close")
        assert status == 200
    finally:
        for api in users.values():
            await api.close()
