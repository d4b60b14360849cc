"""Monthly incident statistics (月度通报的数据): incidents per category, level and district, each
responsible unit's reporting timeliness, the supervision notices, and a 12-month trend chart.

Definitions (the bulletin's footnote says the same in Chinese, :data:`FOOTNOTE`):

- **The month** is a calendar month in the deployment's time zone (the server's local zone, as
  for roll-call statistics); an incident belongs to the month in which it *occurred*
  (``occurred_at``).
- **Scope**: a principal sees the incidents whose responsible unit lies in its subtree (a
  district its own and its streets'; the city all). An instruction addressed to a unit does not
  bring another district's incident into that unit's figures.
- **District** (区, or 市直单位): the unit directly under the city that the incident's responsible
  unit belongs to; an incident of the city's own unit counts under the city.
- **Incident tables** (category, level, district, trend counts) count events: a record merged
  into a higher unit's record of the same event is counted once, through that record.
- **Timeliness** is counted per incident, against its responsible unit, merged records included
  (the duty to report existed). *Due* (应报送) is the number of the unit's incidents in the month.
  An incident is *missed* (漏报) if it carries a ``missed`` flag (a higher unit recorded it first);
  else *late* (迟报) if it carries any ``late_first``, ``late_written`` or ``late_followup`` flag;
  else *on time* (按时). So due = on time + late + missed, and the **timeliness rate** (报送及时率)
  is on time ÷ due (None when nothing was due), as of when the figures are drawn: a follow-up
  that becomes overdue later turns an on-time incident late. The flag columns (首报/书面/续报超时)
  count flags, not incidents: one incident may carry several.
- **Notices**: the supervision notices (kind ``incident``) on the month's incidents, whenever they
  were issued; *answered* means the notified unit has responded (responded or closed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import timezone
from ..directory.models import Unit, as_utc
from ..directory.principal import Principal
from ..directory.scope import tree_order, within
from ..supervision.models import Notice, NoticeKind, NoticeStatus
from .catalog import CATEGORY_LABELS, FLAG_LABELS, LEVEL_LABELS, SERIOUS, Category, FlagKind, Level, Status, label
from .errors import Forbidden, Invalid
from .models import Incident, IncidentFlag

TREND_MONTHS = 12
LATE_KINDS = (FlagKind.late_first, FlagKind.late_written, FlagKind.late_followup)
FOOTNOTE = (
    "注：1. 统计月份按部署地时区的自然月，以事件发生时间归属月份；统计截至本通报生成之时。"
    "2. 类别、等级、分区统计按事件计，已并入上级事件的记录不重复计数。"
    "3. 报送时效按事件计，计入责任单位（含已并入上级事件的记录）：应报送起数为责任单位当月事件起数；"
    "有“漏报”标记（上级单位先行记录、责任单位未报告）的计为漏报；未漏报但首报、书面报告或续报任一项超过时限"
    "（有“迟报”标记）的计为迟报；其余计为按时。应报送 = 按时 + 迟报 + 漏报。"
    "4. 报送及时率 = 按时报送起数 ÷ 应报送起数 × 100%；当月无应报送事件的不计算。"
    "5. 首报、书面、续报超时列按标记次数计，一起事件可有多次。"
    "6. 督办通知为针对当月事件发出的督办通知（不论发出日期）；已回复指被督办单位已书面回复（含已办结）。"
)


def parse_month(month: object) -> dt.datetime:
    """``YYYY-MM`` (None: the current month) as the naive first day of that month."""
    if month is None:
        now = timezone.now()
        return dt.datetime(now.year, now.month, 1)
    try:
        if len(str(month)) != 7 or not str(month).isascii():
            raise ValueError(month)
        first = dt.datetime.strptime(str(month), "%Y-%m")
    except ValueError as exc:
        raise Invalid("incident.month", field="month") from exc
    if not 2000 <= first.year <= 2200:
        raise Invalid("incident.month_range", field="month")
    return first


def shift_month(first: dt.datetime, months: int) -> dt.datetime:
    index = first.year * 12 + first.month - 1 + months
    return dt.datetime(index // 12, index % 12 + 1, 1)


def local_month(at: dt.datetime) -> str:
    """The deployment-zone month (YYYY-MM) of a stored instant."""
    return timezone.local(as_utc(at)).strftime("%Y-%m")


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def refuse_console(who: Principal) -> None:
    """Statistics are for accounts: a console reads no incident reports at all."""
    if who.kind != "account":
        raise Forbidden("incident.consoles_no")
    if not who.may("incidents.read"):
        raise Forbidden("incident.consoles_no")


@dataclass
class Row:
    """What the aggregation needs of one incident."""

    id: int
    title: str
    category: str
    level: str
    status: str
    unit_id: int
    unit_path: str
    occurred_at: dt.datetime
    flags: list[str] = field(default_factory=list)


@dataclass
class NoticeRow:
    incident_id: int
    unit_path: str
    outcome: str
    status: str
    answered: bool


def _timeliness(rows: Iterable[Row]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    for row in rows:
        counts["due"] += 1
        kinds = set(row.flags)
        if FlagKind.missed in kinds:
            counts["missed"] += 1
        elif kinds & set(LATE_KINDS):
            counts["late"] += 1
        else:
            counts["on_time"] += 1
        for kind in row.flags:
            if kind in LATE_KINDS:
                counts[kind] += 1
    due = counts["due"]
    return {"due": due, "on_time": counts["on_time"], "late": counts["late"], "missed": counts["missed"],
            **{k.value: counts[k.value] for k in LATE_KINDS},
            "rate": round(counts["on_time"] / due, 4) if due else None}


def aggregate(month: dt.datetime, rows: Sequence[Row], notices: Sequence[NoticeRow], units: Sequence[Unit],
              scope: Unit | None, lang: str = "zh-CN") -> dict[str, Any]:
    """The month's figures from the rows of the 12 months ending with ``month`` (pure)."""
    key = month.strftime("%Y-%m")
    by_id = {u.id: u for u in units}
    this = [r for r in rows if local_month(r.occurred_at) == key]
    events = [r for r in this if r.status != Status.merged]

    def district_of(path: str) -> int:
        parts = [int(p) for p in path.strip("/").split("/")]
        return parts[1] if len(parts) > 1 else parts[0]

    per_district: dict[int, Counter[str]] = defaultdict(Counter)
    for r in events:
        per_district[district_of(r.unit_path)][r.category] += 1
    order = {u.id: i for i, u in enumerate(tree_order(units))}
    districts = [{"unit_id": d, "name": by_id[d].name if d in by_id else str(d), "count": sum(c.values()),
                  **{cat.value: c[cat.value] for cat in Category}}
                 for d, c in sorted(per_district.items(), key=lambda item: order.get(item[0], 1 << 30))]

    per_unit: dict[int, list[Row]] = defaultdict(list)
    for r in this:
        per_unit[r.unit_id].append(r)
    month_ids = {r.id for r in this}
    unit_notices: dict[str, Counter[str]] = defaultdict(Counter)
    notice_outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for n in notices:
        if n.incident_id in month_ids:
            unit_notices[n.unit_path]["issued"] += 1
            unit_notices[n.unit_path]["answered"] += int(n.answered)
            notice_outcomes[n.outcome]["issued"] += 1
            notice_outcomes[n.outcome]["answered"] += int(n.answered)
    unit_rows = []
    for unit_id in sorted(per_unit, key=lambda u: order.get(u, 1 << 30)):
        unit = by_id.get(unit_id)
        path = unit.path if unit else per_unit[unit_id][0].unit_path
        unit_rows.append({"unit_id": unit_id, "name": unit.name if unit else str(unit_id),
                          **_timeliness(per_unit[unit_id]),
                          "notices": unit_notices[path]["issued"], "answered": unit_notices[path]["answered"]})
    flagged = [{"id": r.id, "title": r.title, "unit_id": r.unit_id,
                "unit_name": by_id[r.unit_id].name if r.unit_id in by_id else str(r.unit_id),
                "level": r.level, "occurred_at": as_utc(r.occurred_at).isoformat(),
                "flags": [k.value for k in (FlagKind.missed, *LATE_KINDS) if k.value in r.flags]}
               for r in sorted(this, key=lambda r: (as_utc(r.occurred_at), r.id)) if r.flags]

    trend = []
    for back in range(TREND_MONTHS - 1, -1, -1):
        m = shift_month(month, -back).strftime("%Y-%m")
        in_month = [r for r in rows if local_month(r.occurred_at) == m]
        trend.append({"month": m, "incidents": sum(1 for r in in_month if r.status != Status.merged),
                      "rate": _timeliness(in_month)["rate"]})

    categories = Counter(r.category for r in events)
    levels = Counter(r.level for r in events)
    issued = sum(c["issued"] for c in notice_outcomes.values())
    answered = sum(c["answered"] for c in notice_outcomes.values())
    return {
        "month": key,
        "scope": {"unit_id": scope.id if scope else None, "name": scope.name if scope else "",
                  "city": scope is not None and scope.parent_id is None},
        "total": len(events),
        "serious": sum(1 for r in events if r.level in SERIOUS and r.level != Level.unrated),
        "categories": [{"code": c.value, "label": label(CATEGORY_LABELS[c], lang), "count": categories[c.value]}
                       for c in Category],
        "levels": [{"code": v.value, "label": label(LEVEL_LABELS[v], lang), "count": levels[v.value]}
                   for v in Level],
        "districts": districts,
        "timeliness": _timeliness(this),
        "units": unit_rows,
        "late_units": [u["name"] for u in unit_rows if u["late"]],
        "missed_units": [u["name"] for u in unit_rows if u["missed"]],
        "flagged": flagged,
        "notices": {"issued": issued, "answered": answered, "unanswered": issued - answered,
                    "by_outcome": [{"outcome": o, "label": _outcome_label(o, lang), **c}
                                   for o, c in sorted(notice_outcomes.items())]},
        "trend": trend,
    }


