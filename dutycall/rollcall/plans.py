"""Roll-call plans (RFC 5545 recurrence, via python-dateutil) and the scheduler that fires them.

A plan fires each occurrence at most once: ``last_fired_at`` is committed before the
roll-call starts, so a restart neither repeats nor loses one. An occurrence missed while
the server was down is fired late if within ``GRACE``, otherwise skipped (and logged).

Every instant is compared and stored in UTC. The recurrence itself is evaluated in the
plan's own UTC offset ("Monday 07:00 +08:00" is not Monday in UTC), then converted: SQLite
keeps no offset, so storing an occurrence in +08:00 read back 8 hours late, and one in
-05:00 5 hours early, firing it again every tick.

Enumeration is bounded everywhere: no plan recurs more often than hourly, a rule is never
followed past the horizon asked for (a rule that matches nothing would otherwise run to the
year 9999), and periodic rules are fast-forwarded to the window instead of replayed from
their first occurrence.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Any

from dateutil.rrule import DAILY, HOURLY, MINUTELY, MONTHLY, SECONDLY, WEEKLY, YEARLY, rrule, rrulestr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import timezone
from ..directory.models import Account, DutyRoom, Unit, UnitKind, as_utc, utcnow
from ..directory.principal import Principal, PrincipalKind
from ..directory.scope import within
from ..directory.service import Directory, tree_order
from ..text import for_log, unsafe_reason
from .commands import CreateRollCall, Owner, Start
from .coordinator import RollCallCoordinator
from .errors import Forbidden, Invalid, NotFound
from .models import RollCallPlan

logger = logging.getLogger(__name__)

UTC = dt.UTC
GRACE = dt.timedelta(minutes=10)
#: How far ahead ``upcoming`` looks, and how many it lists at most.
HORIZON = dt.timedelta(days=366)
MAX_UPCOMING = 100
#: A room's calendar shows this far ahead, at most CALENDAR_PER_PLAN events of a plan and
#: CALENDAR_EVENTS in all (a feed polled by phones must stay small and fast).
CALENDAR_HORIZON = dt.timedelta(days=90)
CALENDAR_PER_PLAN = 200
CALENDAR_EVENTS = 1000
#: A roll-call takes minutes and calls every room of a subtree: more often than hourly is a
#: mistake (or an attack on the consoles), never a plan.
MIN_GAP = dt.timedelta(hours=1)
MAX_DATES = 100
MAX_COUNT = 1000
#: The occurrences of a new rule checked against MIN_GAP (periodic rules repeat their pattern).
GAP_SAMPLE = 400
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=UTC)
#: Whole periods a periodic rule can be fast-forwarded by (fixed offsets have no DST).
_PERIODS = {HOURLY: dt.timedelta(hours=1), DAILY: dt.timedelta(days=1), WEEKLY: dt.timedelta(weeks=1)}


def _as_utc(when: dt.datetime) -> dt.datetime:
    """An instant in UTC; a naive one is taken as UTC (what SQLite hands back)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _parse_when(value: object, field: str) -> dt.datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid("plans.when_format", field=field, name=field)
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid("plans.when_invalid", field=field, name=field, value=value) from exc
    if when.tzinfo is None or when.utcoffset() is None:
        raise Invalid("plans.when_format", field=field, name=field)
    if not EARLIEST <= when <= LATEST:
        raise Invalid("plans.when_range", field=field, name=field)
    # A fixed offset, as given: the recurrence is evaluated in it.
    return when.replace(tzinfo=dt.timezone(when.utcoffset()))  # type: ignore[arg-type]


#: The BY* parts a rule may use, per frequency. dateutil stops following a rule only when it
#: yields something past UNTIL or reaches the year 9999, so a rule that matches nothing
#: (FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30) costs minutes: what is allowed here either matches in
#: every period (hourly, daily, weekly rules) or has cheap periods (a month, a year: under a
#: second to 9999), and a new rule must match at least once.
_PARTS = {
    HOURLY: {"byminute", "bysecond"},
    DAILY: {"byhour", "byminute", "bysecond", "byweekday", "bymonth"},
    WEEKLY: {"byhour", "byminute", "bysecond", "byweekday", "bymonth"},
    MONTHLY: {"byhour", "byminute", "bysecond", "byweekday", "bymonthday", "bymonth", "bysetpos"},
    YEARLY: {"byhour", "byminute", "bysecond", "byweekday", "bymonthday", "bymonth", "bysetpos", "byyearday",
             "byweekno"},
}


