"""Incident documents: the monthly bulletin (月度通报, PDF and XLSX) and the printable incident
information report form (突发事件信息报告表, PDF).

Figures come from :mod:`.statistics`, the form from :meth:`.service.Incidents.detail` (so its scope
is the incident page's). Rendering (reportlab, openpyxl, matplotlib) is CPU work and runs in a
worker thread, never on the event loop. Every stored text is hostile: a PDF gets it through
:class:`..pdf.Document` (``pdf_markup``), an XLSX cell through :func:`..text.sheet_cell` as a
string cell, never a formula.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from typing import Any

from .. import timezone
from ..directory.principal import Principal
from ..text import sheet_cell
from .catalog import (
    BY_NAME,
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    ELEMENTS,
    FLAG_LABELS,
    GROUPS,
    LEVEL_LABELS,
    STAGE_LABELS,
    STATUS_LABELS,
    SUBTYPES,
    VERIFY_LABELS,
    Category,
    Kind,
    Stage,
)
from .service import Incidents
from .statistics import FOOTNOTE, IncidentStatistics, percent, render_trend

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def bulletin_title(month: str) -> str:
    year, number = month.split("-")
    return f"{int(year)}年{int(number)}月突发事件信息报送情况通报"


def local_time(value: str | dt.datetime | None) -> str:
    """A stored instant in the deployment's zone, as duty staff read it."""
    if not value:
        return ""
    at = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return timezone.local(at).strftime("%Y-%m-%d %H:%M")


def _zh(pairs: Mapping[Any, tuple[str, str]], code: object) -> str:
    for key, pair in pairs.items():
        if key == code:
            return pair[0]
    return str(code or "")


def stage_label(stage: str, number: int) -> str:
    if stage == Stage.followup:
        return f"续报{number}"
    return _zh(STAGE_LABELS, stage)


def element_text(name: str, value: Any) -> str:
    """An element's value as the paper form shows it."""
    if value is None or value == "":
        return ""
    element = BY_NAME.get(name)
    kind = element.kind if element else Kind.text
    if kind is Kind.instant:
        return local_time(str(value))
    if kind is Kind.category:
        return _zh(CATEGORY_LABELS, value)
    if kind is Kind.level:
        return _zh(LEVEL_LABELS, value)
    if kind is Kind.subtype:
        for subtypes in SUBTYPES.values():
            if value in subtypes:
                return subtypes[value][0]
        return str(value)
    if kind is Kind.people:
        return f"{value} 人"
    if kind is Kind.money:
        return f"{value:g}" if isinstance(value, float) else str(value)
    return str(value)


# -- the bulletin ------------------------------------------------------------------------------------


def summary_text(s: Mapping[str, Any]) -> str:
    """The bulletin's opening paragraph."""
    scope = "全市" if s["scope"]["city"] else s["scope"]["name"]
    year, month = s["month"].split("-")
    cats = "、".join(f"{c['label']} {c['count']} 起" for c in s["categories"])
    t = s["timeliness"]
    text = (f"{int(year)}年{int(month)}月，{scope}共接报突发事件 {s['total']} 起，其中{cats}；"
            f"较大及以上 {s['serious']} 起。应报送 {t['due']} 起，按时报送 {t['on_time']} 起，"
            f"迟报 {t['late']} 起，漏报 {t['missed']} 起，报送及时率 {percent(t['rate'])}。"
            f"针对上述事件发出督办通知 {s['notices']['issued']} 份，已回复 {s['notices']['answered']} 份。")
    text += f"迟报单位：{'、'.join(s['late_units']) or '无'}。漏报单位：{'、'.join(s['missed_units']) or '无'}。"
    return text


