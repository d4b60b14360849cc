"""Monthly attendance statistics per unit and per district, and a trend chart (PNG via matplotlib).

A district's roll-calls of its own streets count in the city's view too: everything is
aggregated by where the rooms sit in the unit tree, whoever ran the roll-call. They are the
host side's figures: a duty-room console (whose unit may be a district) gets none of them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import timezone
from ..directory.models import DutyRoom, Unit, UnitKind, as_utc
from ..directory.principal import Principal
from ..directory.scope import within
from ..directory.service import tree_order
from .errors import Invalid
from .machine import Outcome
from .models import AttendanceRecord, RollCallRecord
from .results import refuse_console

COUNTED = (Outcome.ON_TIME, Outcome.LATE, Outcome.ABSENT, Outcome.OFFLINE, Outcome.EXCUSED)


def month_bounds(month: object) -> tuple[dt.datetime, dt.datetime]:
    """A calendar month in the deployment's time zone (``--timezone``) (as duty staff count days), as aware
    datetimes: 00:00 on the 1st in Beijing is 16:00 UTC on the last day of the month before."""
    try:
        first = dt.datetime.strptime(str(month), "%Y-%m")
    except ValueError as exc:
        raise Invalid("rollcall.month", field="month") from exc
    if not 2000 <= first.year <= 2200:  # 9999-12 would overflow the month after it
        raise Invalid("rollcall.month_range", field="month")
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return timezone.aware(first), timezone.aware(following)


def summarise(counts: Counter[str]) -> dict[str, Any]:
    expected = sum(counts[o] for o in COUNTED) - counts[Outcome.EXCUSED]
    answered = counts[Outcome.ON_TIME] + counts[Outcome.LATE]
    return {**{o.value: counts[o] for o in COUNTED},
            "attendance_rate": round(answered / expected, 4) if expected else None,
            "on_time_rate": round(counts[Outcome.ON_TIME] / expected, 4) if expected else None}


async def _rows(db: AsyncSession, who: Principal, first: dt.datetime, following: dt.datetime) -> list[Any]:
    return list((await db.execute(
        select(AttendanceRecord, RollCallRecord.started_at, Unit)
        .join(RollCallRecord, RollCallRecord.id == AttendanceRecord.roll_call_id)
        .join(DutyRoom, DutyRoom.id == AttendanceRecord.duty_room_id)
        .join(Unit, Unit.id == DutyRoom.unit_id)
        .where(within(Unit.path, who), RollCallRecord.started_at >= first,
               RollCallRecord.started_at < following, AttendanceRecord.outcome.in_(COUNTED)))).all())


class Statistics:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def monthly(self, who: Principal, month: object) -> dict[str, Any]:
        refuse_console(who)
        first, following = month_bounds(month)
        async with self.sessionmaker() as db:
            rows = await _rows(db, who, first.astimezone(dt.UTC), following.astimezone(dt.UTC))
            units = (await db.execute(select(Unit).where(within(Unit.path, who)))).scalars().all()
        by_id = {u.id: u for u in units}
        per_unit: dict[int, Counter[str]] = defaultdict(Counter)
        per_district: dict[int, Counter[str]] = defaultdict(Counter)
        for attendance, _, unit in rows:
            per_unit[unit.id][attendance.outcome] += 1
            for ancestor in (int(p) for p in unit.path.strip("/").split("/")):
                if ancestor in by_id and by_id[ancestor].kind == UnitKind.district:
                    per_district[ancestor][attendance.outcome] += 1
        ordered = [u for u in tree_order(units)]
        total: Counter[str] = Counter(a.outcome for a, _, _ in rows)
        return {
            "month": first.strftime("%Y-%m"),
            "total": summarise(total),
            "units": [{"unit_id": u.id, "code": u.code, "name": u.name, **summarise(per_unit[u.id])}
                      for u in ordered if u.id in per_unit],
            "districts": [{"unit_id": u.id, "code": u.code, "name": u.name, **summarise(per_district[u.id])}
                          for u in ordered if u.id in per_district],
        }

    async def trend_png(self, who: Principal, month: object) -> bytes:
        """Daily attendance rate over the month, as a PNG line chart."""
        refuse_console(who)
        first, following = month_bounds(month)
        async with self.sessionmaker() as db:
            rows = await _rows(db, who, first.astimezone(dt.UTC), following.astimezone(dt.UTC))
        days = (following.date() - first.date()).days
        daily: dict[int, Counter[str]] = defaultdict(Counter)
        for attendance, started_at, _ in rows:
            # The local calendar day the roll-call started on.
            daily[(timezone.local(as_utc(started_at)).date() - first.date()).days][attendance.outcome] += 1
        # Drawing and PNG encoding are CPU work: off the event loop, which is forwarding media.
        return await asyncio.to_thread(render_trend, first, days, daily)


def render_trend(first: dt.datetime, days: int, daily: dict[int, Counter[str]]) -> bytes:
    """The month's daily attendance rate as a PNG line chart, labelled in Chinese."""
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    from ..pdf import cjk_font_path

    font = FontProperties(fname=cjk_font_path())
    rates = [(day + 1, summarise(daily[day])["attendance_rate"]) for day in range(days) if day in daily]
    rates = [(d, r) for d, r in rates if r is not None]
    # The object API (no pyplot): safe in a worker thread, no global state.
    figure = Figure(figsize=(7.2, 3.0), dpi=100)
    axes = figure.add_subplot()
    if rates:
        axes.plot([d for d, _ in rates], [r * 100 for _, r in rates], marker="o", color="#1f5aa8")
        # Each day's value beside its point (a printed chart has no tooltip).
        small = FontProperties(fname=cjk_font_path(), size=7)
        for day, rate in rates:
            axes.annotate(f"{rate * 100:.0f}%", (day, rate * 100), textcoords="offset points",
                          xytext=(0, 5), ha="center", color="#333333", fontproperties=small, annotation_clip=False)
    else:
        axes.text(0.5, 0.5, "本月暂无点名记录", transform=axes.transAxes, ha="center", va="center",
                  color="#666666", fontproperties=font)
    axes.set_xlim(0.5, max(days, 2) + 0.5)
    axes.set_ylim(0, 116)
    axes.set_xticks([d for d in range(1, days + 1) if d == 1 or d % 5 == 0])
    axes.set_yticks([0, 20, 40, 60, 80, 100])
    axes.yaxis.set_major_formatter("{x:.0f}%")
    axes.grid(True, color="#dddddd")
    axes.set_title(f"{first:%Y年%m月} 每日到岗率（应答值班室 ÷ 应到值班室）", fontproperties=font)
    axes.set_xlabel("日期（日）", fontproperties=font)
    axes.set_ylabel("到岗率", fontproperties=font)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