def _parse_rule(text: str, start: dt.datetime) -> rrule:
    """One RRULE within the supported subset (no sub-hourly frequency); Invalid otherwise."""
    if "\n" in text or "\r" in text or text.upper().lstrip().startswith(("DTSTART", "EXDATE", "RDATE")):
        raise Invalid("plans.rule_help", field="rrule")
    try:
        rule = rrulestr(text, dtstart=start)
    except Exception as exc:  # dateutil raises many kinds for a malformed rule
        raise Invalid("plans.rule_invalid", field="rrule", detail=for_log(exc)) from exc
    if not isinstance(rule, rrule):
        raise Invalid("plans.rule_help", field="rrule")
    if rule._freq in (SECONDLY, MINUTELY) or len(rule._byminute or ()) > 1 or len(rule._bysecond or ()) > 1:
        raise Invalid("plans.sub_hourly", field="rrule")
    used = {k for k, v in rule._original_rule.items() if v is not None}
    extra = used - _PARTS[rule._freq]
    weekdays = rule._original_rule.get("byweekday") or ()
    if rule._freq in (DAILY, WEEKLY) and (
            any(getattr(d, "n", None) for d in weekdays)
            or (rule._interval > 1 and used & {"bymonth"} | (used & {"byweekday"} if rule._freq == DAILY else set()))):
        extra.add("byday/bymonth with this frequency or interval")
    if extra:
        raise Invalid("plans.rule_parts", field="rrule", parts=", ".join(sorted(extra)))
    if rule._interval > 1000 or (rule._count is not None and rule._count > MAX_COUNT):
        raise Invalid("plans.rule_bounds", field="rrule", max=MAX_COUNT)
    return rule


def _first(rule: rrule) -> dt.datetime | None:
    """The rule's first occurrence (bounded by _PARTS); Invalid when the rule cannot be followed."""
    try:
        return next(iter(rule), None)
    except Exception as exc:  # e.g. BYHOUR=25 fails only when followed
        raise Invalid("plans.rule_invalid", field="rrule", detail=for_log(exc)) from exc


def _bounded(rule: rrule, after: dt.datetime, until: dt.datetime) -> tuple[rrule, int | None]:
    """The rule, fast-forwarded close to ``after`` and ended at ``until``; and how many it may yield.

    dateutil replays a rule from its DTSTART and, for a rule that matches nothing, runs on to
    the year 9999: both are cut here. A COUNT rule is not moved (COUNT counts from DTSTART):
    its count becomes a cap on what it yields, so it can take an UNTIL too.
    """
    count = rule._count
    start = rule._dtstart
    period = _PERIODS.get(rule._freq)
    if count is None and period is not None:
        step = period * rule._interval
        skip = (after - start) // step - 1  # whole periods that lie before the window
        if skip > 0:
            start = start + step * skip
    end = min(until, rule._until) if rule._until is not None else until
    return rule.replace(dtstart=start, until=end, count=None), count


def _stored_rule(plan: RollCallPlan, start: dt.datetime) -> rrule | None:
    """A stored plan's rule, or None when it breaks today's rules (stored before they existed:
    a minutely plan): its DTSTART and dates still count, the rule does not."""
    try:
        return _parse_rule(plan.rrule or "", start)
    except Invalid:
        logger.warning("plan %s: rule %s is no longer allowed and is ignored", plan.id, for_log(plan.rrule))
        return None


def occurrences(plan: RollCallPlan, after: dt.datetime, until: dt.datetime,
                limit: int = MAX_UPCOMING) -> list[dt.datetime]:
    """The first ``limit`` occurrences in (after, until], in order, as UTC instants."""
    after, until = _as_utc(after), _as_utc(until)
    start = dt.datetime.fromisoformat(plan.dtstart)
    found: set[dt.datetime] = set()
    if after < start <= until:
        found.add(start)  # RFC 5545: DTSTART is the first occurrence, whether the rule matches it or not
    rule = _stored_rule(plan, start) if plan.rrule and after < until else None
    if rule is not None:
        rule, count = _bounded(rule, after, until)
        for number, when in enumerate(rule, start=1):
            if count is not None and number > count:
                break
            if when > after:
                found.add(when)
                if len(found) >= limit + 1:  # +1: DTSTART may be among them
                    break
    for text in plan.dates:
        when = dt.datetime.fromisoformat(text)
        if after < when <= until:
            found.add(when)
    return sorted(_as_utc(w) for w in found)[:limit]


