"""Incidents: stages and their required elements, follow-ups that never overwrite, deadlines at
+08:00, 漏报, supervision notices, instructions, merging, scope by every route, bad input."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from dutycall.errors import Conflict, Forbidden, Invalid, NotFound
from dutycall.incidents.models import Incident, IncidentReport
from dutycall.incidents.service import Incidents
from dutycall.supervision.models import Notice
from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.keys import INCIDENTS, SUPERVISION

from .conftest import ADMIN_PASSWORD, make_config
from .test_exports import Api

BEIJING = dt.timezone(dt.timedelta(hours=8))
NEW_YORK = dt.timezone(dt.timedelta(hours=-5))
#: The world's clock: a fixed instant the tests move on by hand.
T0 = dt.datetime(2026, 12, 2, 10, 0, tzinfo=BEIJING)


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


@dataclass
class World:
    app: Any
    base: str
    ids: dict[str, int]
    who: dict[str, Any]
    clock: Clock

    @property
    def incidents(self) -> Incidents:
        return self.app[INCIDENTS]

    async def count(self, model: Any) -> int:
        async with self.incidents.sessionmaker() as db:
            return int((await db.execute(select(func.count()).select_from(model))).scalar_one())


@pytest.fixture
async def world(aiohttp_server, database_url) -> World:
    """City → D1 → S1, city → D2 → S2; duty officers in S1, D1 and D2, a host in D1, a city leader."""
    app = create_app(make_config(database_url, incident_interval=3600))
    server = await aiohttp_server(app, host="127.0.0.1")
    clock = Clock(T0)
    app[INCIDENTS].clock = clock
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    ids = {"city": admin.unit_id}
    for code, parent in (("D1", "city"), ("S1", "D1"), ("D2", "city"), ("S2", "D2")):
        unit = await directory.create_unit(admin, {"code": code, "name": f"{code}单位",
                                                   "kind": "street" if code[0] == "S" else "district",
                                                   "parent_id": ids[parent]})
        ids[code] = unit["id"]
    who = {"admin": admin}
    for username, role, unit in (("officerS1", "duty_officer", "S1"), ("officerD1", "duty_officer", "D1"),
                                 ("hostD1", "host", "D1"), ("officerD2", "duty_officer", "D2"),
                                 ("officerS2", "duty_officer", "S2"), ("leader", "leader", "city")):
        await directory.create_account(admin, {"username": username, "display_name": username, "role": role,
                                               "password": "password-1", "unit_id": ids[unit]})
        who[username] = (await directory.sign_in(username, "password-1"))[1]
    return World(app, f"http://127.0.0.1:{server.port}", ids, who, clock)


def first_report(world: World, level: str = "III", learned_minutes_ago: float = 10, **overrides: Any) -> dict:
    now = world.clock().astimezone(BEIJING)
    report = {
        "title": "东湖路燃气泄漏", "occurred_at": (now - dt.timedelta(minutes=learned_minutes_ago + 5)).isoformat(),
        "learned_at": (now - dt.timedelta(minutes=learned_minutes_ago)).isoformat(),
        "source": "110 转警", "category": "accident", "subtype": "public_facility", "level": level,
        "place": "东湖路 12 号", "course": "施工挖断燃气管道，周边 200 米已疏散。",
        "deaths": 0, "injured": 2, "missing": 0, "trapped": 0, "measures": "关阀断气，设置警戒。",
        "contact_name": "王五", "contact_phone": "139 0000 0000", "reporter": "张三",
    }
    report.update(overrides)
    return report


def fields_of(exc: pytest.ExceptionInfo) -> dict[str, str]:
    return {e["field"]: e["message"] for e in exc.value.error_list()}


# -- stages and their elements -------------------------------------------------------------------

async def test_a_first_report_names_every_missing_element_in_chinese_and_stores_nothing(world):
    with pytest.raises(Invalid) as exc:
        await world.incidents.create(world.who["officerS1"], {"title": "某事件", "level": "III"})
    problems = fields_of(exc)
    for name, label in (("occurred_at", "发生时间"), ("learned_at", "获知时间"), ("source", "信息来源"),
                        ("category", "事件类别"), ("place", "发生地点"), ("course", "事件经过"),
                        ("contact_name", "现场联系人"), ("contact_phone", "现场联系电话"), ("reporter", "报告人"),
                        # 较大: the casualty counts and the measures are required at once
                        ("deaths", "死亡人数"), ("injured", "受伤人数"), ("measures", "已采取的措施")):
        assert problems[name] == f"缺少必填项“{label}”", name
    assert "title" not in problems
    assert exc.value.message().startswith("报告有 ")
    assert "is required" in exc.value.error_list("en")[0]["message"]
    assert await world.count(Incident) == 0 and await world.count(IncidentReport) == 0


async def test_a_general_incident_needs_fewer_elements_at_first(world):
    report = first_report(world, level="IV")
    for name in ("deaths", "injured", "missing", "trapped", "measures"):
        del report[name]
    created = await world.incidents.create(world.who["officerS1"], report)
    assert created["level"] == "IV" and created["status"] == "open" and created["unit_id"] == world.ids["S1"]
    with pytest.raises(Invalid) as exc:  # the same report at 较大 lacks them
        await world.incidents.create(world.who["officerS1"], {**report, "level": "III"})
    assert set(fields_of(exc)) == {"deaths", "injured", "missing", "trapped", "measures"}


async def test_follow_ups_never_overwrite_earlier_text_and_the_final_report_ends_reporting(world):
    officer = world.who["officerS1"]
    created = await world.incidents.create(officer, {**first_report(world), "channel": "written"})
    iid = created["id"]
    with pytest.raises(Invalid) as exc:  # a follow-up says what changed
        await world.incidents.report(officer, iid, {"reporter": "张三", "injured": 3})
    assert fields_of(exc) == {"changes": "缺少必填项“较上次报告的变化”"}
    world.clock.advance(hours=2)
    one = await world.incidents.report(officer, iid, {"changes": "又发现 1 名伤者", "injured": 3, "reporter": "张三",
                                                      "course": "管道已修复，周边恢复供气。", "level": "IV"})
    two = await world.incidents.report(officer, iid, {"changes": "伤者均已出院", "reporter": "李四",
                                                      "trend": "无扩大趋势"})
    assert [r["number"] for r in two["reports"]] == [0, 1, 2]
    assert [r["stage"] for r in two["reports"]] == ["initial", "followup", "followup"]
    first, follow = two["reports"][0]["elements"], two["reports"][1]["elements"]
    assert first["course"] == "施工挖断燃气管道，周边 200 米已疏散。" and first["injured"] == 2
    assert follow["course"] == "管道已修复，周边恢复供气。" and follow["changes"] == "又发现 1 名伤者"
    current = two["current"]
    assert current["injured"] == 3 and current["course"] == "管道已修复，周边恢复供气。"
    assert current["measures"] == "关阀断气，设置警戒。" and current["trend"] == "无扩大趋势"
    assert "changes" not in current and "reporter" not in current  # each report's own, not carried
    assert one["level"] == two["level"] == "IV"  # the incident row follows the latest rating

    with pytest.raises(Conflict):
        await world.incidents.close(world.who["hostD1"], iid)  # not before the final report
    with pytest.raises(Invalid) as exc:
        await world.incidents.report(officer, iid, {"stage": "final", "reporter": "张三"})
    assert {"cause", "outcome", "aftermath", "economic_loss"} <= set(fields_of(exc))
    final = await world.incidents.report(officer, iid, {
        "stage": "final", "reporter": "张三", "cause": "施工单位未探明管线", "outcome": "险情排除",
        "aftermath": "受伤人员费用由施工单位承担", "economic_loss": 12.5, "deaths": 0, "injured": 3})
    assert final["status"] == "final" and final["reports"][-1]["stage"] == "final"
    with pytest.raises(Conflict) as wrong:
        await world.incidents.report(officer, iid, {"changes": "补充", "reporter": "张三"})
    assert wrong.value.code == "wrong_stage"
    closed = await world.incidents.close(world.who["hostD1"], iid)
    assert closed["status"] == "closed"
    assert [e["kind"] for e in closed["timeline"]] == ["reported"] * 4 + ["closed"]
    async with world.incidents.sessionmaker() as db:
        stored = (await db.execute(select(IncidentReport).order_by(IncidentReport.id))).scalars().all()
    assert stored[0].elements["course"] == "施工挖断燃气管道，周边 200 米已疏散。"


async def test_a_report_is_verified_through_a_channel(world):
    created = await world.incidents.create(world.who["officerS1"], first_report(world))
    report_id = created["reports"][0]["id"]
    with pytest.raises(Forbidden):
        await world.incidents.verify(world.who["officerS1"], created["id"], report_id, {"channel": "police"})
    with pytest.raises(Invalid):
        await world.incidents.verify(world.who["hostD1"], created["id"], report_id, {"channel": "telepathy"})
    with pytest.raises(Invalid):  # not a string at all (found by the API fuzzer: was a 500)
        await world.incidents.verify(world.who["hostD1"], created["id"], report_id, {"channel": {}})
    verified = await world.incidents.verify(world.who["hostD1"], created["id"], report_id,
                                            {"channel": "police", "note": "与派出所核实一致"})
    assert verified["reports"][0]["verified"] and verified["reports"][0]["verify_channel"] == "police"
    assert verified["timeline"][-1]["kind"] == "verified"


# -- deadlines and supervision --------------------------------------------------------------------

async def flags_and_notices(world: World, iid: int) -> tuple[list[str], list[dict]]:
    detail = await world.incidents.detail(world.who["admin"], iid)
    return [f["kind"] for f in detail["flags"]], detail["notices"]


async def test_a_first_report_31_minutes_after_a_major_incident_is_late_and_29_is_not(world):
    late = await world.incidents.create(world.who["officerS1"], first_report(world, learned_minutes_ago=31))
    on_time = await world.incidents.create(world.who["officerS1"], first_report(world, learned_minutes_ago=29))
    kinds, notices = await flags_and_notices(world, late["id"])
    assert kinds == ["late_first"]
    assert [(n["outcome"], n["kind"], n["status"]) for n in notices] == [("late_first", "incident", "open")]
    assert (await flags_and_notices(world, on_time["id"]))[0] == []
    # The same in New York time: the offset is the reporter's, the instant is what counts.
    ny = first_report(world, learned_minutes_ago=29)
    ny["learned_at"] = dt.datetime.fromisoformat(ny["learned_at"]).astimezone(NEW_YORK).isoformat()
    assert (await flags_and_notices(world, (await world.incidents.create(world.who["officerS1"], ny))["id"]))[0] == []
    # 一般: two hours for the first report.
    general = await world.incidents.create(world.who["officerS1"], first_report(world, "IV", learned_minutes_ago=90))
    assert (await flags_and_notices(world, general["id"]))[0] == []


async def test_the_watch_flags_a_missing_written_report_and_a_missing_follow_up_once(world):
    officer = world.who["officerS1"]
    iid = (await world.incidents.create(officer, {**first_report(world, learned_minutes_ago=20),
                                                  "channel": "phone"}))["id"]
    world.clock.advance(minutes=39)  # 59 minutes after it was learned: the written report is not due yet
    assert await world.incidents.check_deadlines() == 0
    world.clock.advance(minutes=2)
    assert await world.incidents.check_deadlines() == 1
    assert await world.incidents.check_deadlines() == 0  # flagged once
    kinds, notices = await flags_and_notices(world, iid)
    assert kinds == ["late_written"] and [n["outcome"] for n in notices] == ["late_written"]
    await world.incidents.report(officer, iid, {"changes": "书面报告", "reporter": "张三", "channel": "written"})
    detail = await world.incidents.detail(world.who["admin"], iid)
    assert detail["flags"][0]["met_at"] == world.clock().isoformat()  # came late, but came
    world.clock.advance(hours=23, minutes=59)
    assert await world.incidents.check_deadlines() == 0
    world.clock.advance(minutes=2)
    assert await world.incidents.check_deadlines() == 1
    assert (await flags_and_notices(world, iid))[0] == ["late_written", "late_followup"]


async def test_an_incident_recorded_above_its_unit_is_missed_and_the_notice_runs_its_course(world):
    recorded = await world.incidents.create(world.who["hostD1"], {**first_report(world), "unit_id": world.ids["S1"]})
    kinds, notices = await flags_and_notices(world, recorded["id"])
    assert kinds == ["missed"]
    notice = notices[0]
    assert notice["outcome"] == "missed" and notice["subject"] == "东湖路燃气泄漏"
    supervision = world.app[SUPERVISION]
    with pytest.raises(Forbidden):  # the district cannot write the street's answer
        await supervision.respond(world.who["hostD1"], notice["id"], "代为回复")
    with pytest.raises(NotFound):  # another district never sees it
        await supervision.respond(world.who["officerD2"], notice["id"], "不是我的")
    await supervision.respond(world.who["officerS1"], notice["id"], "值班员未及时上报，已批评教育。")
    with pytest.raises(Forbidden):
        await supervision.close(world.who["officerS1"], notice["id"])
    closed = await supervision.close(world.who["hostD1"], notice["id"])
    assert closed["status"] == "closed"
    timeline = [e["kind"] for e in (await world.incidents.detail(world.who["admin"], recorded["id"]))["timeline"]]
    assert timeline == ["reported", "flagged", "notice_issued", "notice_responded", "notice_closed"]
    # A host's own 督办 (错报), with its text and deadline.
    supervised = await world.incidents.supervise(world.who["hostD1"], recorded["id"],
                                                 {"outcome": "wrong", "text": "伤亡人数与公安通报不符，请核实。", "days": 1})
    assert [n["outcome"] for n in supervised["notices"]] == ["missed", "wrong"]
    with pytest.raises(Forbidden):  # supervision goes down the chain, not to one's own unit
        await world.incidents.supervise(world.who["officerS1"], recorded["id"], {"outcome": "late", "text": "x"})


# -- instructions, merging, scope ------------------------------------------------------------------

async def test_an_instruction_is_acknowledged_and_answered_by_each_addressed_unit(world):
    iid = (await world.incidents.create(world.who["officerS1"], first_report(world)))["id"]
    with pytest.raises(Forbidden):  # duty officers do not write instructions
        await world.incidents.instruct(world.who["officerD1"], iid, {"text": "x", "unit_ids": [world.ids["S1"]]})
    with pytest.raises(Invalid):
        await world.incidents.instruct(world.who["leader"], iid, {"text": "", "unit_ids": [world.ids["S1"]]})
    detail = await world.incidents.instruct(world.who["leader"], iid, {
        "text": "全力救治伤员，查明原因，及时续报。", "unit_ids": [world.ids["S1"], world.ids["D2"]]})
    instruction = detail["instructions"][0]
    assert [t["unit_name"] for t in instruction["targets"]] == ["S1单位", "D2单位"]
    # D2 is addressed: it now sees the incident, but files nothing on it.
    assert [i["id"] for i in await world.incidents.find(world.who["officerD2"], {})] == [iid]
    with pytest.raises(NotFound):
        await world.incidents.report(world.who["officerD2"], iid, {"changes": "x", "reporter": "y"})
    with pytest.raises(Forbidden):  # D1 was not addressed
        await world.incidents.acknowledge(world.who["officerD1"], instruction["id"])
    await world.incidents.acknowledge(world.who["officerD2"], instruction["id"])
    await world.incidents.feedback(world.who["officerS1"], instruction["id"], {"text": "伤员已送医，原因正在调查。"})
    after = await world.incidents.detail(world.who["leader"], iid)
    targets = after["instructions"][0]["targets"]
    assert targets[0]["acknowledged_by"] == "officerS1" and targets[0]["feedback"] == "伤员已送医，原因正在调查。"
    assert targets[1]["acknowledged_by"] == "officerD2" and targets[1]["feedback"] is None
    assert [e["kind"] for e in after["timeline"]] == ["reported", "instruction", "acknowledged", "feedback"]


async def test_a_city_incident_is_merged_from_two_districts_reports(world):
    east = (await world.incidents.create(world.who["officerS1"], first_report(world)))["id"]
    west = (await world.incidents.create(world.who["officerD2"], first_report(world, place="西湖路 3 号")))["id"]
    city = (await world.incidents.create(world.who["admin"], first_report(world, title="全市燃气事故")))["id"]
    with pytest.raises(Invalid):  # a district's incident cannot take in another district's
        await world.incidents.merge(world.who["admin"], east, {"incident_ids": [west]})
    merged = await world.incidents.merge(world.who["admin"], city, {"incident_ids": [east, west]})
    assert sorted(m["id"] for m in merged["merged"]) == sorted([east, west])
    assert {e["kind"] for e in merged["timeline"]} >= {"merged_in"}
    assert [i["id"] for i in await world.incidents.find(world.who["admin"], {})] == [city]
    with pytest.raises(Conflict):
        await world.incidents.report(world.who["officerS1"], east, {"changes": "x", "reporter": "张三"})


async def test_a_district_never_sees_another_districts_incident_by_any_route(world):
    iid = (await world.incidents.create(world.who["officerS1"], first_report(world)))["id"]
    report_id = (await world.incidents.detail(world.who["admin"], iid))["reports"][0]["id"]
    officer = await Api.account(world.base, "officerD2", "password-1")
    mine = await Api.account(world.base, "hostD1", "password-1")
    try:
        status, listed = await officer.call("GET", "/api/incidents")
        assert status == 200 and listed == []
        for method, path, body in (
                ("GET", f"/api/incidents/{iid}", None),
                ("POST", f"/api/incidents/{iid}/reports", {"changes": "x", "reporter": "y"}),
                ("POST", f"/api/incidents/{iid}/reports/{report_id}/verify", {"channel": "police"}),
                ("POST", f"/api/incidents/{iid}/close", None),
                ("POST", f"/api/incidents/{iid}/merge", {"incident_ids": [iid]}),
                ("POST", f"/api/incidents/{iid}/notices", {"outcome": "late", "text": "x"}),
                ("POST", f"/api/incidents/{iid}/instructions", {"text": "x", "unit_ids": [world.ids["D2"]]})):
            status, answer = await officer.call(method, path, body)
            assert status in (403, 404), (path, status, answer)
            assert status == 404 or answer["error"]["code"] == "forbidden"
        status, _ = await officer.call("GET", "/api/incidents?unit_id=%d" % world.ids["S1"])
        assert status == 422
        status, listed = await mine.call("GET", "/api/incidents")  # the district sees its street's
        assert status == 200 and [i["id"] for i in listed] == [iid]
        status, notices = await officer.call("GET", "/api/notices?kind=incident")
        assert status == 200 and notices == []
    finally:
        await officer.close()
        await mine.close()


# -- bad input over HTTP -----------------------------------------------------------------------------

async def test_bad_reports_are_refused_with_clear_errors_and_nothing_is_stored(world):
    api = await Api.account(world.base, "officerS1", "password-1")
    future = (world.clock() + dt.timedelta(hours=30)).astimezone(BEIJING).isoformat()
    try:
        for change, field in (({"deaths": "two"}, "deaths"), ({"injured": -1}, "injured"), ({"deaths": True}, "deaths"),
                              ({"category": "alien"}, "category"), ({"level": "V"}, "level"),
                              ({"level": {}}, "level"), ({"category": ["natural"]}, "category"),  # unhashable
                              ({"subtype": "earthquake"}, "subtype"),  # a natural subtype on an accident
                              ({"occurred_at": future}, "occurred_at"), ({"learned_at": "yesterday"}, "learned_at"),
                              ({"title": "长" * 129}, "title"), ({"course": "x" * 4001}, "course"),
                              ({"economic_loss": -5}, "economic_loss"), ({"contact_phone": "call me"}, "contact_phone"),
                              ({"latitude": 30.5}, "longitude"),
                              ({"colour": "red"}, "colour"), ({"channel": "pigeon"}, "channel"),
                              ({"unit_id": world.ids["D2"]}, "unit_id")):
            status, body = await api.call("POST", "/api/incidents", {**first_report(world), **change})
            assert status == 422, (change, status, body)
            assert field in {e["field"] for e in body["error"]["errors"]}, (change, body)
        status, body = await api.call("POST", "/api/incidents", {**first_report(world), "place": "a\u202eb"})
        assert status == 422  # a bidi override is refused at the door, before any element is read
        status, body = await api.call("POST", "/api/incidents", [1, 2])
        assert status == 422
        async with api.session.post(world.base + "/api/incidents", data=b"{not json", headers={
                "X-CSRF-Token": api.csrf, "Content-Type": "application/json"}) as r:
            assert r.status == 422
        status, body = await api.call("POST", "/api/incidents?lang=en", {**first_report(world), "injured": -1})
        assert status == 422 and body["error"]["errors"][0]["message"] == "Injured must lie between 0 and 1000000"
        status, body = await api.call("GET", "/api/incidents/abc")
        assert status == 404
        status, body = await api.call("GET", "/api/incidents?level=V")
        assert status == 422
        assert await world.count(Incident) == 0 and await world.count(IncidentReport) == 0
        assert await world.count(Notice) == 0
        status, body = await api.call("POST", "/api/incidents", first_report(world))
        assert status == 201 and body["title"] == "东湖路燃气泄漏"
        status, catalogue = await api.call("GET", "/api/incident-catalogue")
        assert status == 200 and catalogue["categories"][0]["label"] == "自然灾害"
    finally:
        await api.close()


async def test_consoles_neither_file_nor_read_incidents(world):
    directory = world.app[DIRECTORY]
    room = await directory.create_room(world.who["admin"], {"unit_id": world.ids["S1"], "name": "S1值班室"})
    token = (await directory.create_device_credential(world.who["admin"], room["id"]))["token"]
    console = await Api.console(world.base, token)
    try:
        status, body = await console.call("POST", "/api/incidents", first_report(world))
        assert status == 403 and body["error"]["code"] == "forbidden"
        status, body = await console.call("GET", "/api/incidents")
        assert status == 403
    finally:
        await console.close()