def _outcome_label(outcome: str, lang: str) -> str:
    if outcome in {k.value for k in FlagKind}:
        return label(FLAG_LABELS[FlagKind(outcome)], lang)
    own = {"late": ("迟报", "Late"), "missed": ("漏报", "Missed"), "wrong": ("错报", "Wrong report"),
           "other": ("其他", "Other")}
    return label(own.get(outcome, (outcome, outcome)), lang)


class IncidentStatistics:
    """The month's figures for a principal's scope, and the trend chart."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def _load(self, db: AsyncSession, who: Principal, month: dt.datetime
                    ) -> tuple[list[Row], list[NoticeRow], list[Unit], Unit | None]:
        start = timezone.aware(shift_month(month, -(TREND_MONTHS - 1))).astimezone(dt.UTC)
        end = timezone.aware(shift_month(month, 1)).astimezone(dt.UTC)
        span = (within(Incident.unit_path, who), Incident.occurred_at >= start, Incident.occurred_at < end)
        rows = {i.id: Row(i.id, i.title, i.category, i.level, i.status, i.unit_id, i.unit_path, i.occurred_at)
                for i in (await db.execute(select(Incident).where(*span))).scalars()}
        for incident_id, kind in (await db.execute(select(IncidentFlag.incident_id, IncidentFlag.kind)
                                                   .join(Incident, Incident.id == IncidentFlag.incident_id)
                                                   .where(*span).order_by(IncidentFlag.id))).all():
            rows[incident_id].flags.append(kind)
        notices = [NoticeRow(n.incident_id or 0, n.unit_path, n.outcome, n.status,
                             n.responded_at is not None or n.status != NoticeStatus.open)
                   for n in (await db.execute(select(Notice).join(Incident, Incident.id == Notice.incident_id)
                                              .where(Notice.kind == NoticeKind.incident.value,
                                                     within(Notice.unit_path, who), *span)
                                              .order_by(Notice.id))).scalars()]
        units = list((await db.execute(select(Unit).where(within(Unit.path, who)))).scalars())
        scope = await db.get(Unit, who.unit_id)
        return list(rows.values()), notices, units, scope

    async def monthly(self, who: Principal, month: object, lang: str = "zh-CN") -> dict[str, Any]:
        """The month's figures (see the module's definitions) for ``who``'s scope."""
        refuse_console(who)
        first = parse_month(month)
        async with self.sessionmaker() as db:
            rows, notices, units, scope = await self._load(db, who, first)
        return aggregate(first, rows, notices, units, scope, lang)

    async def trend_png(self, who: Principal, month: object) -> bytes:
        figures = await self.monthly(who, month)
        # Drawing and PNG encoding are CPU work: off the event loop, which is forwarding media.
        return await asyncio.to_thread(render_trend, figures["trend"])


