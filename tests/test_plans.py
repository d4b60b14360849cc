"""Roll-call plans: RFC 5545 recurrence, firing once across restarts, calendars, validation."""

from __future__ import annotations

import datetime as dt

import pytest
from icalendar import Calendar
from sqlalchemy import select

from dutycall.directory.errors import Invalid
from dutycall.rollcall.models import RollCallPlan, RollCallRecord
from dutycall.web import create_app
from dutycall.web.auth import DIRECTORY
from dutycall.web.rollcalls import COORDINATOR, PLANS

from .conftest import ADMIN_PASSWORD, make_config

CST = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
async def planner(aiohttp_server, tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path}/plans.sqlite3", scheduler_interval=3600))
    await aiohttp_server(app, host="127.0.0.1")
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    district = await directory.create_unit(admin, {"code": "D1", "name": "一区", "kind": "district",
                                                   "parent_id": admin.unit_id})
    rooms = []
    for code, kind in (("S1", "street"), ("S2", "street"), ("G1", "agency")):
        unit = await directory.create_unit(admin, {"code": code, "name": f"{code}单位", "kind": kind,
                                                   "parent_id": district["id"]})
        rooms.append((await directory.create_room(admin, {"unit_id": unit["id"], "name": f"{code}值班室"}))["id"])
    return app, admin, district, rooms


async def test_weekly_plan_upcoming_and_room_calendar(planner):
    app, admin, district, rooms = planner
    plans = app[PLANS]
    plan = await plans.create(admin, {
        "title": "每周一点名", "target_unit_id": district["id"], "target_kinds": ["street"],
        "dtstart": "2026-01-05T09:00:00+08:00", "rrule": "FREQ=WEEKLY;BYDAY=MO", "focus_points": "检查值班记录"})
    upcoming = [dt.datetime.fromisoformat(t) for t in await plans.upcoming(admin, plan["id"])]
    assert len(upcoming) == 10 and all(t.astimezone(CST).weekday() == 0 and t.astimezone(CST).hour == 9
                                       for t in upcoming)
    # Street rooms are in the plan, the agency's is not.
    cal = Calendar.from_ical(await plans.room_calendar(admin, rooms[0]))
    events = list(cal.walk("VEVENT"))
    assert events and "每周一点名" in str(events[0]["summary"])
    assert list(Calendar.from_ical(await plans.room_calendar(admin, rooms[2])).walk("VEVENT")) == []


async def test_a_due_plan_fires_once_and_a_missed_one_is_skipped(planner):
    app, admin, district, rooms = planner
    plans = app[PLANS]
    now = dt.datetime.now(dt.timezone.utc)
    soon = (now + dt.timedelta(seconds=30)).isoformat()
    plan = await plans.create(admin, {"title": "节日加点", "target_unit_id": district["id"], "dtstart": soon,
                                      "custom_order": [rooms[2], rooms[0]]})
    assert await plans.fire_due(now) == []
    started = await plans.fire_due(now + dt.timedelta(seconds=31))
    assert len(started) == 1
    board = await app[COORDINATOR].board(admin, started[0])
    assert board["phase"] == "running" and board["kind"] == "plan"
    assert [r["duty_room_id"] for r in board["rooms"]] == [rooms[2], rooms[0], rooms[1]]  # custom order first
    # The same occurrence never fires again, even after a restart (last_fired_at is committed).
    assert await plans.fire_due(now + dt.timedelta(seconds=40)) == []
    async with app[DIRECTORY].sessionmaker() as db:
        assert (await db.get(RollCallPlan, plan["id"])).last_fired_at is not None
        assert len((await db.execute(select(RollCallRecord))).scalars().all()) == 1

    # An occurrence long past (the server was down) is skipped, not fired hours late.
    late = await plans.create(admin, {"title": "错过", "target_unit_id": district["id"],
                                      "dtstart": (now + dt.timedelta(seconds=5)).isoformat()})
    assert await plans.fire_due(now + dt.timedelta(hours=2)) == []


async def test_plan_validation(planner):
    app, admin, district, _ = planner
    plans = app[PLANS]
    base = {"title": "x", "target_unit_id": district["id"], "dtstart": "2027-01-01T09:00:00+08:00"}
    for bad in ({"rrule": "FREQ=SOMETIMES"}, {"dtstart": "2027-01-01T09:00:00"}, {"dtstart": "tomorrow"},
                {"target_kinds": ["planet"]}, {"answer_window": 10, "late_after": 20}, {"dates": ["not a date"]}):
        with pytest.raises(Invalid):
            await plans.create(admin, {**base, **bad})
    directory = app[DIRECTORY]
    await directory.create_account(admin, {"username": "viewer1", "display_name": "v", "password": "password-1",
                                           "role": "viewer", "unit_id": district["id"]})
    _, viewer = await directory.sign_in("viewer1", "password-1")
    from dutycall.directory.errors import Forbidden

    with pytest.raises(Forbidden):
        await plans.create(viewer, base)
