"""What an incident report is made of: categories, levels, channels and the report form's elements.

The categories and subtypes follow the national overall emergency plan (国家突发公共事件总体应急预案);
the elements are those of the paper form (突发事件信息报告表), grouped as it groups them. Each label
is given in Simplified Chinese (the default) and English; codes are what the API and database use.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Category(enum.StrEnum):
    natural = "natural"
    accident = "accident"
    health = "health"
    social = "social"


CATEGORY_LABELS: dict[Category, tuple[str, str]] = {
    Category.natural: ("自然灾害", "Natural disaster"),
    Category.accident: ("事故灾难", "Accident"),
    Category.health: ("公共卫生事件", "Public health event"),
    Category.social: ("社会安全事件", "Social security event"),
}

#: Subtypes per category: code -> (zh-CN, en).
SUBTYPES: dict[Category, dict[str, tuple[str, str]]] = {
    Category.natural: {
        "flood_drought": ("水旱灾害", "Flood or drought"),
        "meteorological": ("气象灾害", "Meteorological disaster"),
        "earthquake": ("地震灾害", "Earthquake"),
        "geological": ("地质灾害", "Geological disaster"),
        "marine": ("海洋灾害", "Marine disaster"),
        "biological": ("生物灾害", "Biological disaster"),
        "forest_fire": ("森林草原火灾", "Forest or grassland fire"),
    },
    Category.accident: {
        "work_safety": ("工矿商贸等企业安全事故", "Industrial or commercial safety accident"),
        "traffic": ("交通运输事故", "Traffic accident"),
        "public_facility": ("公共设施和设备事故", "Public facility or equipment accident"),
        "fire": ("火灾事故", "Fire"),
        "environment": ("环境污染和生态破坏事件", "Pollution or ecological damage"),
        "nuclear": ("核与辐射事故", "Nuclear or radiation accident"),
    },
    Category.health: {
        "epidemic": ("传染病疫情", "Infectious disease outbreak"),
        "unknown_disease": ("群体性不明原因疾病", "Cluster of unexplained illness"),
        "food_occupational": ("食品安全和职业危害", "Food safety or occupational hazard"),
        "animal_epidemic": ("动物疫情", "Animal epidemic"),
        "other_health": ("其他严重影响公众健康的事件", "Other serious threat to public health"),
    },
    Category.social: {
        "terrorism": ("恐怖袭击事件", "Terrorist attack"),
        "criminal": ("刑事案件", "Criminal case"),
        "economic": ("经济安全事件", "Economic security event"),
        "foreign": ("涉外突发事件", "Event involving foreign parties"),
        "mass": ("群体性事件", "Mass incident"),
        "cyber": ("网络与信息安全事件", "Network or information security event"),
    },
}


class Level(enum.StrEnum):
    I = "I"  # noqa: E741 - the level's own name
    II = "II"
    III = "III"
    IV = "IV"
    unrated = "unrated"


LEVEL_LABELS: dict[Level, tuple[str, str]] = {
    Level.I: ("I级（特别重大）", "Level I (extremely serious)"),
    Level.II: ("II级（重大）", "Level II (serious)"),
    Level.III: ("III级（较大）", "Level III (major)"),
    Level.IV: ("IV级（一般）", "Level IV (general)"),
    Level.unrated: ("未定级", "Not yet rated"),
}
#: 较大 and above: the stricter reporting rules apply. An unrated incident is treated as if it
#: were 较大 until someone rates it: when in doubt, report fast.
SERIOUS = frozenset({Level.I, Level.II, Level.III, Level.unrated})


class Stage(enum.StrEnum):
    initial = "initial"  # 初报
    followup = "followup"  # 续报
    final = "final"  # 终报


STAGE_LABELS: dict[Stage, tuple[str, str]] = {
    Stage.initial: ("初报", "First report"),
    Stage.followup: ("续报", "Follow-up report"),
    Stage.final: ("终报", "Final report"),
}


class Channel(enum.StrEnum):
    """How a report was made: by phone first, then in writing."""

    phone = "phone"
    written = "written"


CHANNEL_LABELS: dict[Channel, tuple[str, str]] = {
    Channel.phone: ("电话报告", "By phone"),
    Channel.written: ("书面报告", "In writing"),
}


class VerifyChannel(enum.StrEnum):
    """Through whom a report was checked (核报)."""

    district = "district"
    police = "police"
    health = "health"
    onsite = "onsite"


VERIFY_LABELS: dict[VerifyChannel, tuple[str, str]] = {
    VerifyChannel.district: ("区级核实", "Checked with the district"),
    VerifyChannel.police: ("公安核实", "Checked with the police"),
    VerifyChannel.health: ("卫健核实", "Checked with health services"),
    VerifyChannel.onsite: ("现场核实", "Checked on site"),
}


class Status(enum.StrEnum):
    open = "open"  # reports are coming in
    final = "final"  # the final report is in; the host closes it
    closed = "closed"
    merged = "merged"  # folded into a higher unit's incident of the same event


STATUS_LABELS: dict[Status, tuple[str, str]] = {
    Status.open: ("处置中", "Open"),
    Status.final: ("已终报", "Final report in"),
    Status.closed: ("已关闭", "Closed"),
    Status.merged: ("已合并", "Merged"),
}


class FlagKind(enum.StrEnum):
    """Timeliness findings: facts that count in the unit's monthly bulletin."""

    late_first = "late_first"  # 迟报: the first report came after its deadline
    late_written = "late_written"  # 迟报: the written report came after its deadline
    late_followup = "late_followup"  # 迟报: more than the follow-up interval without a report
    missed = "missed"  # 漏报: a higher unit recorded an event its responsible unit never reported