def plan_json(plan: RollCallPlan) -> dict[str, Any]:
    return {"id": plan.id, "title": plan.title, "target_unit_id": plan.target_unit_id,
            "target_kinds": plan.target_kinds, "dtstart": plan.dtstart, "rrule": plan.rrule,
            "dates": plan.dates, "answer_window": plan.answer_window, "late_after": plan.late_after,
            "custom_order": plan.custom_order, "focus_points": plan.focus_points, "active": plan.active,
            "schedule": schedule_of(plan.dtstart, plan.rrule)}


# -- the page's schedule form: weekly or monthly at a local time, as DTSTART and RRULE ----------

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
PREVIEW_COUNT = 5
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_WEEKLY_RE = re.compile(r"^FREQ=WEEKLY;BYDAY=((?:MO|TU|WE|TH|FR|SA|SU)(?:,(?:MO|TU|WE|TH|FR|SA|SU))*)$")
_MONTHLY_RE = re.compile(r"^FREQ=MONTHLY;BYMONTHDAY=([1-9]|[12]\d|3[01])$")


def schedule_rule(schedule: object, now: dt.datetime | None = None) -> tuple[str, str]:
    """The page's schedule form as (DTSTART, RRULE): ``{"freq": "weekly", "weekdays": ["MO"],
    "time": "09:00"}`` or ``{"freq": "monthly", "monthday": 15, "time": "09:00"}``, in the
    deployment's zone. DTSTART is the rule's first occurrence after ``now`` (RFC 5545 counts
    DTSTART as an occurrence whether or not the rule matches it). Invalid otherwise."""
    if not isinstance(schedule, dict):
        raise Invalid("plans.schedule", field="schedule")
    time = _TIME_RE.match(str(schedule.get("time", "")))
    freq = schedule.get("freq")
    if time is None or freq not in ("weekly", "monthly"):
        raise Invalid("plans.schedule", field="schedule")
    if freq == "weekly":
        days = schedule.get("weekdays")
        if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
            raise Invalid("plans.schedule_weekdays", field="weekdays")
        rule = "FREQ=WEEKLY;BYDAY=" + ",".join(d for d in WEEKDAYS if d in days)
    else:
        day = schedule.get("monthday")
        if not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 31:
            raise Invalid("plans.schedule_monthday", field="monthday")
        rule = f"FREQ=MONTHLY;BYMONTHDAY={day}"
    local_now = timezone.local(now or utcnow())
    base = local_now.replace(hour=int(time.group(1)), minute=int(time.group(2)), second=0, microsecond=0)
    # A fixed offset, as every stored DTSTART (the recurrence is evaluated in it).
    base = base.replace(tzinfo=dt.timezone(base.utcoffset() or dt.timedelta()))
    # A weekly or monthly rule matches within two months: bounded.
    first = next((w for w in rrulestr(rule, dtstart=base - dt.timedelta(days=1)) if w > local_now), None)
    if first is None:
        raise Invalid("plans.rule_never", field="rrule")
    return first.isoformat(), rule


def schedule_of(dtstart: str, rule: str | None) -> dict[str, Any] | None:
    """The schedule form of a stored plan, or None when its rule is not one the form writes."""
    try:
        start = dt.datetime.fromisoformat(dtstart)
    except ValueError:
        return None
    time = f"{start.hour:02d}:{start.minute:02d}"
    weekly = _WEEKLY_RE.match(rule or "")
    if weekly:
        return {"freq": "weekly", "weekdays": weekly.group(1).split(","), "time": time}
    monthly = _MONTHLY_RE.match(rule or "")
    if monthly:
        return {"freq": "monthly", "monthday": int(monthly.group(1)), "time": time}
    return None


def _preview(dtstart: str, rule: str, now: dt.datetime) -> list[str]:
    """The next PREVIEW_COUNT occurrences, as ISO date-times in the deployment's zone (CPU: a thread)."""
    fields = _check({"title": "preview", "dtstart": dtstart, "rrule": rule})
    probe = RollCallPlan(dtstart=fields["dtstart"], rrule=fields["rrule"], dates=[])
    return [timezone.local(w).isoformat() for w in occurrences(probe, now, now + HORIZON, PREVIEW_COUNT)]


