"""The duty roster: template, valid and broken uploads, submission status, handbook, calendar."""

from __future__ import annotations

import io

from icalendar import Calendar
from openpyxl import load_workbook
from pypdf import PdfReader

from .conftest import ADMIN_PASSWORD
from .test_directory_api import world  # noqa: F401  (fixture)

PERIOD = "2027春节"
RANGE = "start=2027-02-10&end=2027-02-12"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _template(api) -> bytes:
    status, body = await api.call("GET", f"/api/roster/template.xlsx?period={PERIOD}&{RANGE}")
    assert status == 200, body
    return body


def _fill(template: bytes, edit=None) -> bytes:
    book = load_workbook(io.BytesIO(template))
    sheet = book["值班表"]
    for i, row in enumerate(sheet.iter_rows(min_row=2), start=2):
        row[5].value = f"领导{i}"
        row[6].value = "13900000000"
        row[7].value = f"值班员{i}"
        row[8].value = "13800000000"
        if edit:
            edit(i, row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def _upload(api, content: bytes):
    resp = await api.client.post(f"/api/roster/upload?period={PERIOD}", data=content,
                                 headers={"X-CSRF-Token": api.csrf, "Content-Type": XLSX})
    return resp.status, await resp.json()


async def test_template_lists_the_rooms_in_scope_for_each_day(world):
    host = await world.client("hostA")
    book = load_workbook(io.BytesIO(await _template(host)))
    rows = list(book["值班表"].iter_rows(values_only=True))
    assert rows[0][:5] == ("单位编码", "单位名称", "值班室编号", "值班室", "日期")
    # District A's host: rooms of A and A1, three days each, in unit-tree order.
    assert [(r[0], r[4]) for r in rows[1:]] == [
        ("A", "2027-02-10"), ("A", "2027-02-11"), ("A", "2027-02-12"),
        ("A1", "2027-02-10"), ("A1", "2027-02-11"), ("A1", "2027-02-12")]
    await host.close()


async def test_broken_upload_reports_every_row_in_chinese_and_saves_nothing(world):
    host = await world.client("hostA")
    template = await _template(host)

    def break_rows(i, row):
        if i == 3:
            row[4].value = "2027-13-45"
        if i == 4:
            row[7].value = None
            row[8].value = None
        if i == 5:
            row[2].value = world.ids["roomB1"]  # another district's room
        if i == 6:
            row[6].value = "电话号码"

    status, body = await _upload(host, _fill(template, break_rows))
    assert status == 422
    messages = [e["message"] for e in body["error"]["errors"]]
    assert any(m.startswith("第3行") and "日期" in m for m in messages), messages
    assert any(m.startswith("第4行") and "至少填写一名值班员" in m for m in messages), messages
    assert any(m.startswith("第5行") and "不在您的管辖范围内" in m for m in messages), messages
    assert any(m.startswith("第6行") and "不是有效的电话号码" in m for m in messages), messages
    assert "未保存" in body["error"]["message"]
    status, shifts = await host.call("GET", f"/api/roster?{RANGE}")
    assert shifts == []
    status, body = await _upload(host, b"this is not a spreadsheet")
    assert status == 422 and "xlsx" in body["error"]["message"].lower()
    await host.close()


async def test_valid_upload_saves_and_marks_the_units_submitted(world):
    host = await world.client("hostA")
    status, body = await _upload(host, _fill(await _template(host)))
    assert status == 200 and body["saved"] == 6 and body["units"] == 2
    status, shifts = await host.call("GET", f"/api/roster?room_id={world.ids['roomA1']}&{RANGE}")
    assert [s["date"] for s in shifts] == ["2027-02-10", "2027-02-11", "2027-02-12"]
    assert shifts[0]["officers"][0]["phone"] == "13800000000"

    city = await world.client("admin", ADMIN_PASSWORD)
    status, report = await city.call("GET", f"/api/roster/status?period={PERIOD}")
    submitted = {r["code"]: r["submitted"] for r in report}
    assert submitted == {"A": True, "A1": True, "B": False, "B1": False}
    # Uploading again replaces, never duplicates.
    status, body = await _upload(host, _fill(await _template(host)))
    status, shifts = await host.call("GET", f"/api/roster?{RANGE}")
    assert len(shifts) == 6
    # A duty officer cannot see the submission report.
    officer = await world.client("officerA1")
    status, _ = await officer.call("GET", f"/api/roster/status?period={PERIOD}")
    assert status == 403
    for api in (host, city, officer):
        await api.close()


async def test_handbook_pdf_holds_the_roster_in_unit_tree_order(world):
    host = await world.client("hostA")
    await _upload(host, _fill(await _template(host)))
    city = await world.client("admin", ADMIN_PASSWORD)
    status, pdf = await city.call("GET", f"/api/roster/handbook.pdf?period={PERIOD}&{RANGE}")
    assert status == 200 and pdf[:4] == b"%PDF"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert f"{PERIOD} 值班手册" in text
    # Districts in code order, each followed by its streets; B has not reported.
    positions = [text.index(name) for name in ("福田区值班室", "园岭街道值班室", "罗湖区值班室", "东门街道值班室")]
    assert positions == sorted(positions), text
    assert "值班员2" in text and "领导2" in text and "未报送" in text
    await host.close()
    await city.close()


async def test_calendar_feed_of_a_room(world):
    host = await world.client("hostA")
    await _upload(host, _fill(await _template(host)))
    status, body = await host.call("GET", f"/api/rooms/{world.ids['roomA1']}/roster.ics")
    assert status == 200
    events = [c for c in Calendar.from_ical(body).walk("VEVENT")]
    assert [str(e["dtstart"].dt) for e in events] == ["2027-02-10", "2027-02-11", "2027-02-12"]
    assert "值班员" in str(events[0]["summary"])
    status, _ = await host.call("GET", f"/api/rooms/{world.ids['roomB1']}/roster.ics")
    assert status == 404
    await host.close()