FLAG_LABELS: dict[FlagKind, tuple[str, str]] = {
    FlagKind.late_first: ("迟报（首报超时）", "Late first report"),
    FlagKind.late_written: ("迟报（书面报告超时）", "Late written report"),
    FlagKind.late_followup: ("迟报（续报超时）", "Late follow-up"),
    FlagKind.missed: ("漏报", "Unreported by the responsible unit"),
}


class Kind(enum.StrEnum):
    text = "text"
    long_text = "long_text"
    people = "people"  # a whole number of people, >= 0
    money = "money"  # 万元, >= 0
    instant = "instant"  # a date and time with its zone, not in the future
    category = "category"
    subtype = "subtype"
    level = "level"
    latitude = "latitude"
    longitude = "longitude"
    phone = "phone"


@dataclass(frozen=True)
class Element:
    name: str
    zh: str
    en: str
    kind: Kind
    group: str
    max_length: int = 0


#: The form's groups, in the paper form's order: (code, zh-CN, en).
GROUPS = [
    ("basics", "基本情况", "Basics"),
    ("place", "发生地点", "Place"),
    ("course", "起因与经过", "Cause and course"),
    ("losses", "人员伤亡与损失", "Casualties and losses"),
    ("response", "处置情况", "Response"),
    ("outlook", "发展趋势与建议", "Trend and suggestions"),
    ("final", "处置结果（终报）", "Outcome (final report)"),
    ("contacts", "联系人与报告人", "Contacts and reporter"),
]

