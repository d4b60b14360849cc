"""Results of roll-calls: the sheet (CSV, XLSX, PDF) and the supervision notices they draw.

A notice (``supervision``) is issued to the unit of every room that was absent, offline or late
when a roll-call finishes; the roll-call's own unit is the issuing side that closes it.

Sheets and monthly statistics are the host side's supervision documents: a console (which
would otherwise read its whole subtree, other rooms' snapshots included) gets none of them.
Every stored text reaches a cell through :func:`..text.sheet_cell` and a PDF through
:mod:`..pdf`, which escapes it: stored rows are hostile too (formulas, markup, control characters).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import timezone
from ..directory.models import DutyRoom, Unit, as_utc, utcnow
from ..directory.principal import Principal
from ..supervision.models import NoticeKind
from ..supervision.service import NOTICE_DAYS, new_notice
from ..text import sheet_cell
from .errors import Forbidden, NotFound
from .models import AttendanceRecord, Notice, RollCallRecord

NOTICE_OUTCOMES = ("absent", "offline", "late")
LABELS = {"on_time": "按时应答", "late": "迟到", "absent": "缺席", "offline": "离线", "excused": "请假",
          "not_called": "未点到", "pending": "未点名", "calling": "点名中"}
EVIDENCE_LABELS = {"verified": "视频核验通过", "no_face": "未见人脸", "frozen": "画面静止", "looped": "疑似循环录像",
                   "black": "黑屏",
                   "no_video": "无视频", "lost": "证据丢失（服务器中断）", None: ""}
PHASE_LABELS = {"scheduled": "未开始", "running": "进行中", "finished": "已结束", "cancelled": "已取消",
                "interrupted": "已中断"}
SHEET_COLUMNS = ["单位", "值班室", "结果", "应答人", "在值班表中", "应答时间", "视频核验", "说明"]



def refuse_console(who: Principal) -> None:
    """Sheets and statistics are for accounts: a console sees its own room, not its unit's subtree."""
    if who.kind == "device":
        raise Forbidden("rollcall.console_no_results")


