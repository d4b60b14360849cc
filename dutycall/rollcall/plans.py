"""Roll-call plans (RFC 5545 recurrence, via python-dateutil) and the scheduler that fires them.

A plan fires each occurrence at most once: ``last_fired_at`` is committed before the
roll-call starts, so a restart neither repeats nor loses one. An occurrence missed while
the server was down is fired late if within ``GRACE``, otherwise skipped (and logged).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from dateutil.rrule import rrulestr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..directory.errors import Invalid, NotFound
from ..directory.models import DutyRoom, Role, Unit, UnitKind, as_utc, utcnow
from ..directory.principal import Principal
from ..directory.service import tree_order
from .coordinator import RollCallCoordinator
from .models import RollCallPlan

logger = logging.getLogger(__name__)

GRACE = dt.timedelta(minutes=10)
HORIZON = dt.timedelta(days=366)



def _parse_when(value: object, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise Invalid(f"{field} must be an ISO 8601 date-time with its UTC offset", [{"field": field}])
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{field} is not an ISO 8601 date-time: {value!r}", [{"field": field}]) from exc
    if when.tzinfo is None:
        raise Invalid(f"{field} needs its UTC offset, e.g. 2027-02-10T09:00:00+08:00", [{"field": field}])
    return when


def occurrences(plan: RollCallPlan, after: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """Occurrences in (after, until], in order."""
    start = dt.datetime.fromisoformat(plan.dtstart)
    found: set[dt.datetime] = set()
    if plan.rrule:
        rule = rrulestr(plan.rrule, dtstart=start)
        found.update(rule.between(after, until, inc=False))
        if after < start <= until:
            found.add(start)
    elif after < start <= until:
        found.add(start)
    for text in plan.dates:
        when = dt.datetime.fromisoformat(text)
        if after < when <= until:
            found.add(when)
    return sorted(found)


def plan_json(plan: RollCallPlan) -> dict[str, Any]:
    return {"id": plan.id, "title": plan.title, "target_unit_id": plan.target_unit_id,
            "target_kinds": plan.target_kinds, "dtstart": plan.dtstart, "rrule": plan.rrule,
            "dates": plan.dates, "answer_window": plan.answer_window, "late_after": plan.late_after,
            "custom_order": plan.custom_order, "focus_points": plan.focus_points, "active": plan.active}


class Plans:
    """Plans in a host's scope, and the scheduler that turns them into roll-calls."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], coordinator: RollCallCoordinator) -> None:
        self.sessionmaker = sessionmaker
        self.coordinator = coordinator

    async def create(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        who.require("rollcall.host")
        title = data.get("title")
        if not isinstance(title, str) or not title.strip() or len(title) > 128:
            raise Invalid("title is required", [{"field": "title"}])
        dtstart = _parse_when(data.get("dtstart"), "dtstart")
        rule = data.get("rrule")
        if rule is not None:
            if not isinstance(rule, str) or len(rule) > 256:
                raise Invalid("rrule must be an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO", [{"field": "rrule"}])
            try:
                rrulestr(rule, dtstart=dtstart)
            except (ValueError, TypeError) as exc:
                raise Invalid(f"rrule is not a valid RFC 5545 rule: {exc}", [{"field": "rrule"}]) from exc
        dates = data.get("dates") or []
        if not isinstance(dates, list):
            raise Invalid("dates must be a list", [{"field": "dates"}])
        dates = [_parse_when(d, "dates").isoformat() for d in dates]
        kinds = data.get("target_kinds") or []
        if not isinstance(kinds, list) or any(k not in {u.value for u in UnitKind} for k in kinds):
            raise Invalid("target_kinds must list unit kinds", [{"field": "target_kinds"}])
        window = data.get("answer_window", 60)
        late = data.get("late_after", 30)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (window, late)) or not (
                0 < late <= window <= 600):
            raise Invalid("answer_window (≤ 600 s) and late_after (≤ answer_window) are seconds")
        order = data.get("custom_order") or []
        if not isinstance(order, list) or not all(isinstance(r, int) for r in order):
            raise Invalid("custom_order must list duty room ids", [{"field": "custom_order"}])
        focus = data.get("focus_points") or ""
        if not isinstance(focus, str) or len(focus) > 2000:
            raise Invalid("focus_points must be text", [{"field": "focus_points"}])
        async with self.sessionmaker() as db:
            unit = await db.get(Unit, data.get("target_unit_id")) if isinstance(data.get("target_unit_id"), int) else None
            if unit is None or not who.covers(unit.path):
                raise NotFound("no target unit in your scope")
            plan = RollCallPlan(title=title.strip(), host_account_id=who.id if who.kind == "account" else None,
                                unit_path=unit.path, target_unit_id=unit.id, target_kinds=kinds, dtstart=dtstart.isoformat(),
                                rrule=rule, dates=dates, answer_window=float(window), late_after=float(late),
                                custom_order=order, focus_points=focus, last_fired_at=utcnow())
            db.add(plan)
            await db.commit()
            return plan_json(plan)

    async def list(self, who: Principal) -> list[dict[str, Any]]:
        who.require("rollcall.host")
        async with self.sessionmaker() as db:
            plans = (await db.execute(select(RollCallPlan).where(RollCallPlan.unit_path.startswith(who.unit_path))
                                      .order_by(RollCallPlan.id))).scalars().all()
        return [plan_json(p) for p in plans]

    async def upcoming(self, who: Principal, plan_id: int, count: int = 10) -> list[str]:
        async with self.sessionmaker() as db:
            plan = await db.get(RollCallPlan, plan_id)
        if plan is None or not who.covers(plan.unit_path):
            raise NotFound(f"no plan {plan_id} in your scope")
        now = utcnow()
        return [o.isoformat() for o in occurrences(plan, now, now + HORIZON)[:max(1, min(count, 100))]]

    async def precheck(self, who: Principal, plan_id: int) -> list[dict[str, Any]]:
        """Before a planned roll-call: which of its rooms are ready now."""
        async with self.sessionmaker() as db:
            plan = await db.get(RollCallPlan, plan_id)
            if plan is None or not who.covers(plan.unit_path):
                raise NotFound(f"no plan {plan_id} in your scope")
            rooms = await self.rooms_of(db, plan)
        return await self.coordinator.describe_readiness(rooms)

    async def rooms_of(self, db: AsyncSession, plan: RollCallPlan) -> list[int]:
        """The plan's rooms: active rooms of the target subtree (of the chosen kinds), in call order."""
        units = (await db.execute(select(Unit).where(Unit.path.startswith(plan.unit_path),
                                                     Unit.active.is_(True)))).scalars().all()
        order = {u.id: i for i, u in enumerate(tree_order(units))}
        wanted = {u.id for u in units if not plan.target_kinds or u.kind.value in plan.target_kinds}
        rooms = (await db.execute(select(DutyRoom).where(DutyRoom.unit_id.in_(wanted),
                                                         DutyRoom.active.is_(True)))).scalars().all()
        ids = [r.id for r in sorted(rooms, key=lambda r: (order.get(r.unit_id, 0), r.id))]
        if plan.custom_order:
            rank = {room_id: i for i, room_id in enumerate(plan.custom_order)}
            ids.sort(key=lambda r: rank.get(r, len(rank)))
        return ids

    async def room_calendar(self, who: Principal, room_id: int) -> bytes:
        """Upcoming roll-calls of a duty room, as iCalendar (RFC 5545)."""
        from icalendar import Calendar, Event

        async with self.sessionmaker() as db:
            room = await db.get(DutyRoom, room_id)
            unit = await db.get(Unit, room.unit_id) if room else None
            if room is None or unit is None or not who.covers(unit.path) or (
                    who.kind == "device" and who.duty_room_id != room_id):
                raise NotFound(f"no duty room {room_id} in your scope")
            plans = (await db.execute(select(RollCallPlan).where(RollCallPlan.active.is_(True)))).scalars().all()
            mine = [p for p in plans if unit.path.startswith(p.unit_path) and room_id in await self.rooms_of(db, p)]
        cal = Calendar()
        cal.add("prodid", "-//dutycall//roll-calls//ZH")
        cal.add("version", "2.0")
        cal.add("x-wr-calname", f"{room.name} 视频点名")
        now = utcnow()
        for plan in mine:
            for when in occurrences(plan, now, now + dt.timedelta(days=60)):
                event = Event()
                event.add("uid", f"plan-{plan.id}-{when.isoformat()}@dutycall")
                event.add("dtstamp", now)
                event.add("dtstart", when)
                event.add("dtend", when + dt.timedelta(minutes=30))
                event.add("summary", f"视频点名：{plan.title}")
                if plan.focus_points:
                    event.add("description", plan.focus_points)
                cal.add_component(event)
        return cal.to_ical()

    # -- the scheduler ------------------------------------------------------------------------

    async def fire_due(self, now: dt.datetime | None = None) -> list[int]:
        """Start the roll-call of every plan whose occurrence is due; returns their ids."""
        now = now or utcnow()
        started = []
        async with self.sessionmaker() as db:
            plans = (await db.execute(select(RollCallPlan).where(RollCallPlan.active.is_(True)))).scalars().all()
            due = []
            for plan in plans:
                after = as_utc(plan.last_fired_at) or as_utc(plan.created_at)
                assert after is not None
                pending = occurrences(plan, after, now)
                if not pending:
                    continue
                occurrence = pending[-1]
                plan.last_fired_at = occurrence  # committed before starting: never fired twice
                if now - occurrence > GRACE:
                    logger.warning("plan %s: occurrence %s missed while the server was down", plan.id, occurrence)
                    continue
                due.append((plan, await self.rooms_of(db, plan)))
            await db.commit()
        for plan, rooms in due:
            if not rooms:
                logger.warning("plan %s has no active duty rooms", plan.id)
                continue
            host = Principal("account", plan.host_account_id or 0, f"plan {plan.id}", Role.host,
                             plan.target_unit_id, plan.unit_path)
            created = await self.coordinator.create(host, {
                "kind": "plan", "title": plan.title, "room_ids": rooms, "answer_window": plan.answer_window,
                "late_after": plan.late_after})
            await self.coordinator.command(host, created["id"], "start", {})
            started.append(created["id"])
        return started

    async def run(self, interval: float = 5.0) -> None:
        while True:
            try:
                await self.fire_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep scheduling whatever one plan did
                logger.exception("roll-call scheduler tick failed")
            await asyncio.sleep(interval)