ELEMENTS: tuple[Element, ...] = (
    Element("title", "事件名称", "Title", Kind.text, "basics", 128),
    Element("occurred_at", "发生时间", "When it happened", Kind.instant, "basics"),
    Element("learned_at", "获知时间", "When it was learned", Kind.instant, "basics"),
    Element("source", "信息来源", "Information source", Kind.text, "basics", 256),
    Element("category", "事件类别", "Category", Kind.category, "basics"),
    Element("subtype", "事件类型", "Type", Kind.subtype, "basics"),
    Element("level", "事件等级", "Level", Kind.level, "basics"),
    Element("place", "发生地点", "Place", Kind.text, "place", 256),
    Element("latitude", "纬度", "Latitude", Kind.latitude, "place"),
    Element("longitude", "经度", "Longitude", Kind.longitude, "place"),
    Element("cause", "事件起因", "Cause", Kind.long_text, "course", 4000),
    Element("course", "事件经过", "Course of events", Kind.long_text, "course", 4000),
    Element("deaths", "死亡人数", "Deaths", Kind.people, "losses"),
    Element("injured", "受伤人数", "Injured", Kind.people, "losses"),
    Element("missing", "失踪人数", "Missing", Kind.people, "losses"),
    Element("trapped", "被困人数", "Trapped", Kind.people, "losses"),
    Element("economic_loss", "直接经济损失（万元）", "Direct economic loss (10,000 yuan)", Kind.money, "losses"),
    Element("losses", "损失和影响", "Losses and impact", Kind.long_text, "losses", 4000),
    Element("measures", "已采取的措施", "Measures taken", Kind.long_text, "response", 4000),
    Element("measures_effect", "措施效果", "Effect of the measures", Kind.long_text, "response", 4000),
    Element("trend", "发展趋势", "Trend", Kind.long_text, "outlook", 4000),
    Element("suggestions", "意见建议", "Suggestions", Kind.long_text, "outlook", 4000),
    Element("changes", "较上次报告的变化", "What changed since the last report", Kind.long_text, "course", 4000),
    Element("outcome", "处置结果", "Outcome", Kind.long_text, "final", 4000),
    Element("aftermath", "善后情况", "Aftermath", Kind.long_text, "final", 4000),
    Element("contact_name", "现场联系人", "On-site contact", Kind.text, "contacts", 64),
    Element("contact_phone", "现场联系电话", "On-site contact's phone", Kind.phone, "contacts", 32),
    Element("reporter", "报告人", "Reported by", Kind.text, "contacts", 64),
)
BY_NAME = {e.name: e for e in ELEMENTS}

#: The casualty counts a serious incident's every report must state (0 is a statement).
CASUALTIES = ("deaths", "injured", "missing", "trapped")

#: Required elements per stage; SERIOUS levels add their own at the first report.
REQUIRED: dict[Stage, tuple[str, ...]] = {
    Stage.initial: ("title", "occurred_at", "learned_at", "source", "category", "level", "place", "course",
                    "contact_name", "contact_phone", "reporter"),
    Stage.followup: ("changes", "reporter"),
    Stage.final: ("cause", "outcome", "aftermath", *CASUALTIES, "economic_loss", "reporter"),
}
REQUIRED_SERIOUS_INITIAL = (*CASUALTIES, "measures")

#: Elements carried on the incident itself (filtered and listed): the latest report's value wins.
HEADLINE = ("title", "occurred_at", "learned_at", "category", "subtype", "level", "place")
#: Elements that describe one report only and are not carried forward to the next.
PER_REPORT = ("changes", "reporter")


def label(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def catalogue(lang: str = "zh-CN") -> dict[str, object]:
    """Everything the report form needs, in one language: groups, elements, choices, rules."""
    return {
        "categories": [{"code": c.value, "label": label(CATEGORY_LABELS[c], lang),
                        "subtypes": [{"code": code, "label": label(pair, lang)} for code, pair in SUBTYPES[c].items()]}
                       for c in Category],
        "levels": [{"code": v.value, "label": label(LEVEL_LABELS[v], lang)} for v in Level],
        "stages": [{"code": v.value, "label": label(STAGE_LABELS[v], lang)} for v in Stage],
        "channels": [{"code": v.value, "label": label(CHANNEL_LABELS[v], lang)} for v in Channel],
        "verify_channels": [{"code": v.value, "label": label(VERIFY_LABELS[v], lang)} for v in VerifyChannel],
        "statuses": [{"code": v.value, "label": label(STATUS_LABELS[v], lang)} for v in Status],
        "flags": [{"code": v.value, "label": label(FLAG_LABELS[v], lang)} for v in FlagKind],
        "groups": [{"code": code, "label": en if lang == "en" else zh,
                    "elements": [{"name": e.name, "label": e.en if lang == "en" else e.zh, "kind": e.kind.value,
                                  "max_length": e.max_length} for e in ELEMENTS if e.group == code]}
                   for code, zh, en in GROUPS],
        "required": {stage.value: list(names) for stage, names in REQUIRED.items()},
        "required_serious_initial": list(REQUIRED_SERIOUS_INITIAL),
        "serious_levels": sorted(v.value for v in SERIOUS),
    }
