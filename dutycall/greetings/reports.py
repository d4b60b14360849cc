"""The receipt report of a greeting: CSV, XLSX and PDF, with the rooms that missed it listed for
follow-up. Stored texts reach cells through :func:`..text.sheet_cell` and the PDF through
:mod:`..pdf` (which escapes them); XLSX and PDF are rendered in a worker thread, never on the
event loop that forwards media."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import Any

from .. import timezone
from ..directory.principal import Principal
from ..text import sheet_cell
from .service import Greetings

COLUMNS = ["单位", "值班室", "收看情况", "首次加入时间", "收看时长（秒）", "加入次数"]
STATUS_LABELS = {"scheduled": "未开始", "live": "进行中", "ended": "已结束", "cancelled": "已取消"}


def local_time(iso: str | None) -> str:
    if not iso:
        return ""
    return timezone.local(dt.datetime.fromisoformat(iso)).strftime("%Y-%m-%d %H:%M:%S %z")


def rows_of(receipts: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r["unit"], r["room"], "未收看（离线）" if r["offline"] else "已收看", local_time(r["first_joined_at"]),
             r["watched_seconds"], r["joins"]] for r in receipts]


class Reports:
    """A greeting's receipts as documents, scoped like everything else (``Greetings.detail``)."""

    def __init__(self, greetings: Greetings) -> None:
        self.greetings = greetings

    async def csv(self, who: Principal, greeting_id: int) -> bytes:
        detail = await self.greetings.detail(who, greeting_id)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        writer.writerows([sheet_cell(c) for c in row] for row in rows_of(detail["receipts"]))
        return out.getvalue().encode("utf-8-sig")  # with a BOM, so Excel reads the Chinese

    async def xlsx(self, who: Principal, greeting_id: int) -> bytes:
        detail = await self.greetings.detail(who, greeting_id)
        return await asyncio.to_thread(render_xlsx, detail)

    async def pdf(self, who: Principal, greeting_id: int) -> bytes:
        detail = await self.greetings.detail(who, greeting_id)
        return await asyncio.to_thread(render_pdf, detail)


def _summary(detail: dict[str, Any]) -> str:
    receipts = detail["receipts"]
    watched = sum(1 for r in receipts if not r["offline"])
    return (f"领导：{detail['leader']}　开始：{local_time(detail['started_at']) or '未开始'}　"
            f"结束：{local_time(detail['ended_at']) or '—'}　状态：{STATUS_LABELS.get(detail['status'], '')}　"
            f"应收看 {len(receipts)}，已收看 {watched}，未收看 {len(receipts) - watched}")


def render_xlsx(detail: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "慰问回执"
    missed = [[r["unit"], r["room"]] for r in detail["receipts"] if r["offline"]]
    for values in ([detail["title"]], [_summary(detail)], COLUMNS, *rows_of(detail["receipts"]), [],
                   ["未收看、需跟进的值班室"], *missed):
        sheet.append([sheet_cell(v) for v in values])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, whatever it looks like: never a formula cell
    for cell in sheet[3]:
        cell.font = Font(bold=True)
    for column, width in zip("ABCDEF", (20, 24, 14, 26, 14, 10)):
        sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render_pdf(detail: dict[str, Any]) -> bytes:
    from ..pdf import Document

    doc = Document(f"{detail['title']} 慰问回执", landscape=True)
    doc.paragraph(_summary(detail))
    doc.table([COLUMNS, *[[str(c) for c in row] for row in rows_of(detail["receipts"])]], [50, 50, 34, 54, 34, 24])
    missed = [r for r in detail["receipts"] if r["offline"]]
    names = "，".join(f"{r['unit']} {r['room']}" for r in missed)
    doc.paragraph("未收看、需跟进的值班室：" + (names or "无"))
    return doc.render()