def _check(data: dict[str, Any]) -> dict[str, Any]:
    """A plan's fields, validated (Invalid otherwise): the columns to store, unit id unresolved."""
    title = data.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 128 or unsafe_reason(title):
        raise Invalid("plans.title", field="title")
    dtstart = _parse_when(data.get("dtstart"), "dtstart")
    rule = data.get("rrule")
    if rule is not None:
        if not isinstance(rule, str) or not rule.strip() or len(rule) > 256:
            raise Invalid("plans.rule_help", field="rrule")
        rule = rule.strip()
        if _first(_parse_rule(rule, dtstart)) is None:
            raise Invalid("plans.rule_never", field="rrule")
    dates = data.get("dates") or []
    if not isinstance(dates, list) or len(dates) > MAX_DATES:
        raise Invalid("plans.dates", field="dates", max=MAX_DATES)
    dates = [_parse_when(d, "dates").isoformat() for d in dates]
    kinds = data.get("target_kinds") or []
    if not isinstance(kinds, list) or any(not isinstance(k, str) or k not in {u.value for u in UnitKind}
                                          for k in kinds):
        raise Invalid("plans.target_kinds", field="target_kinds")
    window = data.get("answer_window", 60)
    late = data.get("late_after", 30)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (window, late)) or not (
            0 < late <= window <= 600):
        raise Invalid("plans.window", field="answer_window")
    order = data.get("custom_order") or []
    if (not isinstance(order, list) or len(order) > 10_000
            or not all(isinstance(r, int) and not isinstance(r, bool) and 0 < r < 2**63 for r in order)):
        raise Invalid("plans.custom_order", field="custom_order")
    focus = data.get("focus_points") or ""
    if not isinstance(focus, str) or len(focus) > 2000 or unsafe_reason(focus, multiline=True):
        raise Invalid("plans.focus_points", field="focus_points")
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise Invalid("field.boolean", field="active", name="active")
    fields = {"title": title.strip(), "dtstart": dtstart.isoformat(), "rrule": rule, "dates": dates,
              "target_kinds": kinds, "answer_window": float(window), "late_after": float(late),
              "custom_order": order, "focus_points": focus, "active": active}
    _check_gaps(fields)
    return fields


def _check_gaps(fields: dict[str, Any]) -> None:
    """Refuse a schedule whose occurrences (DTSTART, rule and dates together) come < 1 hour apart."""
    probe = RollCallPlan(dtstart=fields["dtstart"], rrule=fields["rrule"], dates=fields["dates"])
    start = _as_utc(dt.datetime.fromisoformat(fields["dtstart"]))
    first = min([start] + [_as_utc(dt.datetime.fromisoformat(d)) for d in fields["dates"]])
    sample = occurrences(probe, first - dt.timedelta(seconds=1), LATEST, limit=GAP_SAMPLE)
    if any(b - a < MIN_GAP for a, b in zip(sample, sample[1:])):
        raise Invalid("plans.sub_hourly", field="rrule")