class Results:
    """Sheets and the notices a finished roll-call draws, scoped like everything else."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def issue_notices(self, roll_call_id: int, days: int = NOTICE_DAYS) -> int:
        """Notices for the absent, offline and late rooms of a finished roll-call (idempotent)."""
        async with self.sessionmaker() as db:
            record = await db.get(RollCallRecord, roll_call_id)
            if record is None or record.phase != "finished":
                return 0
            rows = (await db.execute(select(AttendanceRecord, Unit).join(
                DutyRoom, DutyRoom.id == AttendanceRecord.duty_room_id).join(Unit).where(
                AttendanceRecord.roll_call_id == roll_call_id,
                AttendanceRecord.outcome.in_(NOTICE_OUTCOMES)))).all()
            existing = {n.duty_room_id for n in (await db.execute(select(Notice).where(
                Notice.roll_call_id == roll_call_id))).scalars()}
            now = utcnow()
            issued = 0
            for attendance, unit in rows:
                if attendance.duty_room_id in existing:
                    continue
                db.add(new_notice(NoticeKind.rollcall, unit.path, record.unit_path, attendance.outcome, now=now,
                                  days=days, roll_call_id=roll_call_id, duty_room_id=attendance.duty_room_id))
                issued += 1
            try:
                await db.commit()
            except IntegrityError:  # issued concurrently: the unique constraint keeps one
                await db.rollback()
                return 0
            return issued

    async def sheet_rows(self, who: Principal, roll_call_id: int) -> tuple[RollCallRecord, list[list[str]]]:
        record, rows, _ = await self._sheet(who, roll_call_id)
        return record, rows

    async def _sheet(self, who: Principal, roll_call_id: int
                     ) -> tuple[RollCallRecord, list[list[str]], list[bytes | None]]:
        """The sheet's rows in call order, and each row's evidence snapshot (JPEG) if any."""
        refuse_console(who)
        async with self.sessionmaker() as db:
            record = await db.get(RollCallRecord, roll_call_id)
            if record is None or not who.covers(record.unit_path):
                raise NotFound("rollcall.not_found", id=roll_call_id)
            order = [r["room_id"] for r in record.state["rooms"]]
            status = {r["room_id"]: r["status"] for r in record.state["rooms"]}
            rooms = {r.id: (r, u) for r, u in (await db.execute(select(DutyRoom, Unit).join(Unit).where(
                DutyRoom.id.in_(order)))).all()}
            attendance = {a.duty_room_id: a for a in (await db.execute(select(AttendanceRecord).where(
                AttendanceRecord.roll_call_id == roll_call_id))).scalars()}
        rows, snapshots = [], []
        for room_id in order:
            room, unit = rooms[room_id]
            a = attendance.get(room_id)
            outcome = status[room_id]
            answer = ["", "", "", ""]
            note = (a.reason or "") if a else ""
            snapshot = None
            if a is not None and a.officer:
                answer = [a.officer, {True: "是", False: "否", None: ""}[a.on_roster], local_time(a.at),
                          EVIDENCE_LABELS.get(a.evidence, "")]
                if outcome in ("on_time", "late"):
                    snapshot = a.snapshot
                else:
                    # Re-called after an answer and not answered again: the final outcome
                    # stands, and the earlier answer is still on the record, not dropped.
                    note = "；".join(x for x in (note, f"此前应答：{answer[0]} {answer[2]} {answer[3]}".strip()) if x)
                    answer = ["", "", "", ""]
            rows.append([unit.name, room.name, LABELS.get(outcome, outcome), answer[0], answer[1], answer[2],
                         answer[3], note])
            snapshots.append(snapshot)
        return record, rows, snapshots

    async def sheet_csv(self, who: Principal, roll_call_id: int) -> bytes:
        _, rows = await self.sheet_rows(who, roll_call_id)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(SHEET_COLUMNS)
        writer.writerows([sheet_cell(c) for c in row] for row in rows)
        return out.getvalue().encode("utf-8-sig")  # with a BOM, so Excel reads the Chinese

    async def sheet_xlsx(self, who: Principal, roll_call_id: int) -> bytes:
        record, rows = await self.sheet_rows(who, roll_call_id)
        # openpyxl is CPU-bound (XML and zip): off the event loop, which is forwarding media.
        return await asyncio.to_thread(render_sheet_xlsx, record.title, rows)

    async def sheet_pdf(self, who: Principal, roll_call_id: int) -> bytes:
        """The sheet as a document to file: summary, every room's row and its snapshot."""
        record, rows, snapshots = await self._sheet(who, roll_call_id)
        # reportlab is CPU-bound: render off the event loop, which is forwarding media.
        return await asyncio.to_thread(render_sheet_pdf, record, rows, snapshots)


def render_sheet_pdf(record: RollCallRecord, rows: list[list[str]], snapshots: list[bytes | None]) -> bytes:
    from ..pdf import Document

    doc = Document(f"{record.title} 点名结果", landscape=True)
    started = local_time(record.started_at) if record.started_at else "未开始"
    ended = local_time(record.ended_at) if record.ended_at else "—"
    doc.paragraph(f"开始：{started}　结束：{ended}　状态：{PHASE_LABELS.get(record.phase, record.phase)}")
    counts = {label: sum(1 for r in rows if r[2] == label) for label in dict.fromkeys(r[2] for r in rows)}
    answered = counts.get(LABELS["on_time"], 0) + counts.get(LABELS["late"], 0)
    doc.paragraph(f"应到 {len(rows)}，实到 {answered}：" + "，".join(f"{k} {v}" for k, v in counts.items()))
    table: list[list[Any]] = [[*SHEET_COLUMNS, "应答画面"]]
    for row, snapshot in zip(rows, snapshots):
        table.append([*row, doc.image(snapshot, 26) if snapshot else ""])
    doc.table(table, [34, 34, 18, 22, 16, 36, 22, 40, 30])
    return doc.render()


def local_time(at: dt.datetime) -> str:
    """A stored UTC time in the deployment's time zone (``--timezone``), as duty staff read it."""
    return timezone.local(as_utc(at)).strftime("%Y-%m-%d %H:%M:%S %z")


def render_sheet_xlsx(title: str, rows: list[list[Any]]) -> bytes:
    """The roll-call sheet as XLSX; every text cell is a string cell, never a formula."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "点名结果"
    for values in ([title], SHEET_COLUMNS, *rows):
        sheet.append([sheet_cell(v) for v in values])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, whatever it looks like: never a formula cell
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for column, width in zip("ABCDEFGH", (20, 24, 10, 12, 10, 22, 14, 24)):
        sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
