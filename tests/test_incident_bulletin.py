"""The monthly incident bulletin over the demo month: figures equal a hand count of the seeded
scenarios (and the flags the real rules drew equal the scenarios' expectations), scope, the
bulletin and report-form PDFs' text, the XLSX, hostile text made inert, bad months refused."""

from __future__ import annotations

import datetime as dt
import io
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select

from dutycall.directory.demo import AGENCIES, DEMO_PASSWORD, DISTRICTS, STREETS, load_demo
from dutycall.incidents.catalog import CATEGORY_LABELS, LEVEL_LABELS
from dutycall.incidents.demo import SCENARIOS, Scenario
from dutycall.incidents.models import Incident, IncidentFlag
from dutycall.supervision.models import Notice
from dutycall.web import create_app
from dutycall.web.keys import INCIDENTS

from .conftest import make_config
from .test_exports import Api

#: The demo date: the demo month is November 2026, in Beijing time.
TODAY = dt.date(2026, 12, 1)
MONTH = "2026-11"
TITLE = "2026年11月突发事件信息报送情况通报"


@dataclass
class Demo:
    app: Any
    base: str
    console_token: str


@pytest.fixture
def beijing(monkeypatch):
    """The deployment's zone is Asia/Shanghai (+08:00): month bounds and every local time follow it."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
async def demo(beijing, aiohttp_server, database_url) -> Demo:
    app = create_app(make_config(database_url, incident_interval=3600))
    # The deadline watch runs at start: its clock stands at the demo date, as the demo's did.
    app[INCIDENTS].clock = lambda: dt.datetime.combine(TODAY, dt.time()).astimezone(dt.UTC)
    server = await aiohttp_server(app, host="127.0.0.1")
    summary = await load_demo(app[INCIDENTS].sessionmaker, today=TODAY)
    assert summary.incidents == len(SCENARIOS)
    return Demo(app, f"http://127.0.0.1:{server.port}", summary.console_token)


# -- the hand count, from the seeded list alone ---------------------------------------------------

def unit_name(code: str) -> str:
    if code.startswith("A"):
        return AGENCIES[int(code[1:]) - 1][0]
    district = int(code[1:3])
    if len(code) == 3:
        return DISTRICTS[district - 1][0]
    before = sum(n for _, n in DISTRICTS[:district - 1])
    return f"{STREETS[before + int(code[4:]) - 1]}街道"


def district_name(code: str) -> str:
    return unit_name(code[:3])


def final_level(s: Scenario) -> str:
    level = s.level
    for report in s.reports:
        level = report.elements.get("level", level)
    return level


def outcome(s: Scenario) -> str:
    if "missed" in s.expected_flags:
        return "missed"
    return "late" if s.expected_flags else "on_time"


def hand_count(scenarios: list[Scenario]) -> dict[str, Any]:
    outcomes = Counter(outcome(s) for s in scenarios)
    return {
        "total": len(scenarios),
        "categories": Counter(s.category for s in scenarios),
        "levels": Counter(final_level(s) for s in scenarios),
        "districts": Counter(district_name(s.unit) for s in scenarios),
        "outcomes": outcomes,
        "rate": round(outcomes["on_time"] / len(scenarios), 4),
        "flags": Counter(k for s in scenarios for k in s.expected_flags),
        "issued": sum(len(s.expected_flags) for s in scenarios),  # one notice per finding
        "answered": sum(len(s.respond) for s in scenarios),
        "late_units": sorted(unit_name(s.unit) for s in scenarios if outcome(s) == "late"),
        "missed_units": sorted(unit_name(s.unit) for s in scenarios if outcome(s) == "missed"),
    }


def flat(text: str) -> str:
    """PDF text without the line breaks and spaces that table cells and wrapping add."""
    return "".join(text.split())


def pdf_text(body: bytes) -> str:
    return flat("".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages))


# -- the figures -------------------------------------------------------------------------------------

async def test_the_demo_month_s_flags_come_from_the_real_rules(demo):
    async with demo.app[INCIDENTS].sessionmaker() as db:
        incidents = {i.id: i for i in (await db.execute(select(Incident))).scalars()}
        flags = (await db.execute(select(IncidentFlag))).scalars().all()
        notices = (await db.execute(select(Notice).where(Notice.kind == "incident"))).scalars().all()
    assert sorted(i.title for i in incidents.values()) == sorted(s.title for s in SCENARIOS)
    drawn: dict[str, list[str]] = {}
    for flag in flags:
        drawn.setdefault(incidents[flag.incident_id].title, []).append(flag.kind)
    for s in SCENARIOS:
        assert sorted(drawn.get(s.title, [])) == sorted(s.expected_flags), s.title
    # Every category, late first reports, a late written report, an overrun follow-up, a 漏报.
    assert {s.category for s in SCENARIOS} == set(CATEGORY_LABELS)
    assert {"late_first", "late_written", "late_followup", "missed"} <= {f.kind for f in flags}
    assert len(notices) == len(flags)  # one notice per finding
    assert sum(n.responded_at is not None for n in notices) == sum(len(s.respond) for s in SCENARIOS) == 4
    statuses = Counter(i.status for i in incidents.values())
    assert statuses["closed"] >= 3 and statuses["final"] >= 3 and statuses["open"] >= 1


async def test_the_bulletin_s_figures_equal_a_hand_count(demo):
    expected = hand_count(list(SCENARIOS))
    api = await Api.account(demo.base, "city-host", DEMO_PASSWORD)
    try:
        status, s = await api.call("GET", f"/api/incident-statistics?month={MONTH}")
        assert status == 200, s
        assert s["month"] == MONTH and s["scope"]["city"] and s["total"] == expected["total"] == 19
        assert {c["code"]: c["count"] for c in s["categories"]} == dict(expected["categories"])
        assert {v["code"]: v["count"] for v in s["levels"] if v["count"]} == dict(expected["levels"])
        assert {d["name"]: d["count"] for d in s["districts"]} == dict(expected["districts"])
        t = s["timeliness"]
        assert (t["due"], t["on_time"], t["late"], t["missed"]) == (
            19, expected["outcomes"]["on_time"], expected["outcomes"]["late"], expected["outcomes"]["missed"])
        assert (t["late_first"], t["late_written"], t["late_followup"]) == (
            expected["flags"]["late_first"], expected["flags"]["late_written"], expected["flags"]["late_followup"])
        assert t["rate"] == expected["rate"] == round(13 / 19, 4)
        assert sorted(s["late_units"]) == expected["late_units"] and s["missed_units"] == expected["missed_units"]
        assert (s["notices"]["issued"], s["notices"]["answered"]) == (expected["issued"], expected["answered"])
        by_unit = {u["name"]: u for u in s["units"]}
        for scenario in SCENARIOS:
            row = by_unit[unit_name(scenario.unit)]
            assert row["due"] == 1 and row[outcome(scenario)] == 1, scenario.title
            assert row["notices"] == len(scenario.expected_flags) and row["answered"] == len(scenario.respond)
        assert s["trend"][-1] == {"month": MONTH, "incidents": 19, "rate": expected["rate"]}
        assert [m["incidents"] for m in s["trend"][:-1]] == [0] * 11 and s["trend"][0]["month"] == "2025-12"
        # English labels on request; the figures are the same.
        status, english = await api.call("GET", f"/api/incident-statistics?month={MONTH}&lang=en")
        assert english["categories"][0]["label"] == "Natural disaster" and english["total"] == 19
        # The month before and after hold none of them (bounds in Beijing time).
        status, october = await api.call("GET", "/api/incident-statistics?month=2026-10")
        assert status == 200 and october["total"] == 0 and october["timeliness"]["rate"] is None

        status, pdf = await api.call("GET", f"/api/incident-bulletin.pdf?month={MONTH}")
        assert status == 200 and pdf[:5] == b"%PDF-"
        text = pdf_text(pdf)
        rate = f"{expected['rate'] * 100:.1f}%"
        for needle in (TITLE, "共接报突发事件19起", f"报送及时率{rate}", "漏报1起", "迟报5起",
                       f"发出督办通知{expected['issued']}份", f"已回复{expected['answered']}份",
                       "迟报单位：" + "、".join(s["late_units"]), "漏报单位：观澜街道",
                       *(f"{CATEGORY_LABELS[c][0]}{n}" for c, n in expected["categories"].items()),
                       *(f"{LEVEL_LABELS[v][0]}{n}" for v, n in expected["levels"].items()),
                       "报送及时率=按时报送起数÷应报送起数", "坂田街道雪岗路边坡滑坡", "迟报（续报超时）"):
            assert flat(needle) in text, needle
        for name, count in expected["districts"].items():
            assert f"{name}{count}" in text, name

        status, xlsx = await api.call("GET", f"/api/incident-bulletin.xlsx?month={MONTH}")
        assert status == 200
        book = load_workbook(io.BytesIO(xlsx))
        assert book.sheetnames == ["概况", "按事件类别", "按事件等级", "按区（市直单位）", "各单位报送时效", "迟报漏报事件",
                                   "督办情况", "近12个月趋势"]
        assert book["概况"]["A1"].value == TITLE
        categories = {row[0]: row[1] for row in book["按事件类别"].iter_rows(min_row=2, values_only=True)}
        assert categories == {**{CATEGORY_LABELS[c][0]: n for c, n in expected["categories"].items()}, "合计": 19}
        units = {row[0]: row[1:5] for row in book["各单位报送时效"].iter_rows(min_row=2, values_only=True)}
        assert units["合计"] == (19, expected["outcomes"]["on_time"], expected["outcomes"]["late"], 1)
        assert units["观澜街道"] == (1, 0, 0, 1) and units["坂田街道"] == (1, 0, 1, 0)
        flagged = [row[2] for row in book["迟报漏报事件"].iter_rows(min_row=2, values_only=True)]
        assert sorted(flagged) == sorted(sc.title for sc in SCENARIOS if sc.expected_flags)

        status, png = await api.call("GET", f"/api/incident-statistics/trend.png?month={MONTH}")
        assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        await api.close()


async def test_a_district_s_bulletin_holds_its_own_incidents_only(demo):
    mine = [s for s in SCENARIOS if s.unit.startswith("D06")]
    others = [s for s in SCENARIOS if not s.unit.startswith("D06")]
    expected = hand_count(mine)
    foreign = next(s for s in others if s.unit.startswith("D03"))
    async with demo.app[INCIDENTS].sessionmaker() as db:
        ids = {i.title: i.id for i in (await db.execute(select(Incident))).scalars()}
    api = await Api.account(demo.base, "d06-host", DEMO_PASSWORD)
    try:
        status, s = await api.call("GET", f"/api/incident-statistics?month={MONTH}")
        assert status == 200 and not s["scope"]["city"] and s["scope"]["name"] == "龙岗区"
        assert s["total"] == expected["total"] == 2
        assert [d["name"] for d in s["districts"]] == ["龙岗区"]
        assert {u["name"] for u in s["units"]} == {unit_name(m.unit) for m in mine}
        assert {f["title"] for f in s["flagged"]} == {m.title for m in mine if m.expected_flags}
        assert s["timeliness"]["rate"] == expected["rate"] == 0.5
        assert (s["notices"]["issued"], s["notices"]["answered"]) == (expected["issued"], expected["answered"])

        status, pdf = await api.call("GET", f"/api/incident-bulletin.pdf?month={MONTH}")
        text = pdf_text(pdf)
        assert status == 200 and TITLE in text and "龙岗区及所属单位" in text and "共接报突发事件2起" in text
        for other in others:
            assert flat(other.title) not in text and unit_name(other.unit) not in text, other.title
        status, xlsx = await api.call("GET", f"/api/incident-bulletin.xlsx?month={MONTH}")
        cells = " ".join(str(c) for sheet in load_workbook(io.BytesIO(xlsx)).worksheets
                         for row in sheet.iter_rows(values_only=True) for c in row if c is not None)
        for other in others:
            assert other.title not in cells and unit_name(other.unit) not in cells, other.title
        # Another district's incident has no report form for this district: 404, as if it did not exist.
        status, body = await api.call("GET", f"/api/incidents/{ids[foreign.title]}/report.pdf")
        assert status == 404 and body["error"]["code"] == "not_found"
        status, body = await api.call("GET", "/api/incidents/abc/report.pdf")
        assert status == 404
        status, _ = await api.call("GET", f"/api/incidents/{ids[mine[0].title]}/report.pdf")
        assert status == 200
    finally:
        await api.close()
    console = await Api.console(demo.base, demo.console_token)
    try:  # a console reads no incident figures
        for path in ("/api/incident-statistics", "/api/incident-bulletin.pdf", "/api/incident-statistics/trend.png"):
            status, body = await console.call("GET", path + f"?month={MONTH}")
            assert status == 403, path
    finally:
        await console.close()


async def test_bad_months_are_refused(demo):
    api = await Api.account(demo.base, "city-viewer", DEMO_PASSWORD)
    try:
        for month in ("2026-13", "2026-1", "abc", "1999-12", "2026-11-01", "２０２６-11", "", "9999-12"):
            for path in ("/api/incident-statistics", "/api/incident-statistics/trend.png",
                         "/api/incident-bulletin.pdf", "/api/incident-bulletin.xlsx"):
                status, body = await api.call("GET", f"{path}?month={month}")
                if month == "":  # no month: the current one
                    assert status == 200, (path, body)
                    continue
                assert status == 422, (path, month, status)
                assert body["error"]["errors"][0]["field"] == "month"
        status, body = await api.call("GET", "/api/incident-statistics?month=2026-13&lang=en")
        assert body["error"]["message"] == "The month must be YYYY-MM, e.g. 2026-11"
        status, body = await api.call("GET", "/api/incident-statistics?month=2026-13")
        assert body["error"]["message"] == "月份应为 YYYY-MM，例如 2026-11"
    finally:
        await api.close()


# -- the report form and hostile text ----------------------------------------------------------------

async def test_the_report_form_shows_every_stage_and_hostile_text_stays_text(demo):
    landslide = next(s for s in SCENARIOS if s.title == "坂田街道雪岗路边坡滑坡")
    async with demo.app[INCIDENTS].sessionmaker() as db:
        ids = {i.title: i.id for i in (await db.execute(select(Incident))).scalars()}
    api = await Api.account(demo.base, "d06-host", DEMO_PASSWORD)
    try:
        status, pdf = await api.call("GET", f"/api/incidents/{ids[landslide.title]}/report.pdf")
        assert status == 200 and pdf[:5] == b"%PDF-"
        text = pdf_text(pdf)
        for needle in ("突发事件信息报告表", landslide.title, "【基本情况】", "【发生地点】", "【人员伤亡与损失】",
                       "【处置结果（终报）】", "【联系人与报告人】", "事件经过", landslide.course, landslide.place,
                       "III级（较大）", "地质灾害", "初报", "续报1", "续报2", "终报", "电话报告", "书面报告",
                       "已核实（现场核实）", "街道应急办现场核实", "未核实", "迟报（续报超时）", "领导批示",
                       "全力搜救被困人员", "被困人员已全部救出"):
            assert flat(needle) in text, needle
        # The stages in order.
        assert text.index("初报2026") < text.index("续报12026") < text.index("续报22026") < text.index("终报2026")
    finally:
        await api.close()

    hostile = '=HYPERLINK("http://x.example/","click")<b>粗体</b>'
    officer = await Api.account(demo.base, "d01s01", DEMO_PASSWORD)
    host = await Api.account(demo.base, "city-host", DEMO_PASSWORD)
    try:
        now = dt.datetime.combine(TODAY, dt.time()).astimezone()  # the service's clock
        status, created = await officer.call("POST", "/api/incidents", {
            "title": hostile, "occurred_at": (now - dt.timedelta(minutes=160)).isoformat(),
            "learned_at": (now - dt.timedelta(minutes=150)).isoformat(), "source": "<img src='/etc/passwd'/>",
            "category": "social", "level": "IV", "place": "<font size=40>园岭</font>", "course": "@SUM(A1:A9)",
            "contact_name": "王五", "contact_phone": "13900000000", "reporter": "+cmd|' /C calc'!A0",
            "channel": "written"})
        assert status == 201, created
        assert {f["kind"] for f in created["flags"]} == {"late_first", "late_written"}  # 150 min: 一般 allows 120
        status, form = await host.call("GET", f"/api/incidents/{created['id']}/report.pdf")
        assert status == 200
        text = pdf_text(form)
        for needle in (hostile, "<img src='/etc/passwd'/>", "<font size=40>园岭</font>", "@SUM(A1:A9)"):
            assert flat(needle) in text, needle
        status, pdf = await host.call("GET", f"/api/incident-bulletin.pdf?month={MONTH}")
        assert status == 200 and flat(hostile) in pdf_text(pdf)  # listed as late, as text
        status, xlsx = await host.call("GET", f"/api/incident-bulletin.xlsx?month={MONTH}")
        sheet = load_workbook(io.BytesIO(xlsx))["迟报漏报事件"]
        cell = next(c for row in sheet.iter_rows() for c in row if isinstance(c.value, str) and "HYPERLINK" in c.value)
        assert cell.value == "'" + hostile and cell.data_type == "s"  # text, never a formula
        assert not any(c.data_type == "f" for ws in load_workbook(io.BytesIO(xlsx)).worksheets
                       for row in ws.iter_rows() for c in row)
    finally:
        await officer.close()
        await host.close()