class Plans:
    """Plans in a host's scope, and the scheduler that turns them into roll-calls."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], coordinator: RollCallCoordinator) -> None:
        self.sessionmaker = sessionmaker
        self.coordinator = coordinator
        #: The clock of the scheduler and of "from now" (tests set it to drive time).
        self.clock: Callable[[], dt.datetime] = utcnow

    async def _target(self, db: AsyncSession, who: Principal, unit_id: object) -> Unit:
        valid = isinstance(unit_id, int) and not isinstance(unit_id, bool) and 0 < unit_id < 2**63
        unit = await db.get(Unit, unit_id) if valid else None
        if unit is None or not who.covers(unit.path):
            raise NotFound("plans.no_target", field="target_unit_id")
        return unit

    async def _plan(self, db: AsyncSession, who: Principal, plan_id: int, manage: bool = False) -> RollCallPlan:
        """A plan ``who`` may see (its target lies in their scope); with ``manage``, one they may
        also edit, pause or delete: the plan's own host or a host at or above that host's unit —
        never the supervised unit itself, which could otherwise switch off its own roll-calls."""
        who.require("rollcall.host")  # plans and their pre-checks are the host side's, never a console's
        plan = await db.get(RollCallPlan, plan_id)
        if plan is None or not who.covers(plan.unit_path):
            raise NotFound("plans.not_found", id=plan_id)
        if manage and not (who.kind == PrincipalKind.ACCOUNT and who.id == plan.host_account_id) \
                and not who.covers(await self.owner_path(db, plan)):
            raise Forbidden("plans.manage")
        return plan

    async def owner_path(self, db: AsyncSession, plan: RollCallPlan) -> str:
        """The unit path of the host who made the plan (its roll-calls run in that host's scope);
        the target's path when that host is gone."""
        if plan.host_account_id is not None:
            path = (await db.execute(select(Unit.path).join(Account, Account.unit_id == Unit.id)
                                     .where(Account.id == plan.host_account_id))).scalar_one_or_none()
            if path is not None:
                return str(path)
        return plan.unit_path

    async def create(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        who.require("rollcall.host")
        # Checking a rule enumerates a sample of it: CPU, so off the loop.
        fields = await asyncio.to_thread(_check, data)
        async with self.sessionmaker() as db:
            unit = await self._target(db, who, data.get("target_unit_id"))
            plan = RollCallPlan(host_account_id=who.id if who.kind == PrincipalKind.ACCOUNT else None,
                                unit_path=unit.path, target_unit_id=unit.id, last_fired_at=self.clock(), **fields)
            db.add(plan)
            await db.flush()
            Directory.audit(db, who, "create_plan", "plan", plan.id, unit.path, title=plan.title)
            await db.commit()
            return plan_json(plan)

    async def update(self, who: Principal, plan_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Edit a plan (any field of create, and ``active`` to pause or resume it)."""
        who.require("rollcall.host")
        unknown = set(data) - {"title", "target_unit_id", "target_kinds", "dtstart", "rrule", "dates",
                               "answer_window", "late_after", "custom_order", "focus_points", "active"}
        if unknown:
            raise Invalid("plans.unknown_fields", field="body", fields=", ".join(sorted(unknown))[:200])
        async with self.sessionmaker() as db:
            plan = await self._plan(db, who, plan_id, manage=True)
            before = plan_json(plan)
            merged = {**before, **data}
        fields = await asyncio.to_thread(_check, merged)
        async with self.sessionmaker() as db:
            plan = await self._plan(db, who, plan_id, manage=True)  # again: it may have changed or gone
            unit = await self._target(db, who, merged.get("target_unit_id"))
            schedule = ("dtstart", "rrule", "dates")
            rescheduled = any(fields[k] != getattr(plan, k) for k in schedule)
            resumed = fields["active"] and not plan.active
            for name, value in fields.items():
                setattr(plan, name, value)
            plan.unit_path, plan.target_unit_id = unit.path, unit.id
            if rescheduled or resumed:
                # Occurrences of the new schedule that are already past, or that fell while the
                # plan was paused, are not fired late: it starts from now.
                plan.last_fired_at = self.clock()
            changed = sorted(k for k, v in plan_json(plan).items() if before.get(k) != v)
            Directory.audit(db, who, "update_plan", "plan", plan.id, plan.unit_path, changed=changed)
            await db.commit()
            return plan_json(plan)

    async def preview(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/plans/preview``: the page's schedule form (``schedule``) as DTSTART and
        RRULE, or a given ``dtstart`` and ``rrule``, with the next five occurrences."""
        who.require("rollcall.host")
        now = self.clock()
        if data.get("schedule") is not None:
            dtstart, rule = schedule_rule(data["schedule"], now)
        else:
            given, given_rule = data.get("dtstart"), data.get("rrule")
            if not isinstance(given, str) or not isinstance(given_rule, str):
                raise Invalid("plans.schedule", field="schedule")
            dtstart, rule = given, given_rule
        upcoming = await asyncio.to_thread(_preview, dtstart, rule, now)
        return {"dtstart": dtstart, "rrule": rule, "next": upcoming, "zone": timezone.zone_name()}

    async def delete(self, who: Principal, plan_id: int) -> dict[str, Any]:
        """Delete a plan. Roll-calls it fired keep their records (they copy its title, not a link)."""
        who.require("rollcall.host")
        async with self.sessionmaker() as db:
            plan = await self._plan(db, who, plan_id, manage=True)
            Directory.audit(db, who, "delete_plan", "plan", plan.id, plan.unit_path, title=plan.title,
                            dtstart=plan.dtstart, rrule=plan.rrule)
            await db.delete(plan)
            await db.commit()
        return {"deleted": plan_id}

    async def list_plans(self, who: Principal) -> list[dict[str, Any]]:
        who.require("rollcall.host")
        async with self.sessionmaker() as db:
            plans = (await db.execute(select(RollCallPlan).where(within(RollCallPlan.unit_path, who))
                                      .order_by(RollCallPlan.id))).scalars().all()
        return [plan_json(p) for p in plans]

    async def upcoming(self, who: Principal, plan_id: int, count: int = 10) -> list[str]:
        async with self.sessionmaker() as db:
            plan = await self._plan(db, who, plan_id)
        now = self.clock()
        found = await asyncio.to_thread(occurrences, plan, now, now + HORIZON, max(1, min(count, MAX_UPCOMING)))
        return [o.isoformat() for o in found]

    async def precheck(self, who: Principal, plan_id: int) -> list[dict[str, Any]]:
        """Before a planned roll-call: which of its rooms are ready now."""
        async with self.sessionmaker() as db:
            plan = await self._plan(db, who, plan_id)
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
        """Upcoming roll-calls of a duty room, as iCalendar (RFC 5545): 90 days, at most 1,000 events."""
        async with self.sessionmaker() as db:
            room = await db.get(DutyRoom, room_id)
            unit = await db.get(Unit, room.unit_id) if room else None
            if room is None or unit is None or not who.covers(unit.path) or (
                    who.kind == "device" and who.duty_room_id != room_id):
                raise NotFound("directory.room_not_found", id=room_id)
            plans = (await db.execute(select(RollCallPlan).where(RollCallPlan.active.is_(True))
                                      .order_by(RollCallPlan.id))).scalars().all()
            mine = [p for p in plans if unit.path.startswith(p.unit_path) and room_id in await self.rooms_of(db, p)]
        # Enumerating rules and writing iCalendar are CPU: off the loop, and bounded.
        return await asyncio.to_thread(_room_calendar, room.name, mine, self.clock())

    # -- the scheduler ------------------------------------------------------------------------

    async def fire_due(self, now: dt.datetime | None = None) -> list[int]:
        """Start the roll-call of every plan whose occurrence is due; returns their ids.

        ``now`` (UTC, or any offset) is the scheduler's clock: tests drive it with chosen instants.
        """
        now = _as_utc(now if now is not None else self.clock())
        started = []
        async with self.sessionmaker() as db:
            plans = (await db.execute(select(RollCallPlan).where(RollCallPlan.active.is_(True)))).scalars().all()
            due = []
            for plan in plans:
                after = as_utc(plan.last_fired_at) or as_utc(plan.created_at)
                assert after is not None
                try:
                    pending = occurrences(plan, after, now)
                except Exception:  # one broken plan (stored before today's checks) never stops the others
                    logger.exception("plan %s: cannot enumerate its occurrences", plan.id)
                    continue
                if not pending:
                    continue
                occurrence = max(pending)
                # In UTC: SQLite drops the offset, and this is read back as UTC. Committed before
                # the roll-call starts, so an occurrence is never fired twice.
                plan.last_fired_at = occurrence
                if now - occurrence > GRACE:
                    logger.warning("plan %s (%s): occurrence %s missed while the server was down",
                                   plan.id, for_log(plan.title), occurrence.isoformat())
                    continue
                due.append((plan, await self.rooms_of(db, plan), await self.owner_path(db, plan)))
            await db.commit()
        for plan, rooms, owner_path in due:
            if not rooms:
                logger.warning("plan %s has no active duty rooms", plan.id)
                continue
            # On behalf of the plan's host, within the plan's scope: no signed-in principal is made up.
            created = await self.coordinator.open(CreateRollCall(
                tuple(rooms), plan.title or "视频点名", float(plan.answer_window), float(plan.late_after), "plan"),
                Owner(plan.host_account_id, owner_path))
            await self.coordinator.execute(created["id"], Start())
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


def _room_calendar(room_name: str, plans: list[RollCallPlan], now: dt.datetime) -> bytes:
    """The iCalendar of a room's upcoming roll-calls (CPU-bound: call in a thread)."""
    from icalendar import Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//dutycall//roll-calls//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{room_name} 视频点名")
    events = 0
    for plan in plans:
        for when in occurrences(plan, now, now + CALENDAR_HORIZON, CALENDAR_PER_PLAN):
            if events >= CALENDAR_EVENTS:
                break
            event = Event()
            event.add("uid", f"plan-{plan.id}-{when.isoformat()}@dutycall")
            event.add("dtstamp", now)
            event.add("dtstart", when)
            event.add("dtend", when + dt.timedelta(minutes=30))
            event.add("summary", f"视频点名：{plan.title}")
            if plan.focus_points:
                event.add("description", plan.focus_points)
            cal.add_component(event)
            events += 1
    return cal.to_ical()
