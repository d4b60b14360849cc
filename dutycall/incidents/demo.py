"""The demo city's month of incidents: filed through the real :class:`~.service.Incidents` service on
a manual clock, so every 迟报 and 漏报 flag and every supervision notice comes from the real rules.

Deterministic: the same ``today`` gives the same incidents, reports, flags and notices (in the
deployment's time zone). :data:`SCENARIOS` is the month as a newcomer sees it: a few of each
category across districts, streets and city enterprises, levels mixed; some first reports late,
one written report late, one follow-up interval overrun, one incident that a district recorded
above its street (漏报), follow-ups, final reports, closed incidents, verifications, and one leader
instruction acknowledged and answered. Tests count the bulletin's figures from this list.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import timezone
from ..directory.models import Account, Unit
from ..directory.principal import Principal, PrincipalKind
from ..supervision.models import Notice
from ..supervision.service import Supervision
from .alerting import Alerting
from .deadlines import parse_deadlines
from .service import Incidents


@dataclass(frozen=True)
class Report:
    """A follow-up or final report, ``hours`` after the first report."""

    hours: float
    elements: dict[str, Any]
    final: bool = False
    channel: str = "written"


@dataclass(frozen=True)
class Scenario:
    days_before: int  # the incident happened this many days before the demo date
    at: str  # local time it happened, HH:MM
    unit: str  # responsible unit's code (D01S01, D06, A16, ...)
    reporter: str  # username of the account that files the first report
    category: str
    subtype: str
    level: str
    title: str
    place: str
    source: str
    course: str
    measures: str
    learned_after: int = 10  # minutes from happening to being learned
    reported_after: int = 20  # minutes from being learned to the first report
    channel: str = "written"
    casualties: tuple[int, int, int, int] = (0, 0, 0, 0)  # deaths, injured, missing, trapped
    reports: tuple[Report, ...] = ()
    close_hours: float | None = None  # closed by the district's host this long after the first report
    verify: tuple[tuple[int, str, str], ...] = ()  # (report number, channel, note) by the district's host
    #: Responses to the incident's notices, by the notified unit: (flag kind, text, closed by the host).
    respond: tuple[tuple[str, str, bool], ...] = ()
    expected_flags: tuple[str, ...] = field(default=())

    @property
    def missed(self) -> bool:
        return "missed" in self.expected_flags


def _final(hours: float, cause: str, outcome: str, aftermath: str, loss: float,
           casualties: tuple[int, int, int, int] = (0, 0, 0, 0)) -> Report:
    deaths, injured, missing, trapped = casualties
    return Report(hours, {"cause": cause, "outcome": outcome, "aftermath": aftermath, "economic_loss": loss,
                          "deaths": deaths, "injured": injured, "missing": missing, "trapped": trapped}, final=True)


def _follow(hours: float, changes: str, channel: str = "written", **elements: Any) -> Report:
    return Report(hours, {"changes": changes, **elements}, channel=channel)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        28, "07:40", "D01S01", "d01s01", "natural", "meteorological", "IV",
        title="强降雨致园岭街道部分路段积水",
        place="园岭街道红荔路与园岭五街交叉口",
        source="网格员巡查发现",
        course="凌晨起持续强降雨，红荔路低洼路段积水约 40 厘米，车辆通行受阻。",
        measures="设置警示标志，调派排水车抽排，交警疏导交通。",
        reported_after=35, close_hours=30,
        reports=(
            _final(10, "短时强降雨超过排水能力", "积水已排除，交通恢复", "已清理路面淤泥，排查雨水口 23 处", 0.8),
        )),
    Scenario(
        25, "14:20", "D06S07", "d06s07", "natural", "geological", "III",
        title="坂田街道雪岗路边坡滑坡",
        place="坂田街道雪岗路 1180 号旁边坡",
        source="群众报警（110 转警）",
        course="雪岗路旁施工边坡发生滑坡，约 800 立方米土方冲入工棚，2 名工人被困。",
        measures="调派消防、救护力量搜救，封闭雪岗路南行车道。",
        learned_after=8, reported_after=18, channel="phone", casualties=(0, 0, 0, 2),
        reports=(
            _follow(0.55, "书面报告：2 名被困工人已救出，1 人轻伤送医", injured=1, trapped=0),
            _follow(20, "现场土方清理完成 60%，边坡监测未见新的位移"),
            _final(46, "连续降雨致施工边坡失稳",
                   "被困人员全部获救，边坡已临时加固",
                   "受伤工人已出院，施工单位停工整改", 35.0, (0, 1, 0, 0)),
        ),
        expected_flags=("late_followup",),
        verify=(
            (0, "onsite", "街道应急办现场核实"),
        ),
        respond=(
            ("late_followup", "续报间隔超过 24 小时，系现场处置人员交接疏漏，已整改。", False),
        )),
    Scenario(
        22, "05:50", "D05S02", "d05s02", "natural", "flood_drought", "IV",
        title="西乡河水位上涨漫过步道",
        place="西乡街道西乡河碧海湾段",
        source="水务部门监测预警",
        course="受上游来水影响，西乡河水位上涨，漫过沿河步道约 300 米。",
        measures="封闭沿河步道，安排人员值守。",
        reported_after=40,
        reports=(
            _follow(6, "水位回落，步道仍封闭"),
            _final(18, "上游来水叠加天文大潮", "水位恢复正常，步道已开放", "步道淤泥已清理", 0.3),
        )),
    Scenario(
        12, "09:55", "D10S03", "d10s03", "natural", "forest_fire", "IV",
        title="南澳街道七娘山山林火情",
        place="南澳街道七娘山西坡",
        source="瞭望塔发现",
        course="七娘山西坡发现明火，过火面积约 0.5 亩，无人员受伤。",
        measures="调派森林消防队扑救，设置隔离带。",
        reported_after=145, close_hours=48,
        reports=(
            _final(8, "游客违规用火", "明火已扑灭，无复燃", "已对涉事游客立案调查", 1.2),
        ),
        expected_flags=("late_first", "late_written"),
        respond=(
            ("late_first", "值班员未及时上报，已通报批评。", True),
        )),
    Scenario(
        27, "08:15", "D03S06", "d03s06", "accident", "traffic", "III",
        title="沙河街道深南大道多车相撞事故",
        place="沙河街道深南大道华侨城路段（往福田方向）",
        source="交警指挥中心通报",
        course="一辆重型货车制动失灵，连续追尾 5 辆小型汽车，造成 1 人死亡、4 人受伤。",
        measures="交警封闭现场，伤员送医，疏导交通。",
        learned_after=5, reported_after=40, channel="phone", casualties=(1, 4, 0, 0), close_hours=72,
        reports=(
            _follow(0.25, "书面报告：伤员分送两家医院救治，道路已恢复单向通行"),
            _final(6, "货车制动系统故障",
                   "道路全线恢复通行，伤员病情稳定",
                   "事故责任认定中，保险理赔已启动", 45.0, (1, 4, 0, 0)),
        ),
        expected_flags=("late_first",),
        verify=(
            (0, "police", "与交警支队核实一致"),
        ),
        respond=(
            ("late_first", "电话首报超过 30 分钟，已调整夜班人员配置。", False),
        )),
    Scenario(
        20, "21:30", "D01S08", "d01s08", "accident", "fire", "IV",
        title="华强北街道电子市场商铺火灾",
        place="华强北街道华强北路赛格广场 3 楼",
        source="119 指挥中心",
        course="一商铺电池存放区起火，明火 20 分钟内扑灭，无人员伤亡。",
        measures="消防扑救，疏散商场人员约 600 人。",
        learned_after=3, reported_after=25,
        reports=(
            _final(5, "锂电池充电时短路", "火已扑灭，商场恢复营业", "开展电子市场消防安全专项检查", 6.0),
        )),
    Scenario(
        18, "10:05", "D07S05", "d07-host", "accident", "work_safety", "III",
        title="观澜街道在建工地高处坠落事故",
        place="观澜街道环观南路某在建厂房",
        source="区住建局通报",
        course="一名工人在 5 楼作业时坠落，经抢救无效死亡。",
        measures="工地全面停工，调查事故原因。",
        learned_after=30, reported_after=40, casualties=(1, 0, 0, 0),
        reports=(
            _follow(3, "街道补报：已通知家属，工地停工整改"),
            _final(20, "作业人员未系安全带，临边防护缺失",
                   "善后工作已完成",
                   "施工单位被责令停工整改，罚款处理", 120.0, (1, 0, 0, 0)),
        ),
        expected_flags=("missed",),
        respond=(
            ("missed", "街道值班员误以为区住建局已上报，未报告，已专题整改。", True),
        )),
    Scenario(
        15, "18:40", "D02S01", "d02s01", "accident", "public_facility", "IV",
        title="东门街道商场电梯困人",
        place="东门街道东门中路某商场 2 号电梯",
        source="12345 热线转办",
        course="电梯运行中突然停梯，3 名乘客被困约 25 分钟。",
        measures="维保人员到场救援，被困人员已全部救出。",
        reported_after=30, casualties=(0, 0, 0, 3), close_hours=24,
        reports=(
            _final(4, "电梯控制板故障", "电梯已修复并经检验", "对全商场电梯开展检查", 0.5),
        )),
    Scenario(
        9, "13:10", "D09S02", "d09s02", "accident", "environment", "IV",
        title="公明街道茅洲河支流油污",
        place="公明街道茅洲河上村段",
        source="环保热线举报",
        course="河面出现约 200 米油污带，疑为企业偷排。",
        measures="布设吸油毡和围油栏，排查沿河企业。",
        learned_after=20, reported_after=50,
        reports=(
            _follow(20, "锁定一家机修厂偷排废机油，已查封"),
            _final(42, "企业偷排废机油", "油污已清除，水质恢复", "涉事企业已移送生态环境部门处罚", 3.5),
        )),
    Scenario(
        6, "16:25", "A16", "a16", "accident", "public_facility", "III",
        title="市燃气集团中压燃气管道泄漏",
        place="罗湖区宝安南路与深南东路交叉口",
        source="燃气集团巡线发现",
        course="第三方施工挖破中压燃气管道，发生泄漏，周边 300 米人员疏散。",
        measures="关阀断气，疏散群众约 1200 人，消防到场警戒。",
        learned_after=5, reported_after=12, channel="phone",
        reports=(
            _follow(0.55, "书面报告：泄漏点已控制，疏散群众陆续返回"),
            _follow(12, "管道抢修完成，恢复供气"),
            _final(30, "第三方施工未探明管线", "恢复供气，无次生事故", "已对施工单位立案查处", 18.0),
        )),
    Scenario(
        24, "12:20", "D04S02", "d04s02", "health", "food_occupational", "IV",
        title="沙头角街道学校食堂疑似食物中毒",
        place="沙头角街道某小学食堂",
        source="学校报告",
        course="午餐后 14 名学生出现腹痛、呕吐症状，送医观察。",
        measures="封存食品留样，学生送医。",
        learned_after=90, reported_after=150, casualties=(0, 14, 0, 0),
        reports=(
            _follow(10, "14 名学生症状缓解，已有 9 名出院"),
            _final(30, "凉拌菜受副溶血性弧菌污染",
                   "全部学生康复出院",
                   "食堂停业整顿，供餐单位被处罚", 2.0, (0, 14, 0, 0)),
        ),
        expected_flags=("late_first", "late_written"),
        verify=(
            (0, "health", "区卫健局疾控中心核实"),
        )),
    Scenario(
        11, "08:00", "D08S05", "d08s05", "health", "epidemic", "unrated",
        title="坑梓街道某小学诺如病毒聚集性疫情",
        place="坑梓街道某小学",
        source="区疾控中心报告",
        course="三个班级 21 名学生出现呕吐、腹泻症状，疑似诺如病毒感染。",
        measures="停课消毒，患病学生居家隔离。",
        learned_after=60, channel="phone", casualties=(0, 21, 0, 0),
        reports=(
            _follow(0.6, "书面报告：采样 10 份送检"),
            _follow(20, "检测确认诺如病毒，定为一般级别", level="IV"),
            _final(40, "学生间接触传播", "疫情得到控制，无新增病例", "全校完成终末消毒，已复课", 0.0, (0, 21, 0, 0)),
        )),
    Scenario(
        4, "07:30", "D06S06", "d06s06", "health", "animal_epidemic", "IV",
        title="平湖街道活禽市场禽类异常死亡",
        place="平湖街道平湖农批市场活禽区",
        source="市场管理方报告",
        course="一摊档 40 余只活禽异常死亡，已采样送检。",
        measures="封控摊档，暂停活禽交易。",
        learned_after=30, reported_after=45,
        reports=(
            _final(20, "检测排除禽流感，系饲料霉变", "市场恢复交易", "已无害化处理死亡禽类", 0.6),
        )),
    Scenario(
        26, "09:10", "D01S05", "d01s05", "social", "mass", "IV",
        title="莲花街道某工地工人聚集讨薪",
        place="莲花街道福中路某工地",
        source="派出所通报",
        course="约 30 名工人在工地门口聚集，要求结算工资。",
        measures="街道、劳动监察到场协调，派出所维持秩序。",
        reported_after=30, close_hours=26,
        reports=(
            _final(7, "分包单位拖欠工资", "工资已全部结清，人员散去", "对分包单位立案调查", 0.0),
        )),
    Scenario(
        16, "22:45", "D02S06", "d02s06", "social", "criminal", "III",
        title="笋岗街道持刀伤人案件",
        place="笋岗街道宝岗路某小区门口",
        source="110 指挥中心",
        course="一男子持刀伤人，造成 2 人受伤，嫌疑人已被控制。",
        measures="伤者送医救治，公安立案侦查。",
        learned_after=5, reported_after=25, channel="phone", casualties=(0, 2, 0, 0),
        reports=(
            _follow(0.92, "书面报告：伤者无生命危险"),
            _final(10, "邻里纠纷引发",
                   "嫌疑人已刑事拘留，伤者病情稳定",
                   "对涉事小区开展矛盾纠纷排查", 0.0, (0, 2, 0, 0)),
        ),
        expected_flags=("late_written",),
        verify=(
            (0, "police", "与区公安分局核实"),
        )),
    Scenario(
        8, "10:30", "A15", "a15", "social", "cyber", "IV",
        title="市地铁集团票务系统遭受网络攻击",
        place="市地铁集团票务清分中心",
        source="网络安全监测平台告警",
        course="票务系统遭受 DDoS 攻击，部分站点扫码进站受影响约 15 分钟。",
        measures="切换备用线路，启用应急票务。",
        learned_after=5, reported_after=40,
        reports=(
            _final(9, "境外 IP 发起流量攻击", "系统恢复正常", "已报公安网安部门，加固防护", 4.0),
        )),
    Scenario(
        3, "15:00", "D03S02", "d03s02", "social", "foreign", "IV",
        title="蛇口街道外籍船员纠纷",
        place="蛇口街道蛇口港码头",
        source="边检站通报",
        course="两名外籍船员与码头作业人员发生纠纷，1 人轻伤。",
        measures="边检、派出所到场调解。",
        reported_after=35, casualties=(0, 1, 0, 0),
        reports=(
            _final(6, "语言不通引发误会", "双方已和解", "已向外事部门通报", 0.0, (0, 1, 0, 0)),
        )),
    Scenario(
        1, "11:20", "D04S03", "d04s03", "natural", "marine", "IV",
        title="梅沙街道海域离岸流致游客遇险",
        place="梅沙街道大梅沙海滨浴场东侧",
        source="救生员报告",
        course="3 名游客被离岸流卷离岸边，救生员救起 2 人，1 人自行游回。",
        measures="救生员施救，浴场东侧暂停游泳。",
        learned_after=5, reported_after=30, casualties=(0, 1, 0, 0)),
    Scenario(
        1, "06:45", "D05S04", "d05s04", "accident", "traffic", "IV",
        title="福永街道货车侧翻",
        place="福永街道福洲大道福永段",
        source="交警通报",
        course="一辆运载建材的货车侧翻，司机轻伤，占用两条车道。",
        measures="交警疏导，调派吊车清障。",
        reported_after=35, casualties=(0, 1, 0, 0)),
)

INSTRUCTION = ("坂田街道雪岗路边坡滑坡", "city-leader", ("D06", "D06S07"),
               "全力搜救被困人员，防止次生灾害，及时续报处置进展。")
ACKNOWLEDGEMENTS = (("d06-host", None), ("d06s07", "被困人员已全部救出，已对周边边坡开展排查。"))


class ManualClock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.at


def _local(day: dt.date, hhmm: str) -> dt.datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return timezone.aware(dt.datetime.combine(day, dt.time(hour, minute)))


def first_report_at(s: Scenario, today: dt.date) -> dt.datetime:
    occurred = _local(today - dt.timedelta(days=s.days_before), s.at)
    return occurred + dt.timedelta(minutes=s.learned_after + s.reported_after)


async def _principals(db: AsyncSession) -> dict[str, Principal]:
    rows = (await db.execute(select(Account, Unit).join(Unit, Unit.id == Account.unit_id))).all()
    return {a.username: Principal(kind=PrincipalKind.ACCOUNT, id=a.id, name=a.display_name, role=a.role,
                                  unit_id=a.unit_id, unit_path=u.path) for a, u in rows}


async def load_incidents(sessionmaker: async_sessionmaker[AsyncSession], today: dt.date) -> int:
    """File :data:`SCENARIOS` before ``today`` in time order; returns the number of incidents."""
    async with sessionmaker() as db:
        who = await _principals(db)
        units = {u.code: u for u in (await db.execute(select(Unit))).scalars()}
    clock = ManualClock(timezone.midnight(today) - dt.timedelta(days=31))
    supervision = Supervision(sessionmaker)
    incidents = Incidents(sessionmaker, supervision, parse_deadlines(os.environ.get("DUTYCALL_INCIDENT_DEADLINES")),
                          clock=clock)
    ids: dict[str, int] = {}
    steps: list[tuple[dt.datetime, int, Callable[[], Awaitable[Any]]]] = []

    def step(at: dt.datetime, action: Callable[[], Awaitable[Any]]) -> None:
        steps.append((at.astimezone(dt.UTC), len(steps), action))

    def district_host(s: Scenario) -> Principal:
        code = s.unit[:3] if s.unit.startswith("D") else s.unit
        return who[f"{code.lower()}-host"] if s.unit.startswith("D") else who["city-host"]

    for s in SCENARIOS:
        occurred = _local(today - dt.timedelta(days=s.days_before), s.at)
        learned = occurred + dt.timedelta(minutes=s.learned_after)
        first = learned + dt.timedelta(minutes=s.reported_after)
        reporter = who[s.reporter]
        street_officer = who.get(s.unit.lower(), reporter)
        deaths, injured, missing, trapped = s.casualties
        data = {"title": s.title, "occurred_at": occurred.isoformat(), "learned_at": learned.isoformat(),
                "source": s.source, "category": s.category, "subtype": s.subtype, "level": s.level, "place": s.place,
                "course": s.course, "measures": s.measures, "deaths": deaths, "injured": injured, "missing": missing,
                "trapped": trapped, "contact_name": f"{units[s.unit].name}值班员", "contact_phone": "0755-8888 6000",
                "reporter": reporter.name, "channel": s.channel}
        if s.missed:
            data["unit_id"] = units[s.unit].id

        async def create(s: Scenario = s, data: dict[str, Any] = data, reporter: Principal = reporter) -> None:
            ids[s.title] = (await incidents.create(reporter, data))["id"]

        step(first, create)
        for report in s.reports:
            async def add(s: Scenario = s, report: Report = report, officer: Principal = street_officer) -> None:
                await incidents.report(officer, ids[s.title], {
                    **report.elements, "stage": "final" if report.final else "followup",
                    "channel": report.channel, "reporter": officer.name})

            step(first + dt.timedelta(hours=report.hours), add)
        for number, channel, note in s.verify:
            async def verify(s: Scenario = s, number: int = number, channel: str = channel, note: str = note) -> None:
                detail = await incidents.detail(district_host(s), ids[s.title])
                report_id = next(r["id"] for r in detail["reports"] if r["number"] == number)
                await incidents.verify(district_host(s), ids[s.title], report_id, {"channel": channel, "note": note})

            step(first + dt.timedelta(hours=1.5), verify)
        if s.close_hours is not None:
            async def close(s: Scenario = s) -> None:
                await incidents.close(district_host(s), ids[s.title])

            step(first + dt.timedelta(hours=s.close_hours), close)
        for kind, text, closed in s.respond:
            async def respond(s: Scenario = s, kind: str = kind, text: str = text, closed: bool = closed,
                              officer: Principal = street_officer) -> None:
                async with sessionmaker() as db:
                    notice_id = (await db.execute(select(Notice.id).where(
                        Notice.incident_id == ids[s.title], Notice.outcome == kind))).scalar_one()
                await supervision.respond(officer, notice_id, text)
                if closed:
                    await supervision.close(district_host(s), notice_id)

            last = max([0.0, *(r.hours for r in s.reports)])
            step(first + dt.timedelta(hours=last + 2), respond)

    title, leader, targets, text = INSTRUCTION
    scenario = next(s for s in SCENARIOS if s.title == title)
    instructed = first_report_at(scenario, today) + dt.timedelta(hours=1)

    async def instruct() -> None:
        detail = await incidents.instruct(who[leader], ids[title], {
            "text": text, "unit_ids": [units[code].id for code in targets]})
        ids["instruction"] = detail["instructions"][-1]["id"]

    step(instructed, instruct)
    for minutes, (username, feedback) in zip((10, 150), ACKNOWLEDGEMENTS):
        async def answer(username: str = username, feedback: str | None = feedback) -> None:
            await incidents.acknowledge(who[username], ids["instruction"])
            if feedback:
                await incidents.feedback(who[username], ids["instruction"], {"text": feedback})

        step(instructed + dt.timedelta(minutes=minutes), answer)
    # The deadline watch, as the server runs it: every local midnight, and at the demo date.
    for back in range(31, -1, -1):
        step(timezone.midnight(today - dt.timedelta(days=back)), incidents.check_deadlines)

    for at, _, action in sorted(steps, key=lambda s: (s[0], s[1])):
        clock.at = at
        await action()
    await load_notification_groups(sessionmaker, who["city-host"])
    return sum(1 for s in SCENARIOS if s.title in ids)


#: The city's SMS notification groups: (name, categories, levels, template). Members are
#: placeholders (the 555 range): a site enters its own, and sets DUTYCALL_ALERT_WEBHOOK_URL.
NOTIFICATION_GROUPS: tuple[tuple[str, list[str], list[str], str], ...] = (
    ("自然灾害短信组", ["natural"], [], "【$unit】$category $level：$title（$place）。$stage：$text"),
    ("事故灾难短信组", ["accident"], [],
     "【$unit】$category $level：$title（$place）。伤 $injured 亡 $deaths。$stage：$text"),
    ("公共卫生短信组", ["health"], [], "【$unit】$category $level：$title（$place）。$stage：$text"),
    ("社会安全短信组", ["social"], [], "【$unit】$category $level：$title（$place）。$stage：$text"),
    ("市领导短信组（较大及以上）", [], ["I", "II", "III", "unrated"],
     "【市总值班室】$level $category：$title，$unit，$place。伤 $injured 亡 $deaths 失联 $missing。"),
)


async def load_notification_groups(sessionmaker: async_sessionmaker[AsyncSession], host: Principal) -> int:
    """The city's notification groups, made through the real service (so their templates are checked)."""
    alerting = Alerting(sessionmaker, None)
    for number, (name, categories, levels, template) in enumerate(NOTIFICATION_GROUPS, start=1):
        await alerting.save_group(host, {
            "name": name, "categories": categories, "levels": levels, "template": template,
            "members": [{"name": f"{name[:4]}值班联系人", "phone": f"0755-555 {number:04d}"}]})
    return len(NOTIFICATION_GROUPS)
