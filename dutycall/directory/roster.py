"""The duty roster: shifts per room and date, the holiday XLSX template and upload,
who has not submitted, the PDF handbook and iCalendar feeds.

Libraries: openpyxl (XLSX), reportlab (PDF), icalendar (RFC 5545).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..messages import Msg
from ..pdf import Document
from ..text import sheet_cell, strip_unsafe, unsafe_reason
from .errors import Invalid, NotFound
from .models import DutyRoom, RosterShift, RosterSubmission, Unit, utcnow
from .principal import Principal, PrincipalKind
from .scope import within
from .service import PHONE_RE, Directory, tree_order

COLUMNS = ["单位编码", "单位名称", "值班室编号", "值班室", "日期", "带班领导", "带班领导电话",
           "值班员1", "值班员1电话", "值班员2", "值班员2电话"]
MAX_DAYS = 62
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: Data rows an upload may hold. A template has a row per room per day (≤ MAX_DAYS days), so this
#: fits a whole city of ~320 duty rooms over the longest range; a file beyond it is not a
#: filled template, and reading on would only spend CPU (a 55 KiB file can hold 100k rows).
MAX_ROWS = 20_000
#: The XML inside a 5 MB XLSX may inflate a thousandfold (a zip bomb); openpyxl reads shared
#: strings whole, so the declared uncompressed size is checked before it opens anything. A filled
#: template of MAX_ROWS rows is ~10 MB of XML.
MAX_UNCOMPRESSED_BYTES = 32 * 1024 * 1024
#: Row errors listed in an answer; the rest are counted (100k bad rows made 37 MiB of JSON).
MAX_ERRORS = 100
#: Characters of a cell's value quoted back in an error message.
QUOTE_CHARS = 40
PERIOD_RE = re.compile(r"^[\w\-. ]{1,64}$")


def parse_date(value: object, field: str = "date") -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise Invalid("field.date", field=field, name=field)


def date_range(start: object, end: object) -> tuple[dt.date, dt.date]:
    first, last = parse_date(start, "start"), parse_date(end, "end")
    if last < first or (last - first).days >= MAX_DAYS:
        raise Invalid("roster.date_range", field="end", days=MAX_DAYS)
    return first, last


def check_period(period: object) -> str:
    if not isinstance(period, str) or not PERIOD_RE.match(period.strip()):
        raise Invalid("roster.period", field="period")
    return period.strip()


def shift_json(shift: RosterShift) -> dict[str, Any]:
    return {"duty_room_id": shift.duty_room_id, "date": shift.date.isoformat(), "leader_name": shift.leader_name,
            "leader_phone": shift.leader_phone, "officers": shift.officers, "note": shift.note}


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


class Roster:
    """Roster operations, scoped like the rest of the directory."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def _rooms_in_scope(self, db: AsyncSession, who: Principal) -> list[tuple[DutyRoom, Unit]]:
        query = (select(DutyRoom, Unit).join(Unit)
                 .where(within(Unit.path, who), Unit.active.is_(True), DutyRoom.active.is_(True)))
        if who.kind == PrincipalKind.DEVICE:
            query = query.where(DutyRoom.id == who.duty_room_id)
        rows = (await db.execute(query)).all()
        units = (await db.execute(select(Unit).where(within(Unit.path, who)))).scalars().all()
        order = {u.id: i for i, u in enumerate(tree_order(units))}
        return sorted(rows, key=lambda ru: (order.get(ru[1].id, 0), ru[0].id))

    # -- shifts -------------------------------------------------------------------------

    async def shifts(self, who: Principal, room_id: int | None, start: object, end: object) -> list[dict[str, Any]]:
        who.require("roster.read")
        first, last = date_range(start, end)
        async with self.sessionmaker() as db:
            rooms = {r.id for r, _ in await self._rooms_in_scope(db, who)}
            if room_id is not None:
                if room_id not in rooms:
                    raise NotFound("directory.room_not_found", id=room_id)
                rooms = {room_id}
            rows = (await db.execute(select(RosterShift).where(
                RosterShift.duty_room_id.in_(rooms), RosterShift.date >= first, RosterShift.date <= last)
                .order_by(RosterShift.date, RosterShift.duty_room_id))).scalars().all()
        return [shift_json(s) for s in rows]

    async def set_shift(self, who: Principal, room_id: int, date: object, data: dict[str, Any]) -> dict[str, Any]:
        who.require("roster.write")
        day = parse_date(date)
        officers = data.get("officers")
        if not isinstance(officers, list) or not officers or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) and o["name"].strip()
            and not unsafe_reason(o["name"]) for o in officers
        ):
            raise Invalid("roster.officers", field="officers")
        cleaned = []
        for officer in officers[:6]:
            phone = officer.get("phone") or ""
            if not isinstance(phone, str) or not PHONE_RE.match(phone):
                raise Invalid("roster.officer_phone", field="officers")
            cleaned.append({"name": officer["name"].strip()[:64], "phone": phone.strip()})
        leader_name = data.get("leader_name") or ""
        leader_phone = data.get("leader_phone") or ""
        if (not isinstance(leader_name, str) or unsafe_reason(leader_name) or not isinstance(leader_phone, str)
                or not PHONE_RE.match(leader_phone)):
            raise Invalid("roster.leader", field="leader_phone")
        async with self.sessionmaker() as db:
            rooms = {r.id: u for r, u in await self._rooms_in_scope(db, who)}
            if room_id not in rooms:
                raise NotFound("directory.room_not_found", id=room_id)
            await db.execute(delete(RosterShift).where(RosterShift.duty_room_id == room_id, RosterShift.date == day))
            shift = RosterShift(duty_room_id=room_id, date=day, leader_name=leader_name.strip()[:64],
                                leader_phone=leader_phone.strip(), officers=cleaned)
            db.add(shift)
            Directory.audit(db, who, "set_shift", "roster", f"{room_id}:{day}", rooms[room_id].path)
            await db.commit()
            return shift_json(shift)

    # -- the holiday template and upload ------------------------------------------------------

    async def template(self, who: Principal, period: object, start: object, end: object) -> bytes:
        """An XLSX with a row per room in scope per day, to fill in and upload."""
        who.require("roster.read")
        period = check_period(period)
        first, last = date_range(start, end)
        async with self.sessionmaker() as db:
            rooms = await self._rooms_in_scope(db, who)
        # openpyxl is CPU-bound (a city over 62 days is thousands of rows): build off the loop.
        return await asyncio.to_thread(build_template, period, first, last, rooms)

    async def upload(self, who: Principal, period: object, content: bytes) -> dict[str, Any]:
        """Validate every row; save all of them, or none with the errors of the first bad rows."""
        who.require("roster.write")
        period = check_period(period)
        if len(content) > MAX_UPLOAD_BYTES:
            raise Invalid("roster.file_too_large", mb=MAX_UPLOAD_BYTES // (1024 * 1024))
        async with self.sessionmaker() as db:
            rooms = {r.id: (r, u) for r, u in await self._rooms_in_scope(db, who)}
        # Unzipping, parsing and checking are CPU-bound: a worker thread, so the loop keeps
        # forwarding media and answering while a big file is read.
        shifts, errors, total = await asyncio.to_thread(_parse_and_check, content, rooms)
        if errors:
            raise Invalid("roster.has_errors", errors=errors, total=total)
        if not shifts:
            raise Invalid("roster.empty", errors=[{"row": 0, "message": Msg("roster.empty_row")}])
        async with self.sessionmaker() as db:
            # A room may have left the scope (or been deactivated) while the file was checked.
            current = {r.id for r, _ in await self._rooms_in_scope(db, who)}
            if any(shift.duty_room_id not in current for shift in shifts):
                raise Invalid("roster.rooms_changed")
            days: dict[int, list[dt.date]] = {}
            for shift in shifts:
                days.setdefault(shift.duty_room_id, []).append(shift.date)
            for room_id, dates in days.items():  # one statement per room (≤ 62 distinct dates each)
                await db.execute(delete(RosterShift).where(
                    RosterShift.duty_room_id == room_id, RosterShift.date.in_(dates)))
            db.add_all(shifts)
            units: dict[int, int] = {}
            for shift in shifts:
                unit_id = rooms[shift.duty_room_id][1].id
                units[unit_id] = units.get(unit_id, 0) + 1
            for unit_id, count in units.items():
                await db.execute(delete(RosterSubmission).where(
                    RosterSubmission.unit_id == unit_id, RosterSubmission.period == period))
                db.add(RosterSubmission(unit_id=unit_id, period=period, rows=count,
                                        submitted_by=who.id if who.kind == PrincipalKind.ACCOUNT else None))
            Directory.audit(db, who, "upload_roster", "roster", period, who.unit_path, rows=len(shifts))
            await db.commit()
        return {"saved": len(shifts), "units": len(units), "period": period}

    async def status(self, who: Principal, period: object) -> list[dict[str, Any]]:
        """Every unit in scope that has duty rooms, and whether it submitted for ``period``."""
        who.require("roster.status")
        period = check_period(period)
        async with self.sessionmaker() as db:
            rooms = await self._rooms_in_scope(db, who)
            submissions = {s.unit_id: s for s in (await db.execute(select(RosterSubmission).where(
                RosterSubmission.period == period))).scalars()}
        seen: dict[int, Unit] = {}
        for _, unit in rooms:
            seen.setdefault(unit.id, unit)
        result = []
        for unit in seen.values():
            submission = submissions.get(unit.id)
            result.append({"unit_id": unit.id, "code": unit.code, "name": unit.name,
                           "submitted": submission is not None,
                           "submitted_at": submission.submitted_at.isoformat() if submission else None,
                           "rows": submission.rows if submission else 0})
        return result

    # -- the handbook and calendar feeds ------------------------------------------------------

    async def handbook_pdf(self, who: Principal, title: object, start: object, end: object) -> bytes:
        """The holiday duty handbook: all units in tree order, a table per unit."""
        who.require("roster.read")
        title = check_period(title)
        first, last = date_range(start, end)
        async with self.sessionmaker() as db:
            rooms = await self._rooms_in_scope(db, who)
            shifts = (await db.execute(select(RosterShift).where(
                RosterShift.duty_room_id.in_([r.id for r, _ in rooms]),
                RosterShift.date >= first, RosterShift.date <= last))).scalars().all()
        by_room: dict[int, list[RosterShift]] = {}
        for shift in sorted(shifts, key=lambda s: s.date):
            by_room.setdefault(shift.duty_room_id, []).append(shift)
        # reportlab is CPU-bound: render off the event loop, which is forwarding media.
        return await asyncio.to_thread(render_handbook, title, first, last, rooms, by_room)

    async def calendar(self, who: Principal, room_id: int) -> bytes:
        who.require("roster.read")
        from icalendar import Calendar, Event

        async with self.sessionmaker() as db:
            rooms = {r.id: (r, u) for r, u in await self._rooms_in_scope(db, who)}
            if room_id not in rooms:
                raise NotFound("directory.room_not_found", id=room_id)
            shifts = (await db.execute(select(RosterShift).where(RosterShift.duty_room_id == room_id)
                                       .order_by(RosterShift.date))).scalars().all()
        room, unit = rooms[room_id]
        cal = Calendar()
        cal.add("prodid", "-//dutycall//roster//ZH")
        cal.add("version", "2.0")
        cal.add("x-wr-calname", f"{unit.name} {room.name} 值班表")
        stamp = utcnow()
        for shift in shifts:
            event = Event()
            event.add("uid", f"roster-{room.id}-{shift.date.isoformat()}@dutycall")
            event.add("dtstamp", stamp)
            event.add("dtstart", shift.date)
            event.add("dtend", shift.date + dt.timedelta(days=1))
            names = "、".join(o["name"] for o in shift.officers)
            event.add("summary", f"值班：{names}；带班领导：{shift.leader_name}")
            lines = [f"{o['name']} {o.get('phone', '')}".strip() for o in shift.officers]
            event.add("description", "\n".join(lines + [f"带班领导 {shift.leader_name} {shift.leader_phone}".strip()]))
            event.add("location", f"{unit.name} {room.name}")
            cal.add_component(event)
        return cal.to_ical()


def build_template(period: str, first: dt.date, last: dt.date, rooms: list[tuple[DutyRoom, Unit]]) -> bytes:
    """The template's bytes (CPU-bound: call in a thread). Names are user text: never formulas."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    book = Workbook()
    sheet = book.active
    sheet.title = "值班表"
    sheet.append(COLUMNS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    for room, unit in rooms:
        day = first
        while day <= last:
            sheet.append([sheet_cell(unit.code), sheet_cell(unit.name), room.id, sheet_cell(room.name),
                          day.isoformat()] + [""] * 6)
            day += dt.timedelta(days=1)
    for column, width in zip("ABCDEFGHIJK", (12, 20, 10, 24, 12, 12, 16, 12, 16, 12, 16)):
        sheet.column_dimensions[column].width = width
    help_sheet = book.create_sheet("说明")
    for line in (
        f"节假日值班表：{period}（{first.isoformat()} 至 {last.isoformat()}）",
        "请勿修改前五列（单位编码、单位名称、值班室编号、值班室、日期）。",
        "每行填写带班领导及其电话、至少一名值班员及其电话。电话只能包含数字、空格、+、-。",
        "日期格式为 YYYY-MM-DD。整个文件校验通过后才会保存；有错误时不会保存任何一行。",
    ):
        help_sheet.append([sheet_cell(line)])
    help_sheet.column_dimensions["A"].width = 100
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _quote(value: object) -> str:
    """A cell's value for an error message: printable and short (cells hold up to 32k characters)."""
    text = strip_unsafe(str(value))
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"


def _not_xlsx(reason: Msg) -> Invalid:
    return Invalid("roster.not_xlsx", errors=[{"row": 0, "message": reason}])


def _check_zip(content: bytes) -> None:
    """Refuse an archive that would inflate beyond MAX_UNCOMPRESSED_BYTES, before openpyxl reads it."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise _not_xlsx(Msg("roster.not_xlsx_detail", detail=type(exc).__name__)) from exc
    # zipfile never inflates an entry beyond its declared size, so the sum bounds the work.
    if inflated > MAX_UNCOMPRESSED_BYTES:
        raise _not_xlsx(Msg("roster.unzipped_too_large"))


def _skip_dimension_scan() -> None:
    """Stop openpyxl (3.1) from parsing every sheet whole when a workbook is opened read-only.

    ``ReadOnlyWorksheet.__init__`` looks for a sheet's ``<dimension>``; when the sheet declares
    none before its data (openpyxl's own write-only files, hand-made ones), it parses the whole
    sheet, every sheet, before a single row is read: 100k rows cost seconds, whatever cap the
    reader applies afterwards. Rows are streamed here and capped, so the size is not needed.
    """
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    if not getattr(ReadOnlyWorksheet, "_dutycall_no_size_scan", False):
        ReadOnlyWorksheet._get_size = lambda self: None
        ReadOnlyWorksheet._dutycall_no_size_scan = True


def _read_rows(content: bytes) -> list[tuple[int, list[Any]]]:
    """The non-empty data rows (sheet row number, 11 cells); at most MAX_ROWS rows are read."""
    from openpyxl import load_workbook

    _check_zip(content)
    _skip_dimension_scan()
    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a non-XLSX file
        raise _not_xlsx(Msg("roster.not_xlsx_detail", detail=type(exc).__name__)) from exc
    try:
        sheet = book["值班表"] if "值班表" in book.sheetnames else book.worksheets[0]
        # max_col: a row may declare 16k columns; only the template's are looked at.
        rows = sheet.iter_rows(max_col=len(COLUMNS), values_only=True)
        header = next(rows, None)
        if header is None or [_cell(v) for v in header[: len(COLUMNS)]] != COLUMNS:
            raise Invalid("roster.header",
                          errors=[{"row": 1, "message": Msg("roster.header_expected", columns="、".join(COLUMNS))}])
        result = []
        for number, values in enumerate(rows, start=2):
            if number - 1 > MAX_ROWS:
                # Stop here: reading on is what froze the server (blank rows count too).
                raise Invalid("roster.too_many_rows", max=MAX_ROWS, errors=[
                    {"row": number, "message": Msg("roster.row", row=number,
                                                   problem=Msg("roster.row_limit", max=MAX_ROWS))}])
            cells = [_cell(v) if not isinstance(v, (dt.date, dt.datetime)) else v for v in values[: len(COLUMNS)]]
            cells += [""] * (len(COLUMNS) - len(cells))
            if all(c == "" for c in cells):
                continue
            result.append((number, cells))
        return result
    except Invalid:
        raise
    except Exception as exc:  # a damaged sheet fails while it is read, not when opened
        raise _not_xlsx(Msg("roster.not_xlsx_detail", detail=type(exc).__name__)) from exc
    finally:
        book.close()


def _parse_and_check(content: bytes, rooms: dict[int, tuple[DutyRoom, Unit]]
                     ) -> tuple[list[RosterShift], list[dict[str, Any]], int]:
    """Read and check an upload (CPU-bound: call in a thread): shifts, the listed errors, their total."""
    shifts, errors = _validate(_read_rows(content), rooms)
    total = len(errors)
    if total > MAX_ERRORS:
        rest = total - MAX_ERRORS
        errors = errors[:MAX_ERRORS] + [{"row": 0, "message": Msg("roster.more_errors", rest=rest)}]
    return shifts, errors, total


def _validate(rows: list[tuple[int, list[Any]]],
              rooms: dict[int, tuple[DutyRoom, Unit]]) -> tuple[list[RosterShift], list[dict[str, Any]]]:
    errors: list[dict[str, Any]] = []
    shifts: list[RosterShift] = []
    seen: dict[tuple[int, dt.date], int] = {}

    def error(row: int, key: str, **params: Any) -> None:
        errors.append({"row": row, "message": Msg("roster.row", row=row, problem=Msg(key, **params))})

    for number, cells in rows:
        unit_code, _, room_cell, _, date_cell, leader, leader_phone, o1, p1, o2, p2 = cells
        before = len(errors)
        try:
            room_id = int(str(room_cell))
        except ValueError:
            room_id = -1
        if room_id not in rooms:
            error(number, "roster.row_room", value=_quote(room_cell))
        # The template writes a code that starts like a formula ("-A") with sheet_cell's apostrophe.
        elif str(unit_code).removeprefix("'") != rooms[room_id][1].code:
            error(number, "roster.row_unit", value=_quote(unit_code), code=rooms[room_id][1].code)
        try:
            day = parse_date(date_cell)
        except Invalid:
            day = None
            error(number, "roster.row_date", value=_quote(date_cell))
        if not leader:
            error(number, "roster.row_leader")
        for label, name in (("leader", leader), ("officer1", o1), ("officer2", o2)):
            if unsafe_reason(str(name)):
                error(number, "roster.row_control", column=Msg(f"roster.col.{label}"))
        for label, phone in (("leader_phone", leader_phone), ("officer1_phone", p1), ("officer2_phone", p2)):
            if phone and not PHONE_RE.match(str(phone)):
                error(number, "roster.row_phone", column=Msg(f"roster.col.{label}"), value=_quote(phone))
        if not o1 and not o2:
            error(number, "roster.row_officer")
        for name, phone, label in ((o1, p1, "officer1_phone"), (o2, p2, "officer2_phone")):
            if name and not phone:
                error(number, "roster.row_officer_phone", column=Msg(f"roster.col.{label}"))
        if day is not None and room_id in rooms:
            key = (room_id, day)
            if key in seen:
                error(number, "roster.row_duplicate", other=seen[key])
            seen.setdefault(key, number)
        if len(errors) == before and day is not None:
            officers = [{"name": str(n)[:64], "phone": str(p)} for n, p in ((o1, p1), (o2, p2)) if n]
            shifts.append(RosterShift(duty_room_id=room_id, date=day, leader_name=str(leader)[:64],
                                      leader_phone=str(leader_phone), officers=officers))
    return shifts, errors


def render_handbook(title: str, first: dt.date, last: dt.date, rooms: list[tuple[DutyRoom, Unit]],
                    by_room: dict[int, list[RosterShift]]) -> bytes:
    doc = Document(f"{title} 值班手册")
    doc.paragraph(f"{first.isoformat()} 至 {last.isoformat()}")
    for room, unit in rooms:
        doc.paragraph(f"{unit.name}　{room.name}　电话：{room.phone or '—'}")
        data = [["日期", "带班领导", "值班员"]]
        for shift in by_room.get(room.id, []):
            officers = "，".join(f"{o['name']} {o.get('phone', '')}".strip() for o in shift.officers)
            data.append([shift.date.isoformat(), f"{shift.leader_name} {shift.leader_phone}".strip(), officers])
        if len(data) == 1:
            data.append(["—", "未报送", ""])
        doc.table(data, [28, 50, 100])
    return doc.render()