def _tables(s: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """Every table of the bulletin, in order: (name, header, rows); shared by PDF and XLSX."""
    t = s["timeliness"]
    cats = [c["label"] for c in s["categories"]]
    return [
        ("按事件类别", ["事件类别", "起数"], [[c["label"], c["count"]] for c in s["categories"]]
         + [["合计", s["total"]]]),
        ("按事件等级", ["事件等级", "起数"], [[v["label"], v["count"]] for v in s["levels"]] + [["合计", s["total"]]]),
        ("按区（市直单位）", ["区（市直单位）", "起数", *cats],
         [[d["name"], d["count"], *(d[c.value] for c in Category)] for d in s["districts"]]
         + [["合计", s["total"], *(c["count"] for c in s["categories"])]]),
        ("各单位报送时效", ["单位", "应报送", "按时", "迟报", "漏报", "首报超时", "书面超时", "续报超时", "及时率",
                       "督办通知", "已回复"],
         [[u["name"], u["due"], u["on_time"], u["late"], u["missed"], u["late_first"], u["late_written"],
           u["late_followup"], percent(u["rate"]), u["notices"], u["answered"]] for u in s["units"]]
         + [["合计", t["due"], t["on_time"], t["late"], t["missed"], t["late_first"], t["late_written"],
             t["late_followup"], percent(t["rate"]), s["notices"]["issued"], s["notices"]["answered"]]]),
        ("迟报漏报事件", ["发生时间", "责任单位", "事件名称", "等级", "情形"],
         [[local_time(f["occurred_at"]), f["unit_name"], f["title"], _zh(LEVEL_LABELS, f["level"]),
           "、".join(_zh(FLAG_LABELS, k) for k in f["flags"])] for f in s["flagged"]]),
        ("督办情况", ["督办事由", "发出", "已回复", "未回复"],
         [[n["label"], n["issued"], n["answered"], n["issued"] - n["answered"]] for n in s["notices"]["by_outcome"]]
         + [["合计", s["notices"]["issued"], s["notices"]["answered"], s["notices"]["unanswered"]]]),
        ("近12个月趋势", ["月份", "事件起数", "报送及时率"],
         [[m["month"], m["incidents"], percent(m["rate"])] for m in s["trend"]]),
    ]


WIDTHS = {
    "按事件类别": [60, 30], "按事件等级": [60, 30], "按区（市直单位）": [44, 18, 28, 28, 30, 30],
    "各单位报送时效": [36, 14, 12, 12, 12, 14, 14, 14, 16, 14, 14],
    "迟报漏报事件": [30, 34, 58, 24, 36], "督办情况": [60, 24, 24, 24], "近12个月趋势": [40, 30, 30],
}
NUMERALS = "一二三四五六七八九十"


def render_bulletin_pdf(s: Mapping[str, Any], chart: bytes) -> bytes:
    from reportlab.platypus import Image

    from ..pdf import Document

    doc = Document(bulletin_title(s["month"]), landscape=True)
    scope = "全市" if s["scope"]["city"] else f"{s['scope']['name']}及所属单位"
    doc.paragraph(f"通报范围：{scope}　生成时间：{local_time(dt.datetime.now(dt.UTC))}")
    doc.paragraph(f"{NUMERALS[0]}、总体情况")
    doc.paragraph(summary_text(s))
    tables = _tables(s)
    for number, (name, header, rows) in enumerate(tables[:-1], start=1):
        doc.paragraph(f"{NUMERALS[number]}、{name}")
        if rows:
            doc.table([header, *rows], WIDTHS[name])
        else:
            doc.paragraph("无。")
    name, header, rows = tables[-1]
    doc.paragraph(f"{NUMERALS[len(tables)]}、{name}")
    doc.table([header, *rows], WIDTHS[name])
    doc.story.append(Image(io.BytesIO(chart), width=180 * doc.mm, height=80 * doc.mm))
    doc.paragraph(FOOTNOTE)
    return doc.render()


def render_bulletin_xlsx(s: Mapping[str, Any]) -> bytes:
    """One sheet per table; every text cell is a string cell, never a formula."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook()
    overview = book.active
    overview.title = "概况"
    scope = "全市" if s["scope"]["city"] else f"{s['scope']['name']}及所属单位"
    _append(overview, [bulletin_title(s["month"])], bold=True)
    _append(overview, [f"通报范围：{scope}"])
    _append(overview, [summary_text(s)])
    _append(overview, [FOOTNOTE])
    overview.column_dimensions["A"].width = 120
    for name, header, rows in _tables(s):
        sheet = book.create_sheet(name)
        _append(sheet, header, bold=True)
        for row in rows:
            _append(sheet, row)
        for index, width in enumerate(WIDTHS[name], start=1):
            sheet.column_dimensions[get_column_letter(index)].width = max(8, width * 0.6)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _append(sheet: Any, values: Sequence[Any], bold: bool = False) -> None:
    from openpyxl.styles import Font

    sheet.append([sheet_cell(v) for v in values])
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"  # text, whatever it looks like: never a formula cell
        if bold:
            cell.font = Font(bold=True)


# -- the report form ---------------------------------------------------------------------------------

REPORT_COLUMNS = ["报告", "报送时间", "报送方式", "报告人", "核报", "较上次报告的变化"]


def verification(report: Mapping[str, Any]) -> str:
    if not report.get("verified"):
        return "未核实"
    channel = report.get("verify_channel")
    text = f"已核实（{_zh(VERIFY_LABELS, channel)}）" if channel else "已核实"
    note = report.get("verify_note")
    return f"{text} {local_time(report.get('verified_at'))}" + (f"：{note}" if note else "")


def _grouped(doc: Any, elements: Mapping[str, Any], skip: Sequence[str] = ()) -> None:
    """The elements as the paper form groups them: a heading row per group, label | value."""
    rows: list[list[Any]] = [["项目", "内容"]]
    for code, zh, _ in GROUPS:
        given = [e for e in ELEMENTS if e.group == code and e.name not in skip
                 and element_text(e.name, elements.get(e.name))]
        if not given:
            continue
        rows.append([f"【{zh}】", ""])
        rows += [[e.zh, element_text(e.name, elements.get(e.name))] for e in given]
    if len(rows) > 1:
        doc.table(rows, [50, 130])


def render_report_form(detail: Mapping[str, Any]) -> bytes:
    """突发事件信息报告表 for one incident: the current view grouped as the paper form groups it,
    then every report in order (初报, 续报 n, 终报) with its time, channel, verification and its own
    elements, the timeliness findings and the leaders' instructions."""
    from ..pdf import Document

    doc = Document("突发事件信息报告表")
    status = _zh(STATUS_LABELS, detail["status"])
    doc.paragraph(f"事件编号：{detail['id']}　责任单位：{detail.get('unit_name', '')}　"
                  f"记录单位：{detail.get('recorded_by_unit', '')}　状态：{status}")
    doc.paragraph(f"事件名称：{detail['title']}")
    doc.paragraph("一、事件情况（各次报告汇总，以最新报告为准）")
    _grouped(doc, detail.get("current", {}))
    reports = detail.get("reports", [])
    doc.paragraph("二、报送记录")
    doc.table([REPORT_COLUMNS, *[[stage_label(r["stage"], r["number"]), local_time(r["submitted_at"]),
                                  _zh(CHANNEL_LABELS, r["channel"]), str(r["elements"].get("reporter", "")),
                                  verification(r),
                                  str(r["elements"].get("changes", ""))] for r in reports]],
              [18, 30, 20, 20, 40, 52])
    for number, report in enumerate(reports, start=1):
        doc.paragraph(f"（{number}）{stage_label(report['stage'], report['number'])}　"
                      f"{local_time(report['submitted_at'])}　"
                      f"{_zh(CHANNEL_LABELS, report['channel'])}　{verification(report)}")
        _grouped(doc, report["elements"])
    doc.paragraph("三、时效")
    flags = detail.get("flags", [])
    if flags:
        doc.table([["情形", "应报时间", "发现时间", "补报时间"],
                   *[[_zh(FLAG_LABELS, f["kind"]), local_time(f["due_at"]), local_time(f["detected_at"]),
                      local_time(f["met_at"]) or "未补报"] for f in flags]], [60, 40, 40, 40])
    else:
        doc.paragraph("按时报送。")
    instructions = detail.get("instructions", [])
    section = iter("四五")
    if instructions:
        doc.paragraph(f"{next(section)}、领导批示")
        for instruction in instructions:
            doc.paragraph(f"{instruction['author']}（{local_time(instruction['at'])}）：{instruction['text']}")
            doc.table([["被批示单位", "签收", "反馈"],
                       *[[t["unit_name"], " ".join(x for x in (local_time(t["acknowledged_at"]),
                                                             t.get("acknowledged_by") or "") if x) or "未签收",
                          t.get("feedback") or ""] for t in instruction["targets"]]], [44, 44, 92])
    merged = detail.get("merged", [])
    if merged:
        doc.paragraph(f"{next(section)}、并入本事件的报告")
        doc.table([["事件编号", "事件名称", "报告", "报送时间", "报送方式"],
                   *[[m["id"], m["title"], stage_label(r["stage"], r["number"]), local_time(r["submitted_at"]),
                      _zh(CHANNEL_LABELS, r["channel"])] for m in merged for r in m["reports"]]],
                  [20, 70, 20, 40, 30])
    doc.paragraph(f"打印时间：{local_time(dt.datetime.now(dt.UTC))}")
    return doc.render()


class IncidentDocuments:
    """The bulletin and the report form, rendered off the event loop."""

    def __init__(self, incidents: Incidents) -> None:
        self.incidents = incidents
        self.statistics = IncidentStatistics(incidents.sessionmaker)

    async def bulletin_pdf(self, who: Principal, month: object) -> bytes:
        figures = await self.statistics.monthly(who, month)
        return await asyncio.to_thread(lambda: render_bulletin_pdf(figures, render_trend(figures["trend"])))

    async def bulletin_xlsx(self, who: Principal, month: object) -> bytes:
        figures = await self.statistics.monthly(who, month)
        return await asyncio.to_thread(render_bulletin_xlsx, figures)

    async def report_pdf(self, who: Principal, incident_id: int) -> bytes:
        detail = await self.incidents.detail(who, incident_id)
        return await asyncio.to_thread(render_report_form, detail)


__all__ = ["XLSX", "IncidentDocuments", "bulletin_title", "render_bulletin_pdf", "render_bulletin_xlsx",
           "render_report_form"]