def render_trend(trend: Sequence[dict[str, Any]]) -> bytes:
    """Incidents per month (bars) and the timeliness rate (line), labelled in Chinese, as PNG."""
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    from ..pdf import cjk_font_path

    font = FontProperties(fname=cjk_font_path())
    # The object API (no pyplot): safe in a worker thread, no global state.
    figure = Figure(figsize=(7.2, 3.2), dpi=100)
    axes = figure.add_subplot()
    positions = list(range(len(trend)))
    bars = axes.bar(positions, [t["incidents"] for t in trend], color="#9dbbe0", label="事件起数")
    small = FontProperties(fname=cjk_font_path(), size=7)
    # Values on the chart itself: a printed bulletin has no tooltip.
    axes.bar_label(bars, labels=[str(t["incidents"]) if t["incidents"] else "" for t in trend],
                   fontproperties=small, color="#1f3f66", padding=1)
    axes.set_xticks(positions, [t["month"][2:].replace("-", "/") for t in trend])
    axes.set_xlabel("月份（年/月）", fontproperties=font)
    axes.set_ylabel("事件起数（起）", fontproperties=font)
    top = max([t["incidents"] for t in trend] + [1])
    axes.set_ylim(0, top * 1.2 + 1)
    rates = axes.twinx()
    points = [(p, t["rate"] * 100) for p, t in zip(positions, trend) if t["rate"] is not None]
    if points:
        rates.plot([p for p, _ in points], [r for _, r in points], marker="o", color="#c0392b", label="报送及时率")
        for position, rate in points:
            rates.annotate(f"{rate:.0f}%", (position, rate), textcoords="offset points", xytext=(0, 5),
                           ha="center", color="#8e2a20", fontproperties=small)
    rates.set_ylim(0, 115)
    rates.set_yticks([0, 20, 40, 60, 80, 100])
    rates.yaxis.set_major_formatter("{x:.0f}%")
    rates.set_ylabel("报送及时率", fontproperties=font)
    axes.grid(True, axis="y", color="#dddddd")
    axes.set_title(f"近{len(trend)}个月突发事件起数与报送及时率", fontproperties=font)
    handles = axes.get_legend_handles_labels()[0] + rates.get_legend_handles_labels()[0]
    labels = axes.get_legend_handles_labels()[1] + rates.get_legend_handles_labels()[1]
    axes.legend(handles, labels, prop=FontProperties(fname=cjk_font_path(), size=8), loc="upper left")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
